"""Fire times of schedules: cron read in the schedule's time zone (daylight saving
included), the next time strictly after a moment, and the check of a cron's form."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from narrate.errors import InvalidInput
from narrate.services.schedules import next_fire_time, parse_cron


def test_next_fire_time_is_strictly_after_the_moment() -> None:
    at = datetime(2026, 12, 2, 6, 0, tzinfo=UTC)
    assert next_fire_time("0 6 * * *", "UTC", at) == datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
    just_before = datetime(2026, 12, 2, 5, 59, 59, 900_000, tzinfo=UTC)
    assert next_fire_time("0 6 * * *", "UTC", just_before) == at


def test_daily_time_follows_daylight_saving_in_its_zone() -> None:
    # 06:00 in Paris is 05:00 UTC in winter and 04:00 UTC in summer (change: 29 March 2026).
    before = next_fire_time("0 6 * * *", "Europe/Paris", datetime(2026, 3, 28, 12, tzinfo=UTC))
    after = next_fire_time("0 6 * * *", "Europe/Paris", datetime(2026, 3, 29, 12, tzinfo=UTC))
    assert before == datetime(2026, 3, 29, 4, 0, tzinfo=UTC)  # already summer time that day
    assert next_fire_time("0 6 * * *", "Europe/Paris", datetime(2026, 3, 27, 12, tzinfo=UTC)) == (
        datetime(2026, 3, 28, 5, 0, tzinfo=UTC)
    )
    assert after == datetime(2026, 3, 30, 4, 0, tzinfo=UTC)


def test_day_names_and_steps_are_read() -> None:
    monday = datetime(2026, 11, 30, tzinfo=UTC)  # a Monday, 00:00
    assert next_fire_time("*/15 9 * * mon-fri", "UTC", monday) == datetime(
        2026, 11, 30, 9, 0, tzinfo=UTC
    )
    sunday = datetime(2026, 12, 6, 10, tzinfo=UTC)
    assert next_fire_time("30 8 * * mon", "UTC", sunday) == datetime(2026, 12, 7, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cron", "says"),
    [
        ("* * * * * *", "Wrong number of fields; got 6, expected 5"),
        ("*/0 * * * *", "Increment must be higher than 0"),
        ("0 0 30 2 *", "never fires"),
        ("x" * 121, "121 characters long; at most 120"),
    ],
    ids=["six-fields", "zero-step", "february-30", "too-long"],
)
def test_bad_cron_names_cron_and_the_problem(cron: str, says: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_cron(cron)
    assert caught.value.code == "invalid_cron"
    assert caught.value.details["parameter"] == "cron"
    assert says in caught.value.message


@pytest.mark.parametrize(
    "timezone",
    ["Mars/Olympus", "../../etc/passwd", "/etc/localtime", "UTC\x00", "Europe/"],
    ids=["unknown", "traversal", "absolute", "nul", "folder"],
)
def test_bad_time_zone_names_timezone(timezone: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_cron("0 6 * * *", timezone)
    assert caught.value.code == "invalid_timezone"
    assert caught.value.details == {"parameter": "timezone", "value": timezone}
