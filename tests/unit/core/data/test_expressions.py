"""User expressions are parsed into a syntax tree and allow-listed: no text trick reaches I/O.

The canary file's access time is pushed before its modification time before each try;
with relatime (the default on Linux) any read of the file moves it, so the tests see a
read by Polars' own (Rust) file readers, not only what ends up in messages.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from narrate.core.data.expressions import (
    ExpressionLimits,
    compile_expression,
    filter_rows,
    render_expression,
)
from narrate.errors import BadRequest, InvalidInput

SECRET = "TOPSECRET_canary_value"


class Canary:
    """A file whose reads are seen through its access time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text(f"{SECRET}\n{SECRET}\n")

    def arm(self) -> None:
        os.utime(self.path, (1, time.time()))

    def was_read(self) -> bool:
        return os.stat(self.path).st_atime > 1


@pytest.fixture(scope="module")
def canary(tmp_path_factory: pytest.TempPathFactory) -> Canary:
    found = Canary(tmp_path_factory.mktemp("canary") / "secret.csv")
    found.arm()
    found.path.read_text()
    if not found.was_read():  # pragma: no cover - a file system mounted noatime
        pytest.skip("this file system does not record access times, so reads can't be seen")
    found.arm()
    return found


@pytest.fixture(scope="module")
def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {"species": ["a", "x", None], "island": ["Biscoe", "Dream", "x"], "mass": [1.0, 2.5, 3.0]}
    )


def _attempt(frame: pl.DataFrame, expression: str) -> str:
    """Run the expression as a filter and as a derived column; return all visible text."""
    seen = []
    for run in (
        lambda: filter_rows(frame, expression),
        lambda: frame.select(compile_expression(expression).alias("r")),
    ):
        try:
            seen.append(str(run().rows()))
        except InvalidInput as exc:  # BadRequest included
            seen.append(exc.message + str(exc.details))
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException) as exc:
            pytest.fail(f"{expression!r} escaped as a raw Polars error: {exc}")
    return "\n".join(seen)


ATTACKS = [
    # the probe's bypass: a quote inside a comment made the old text check see a string
    "species = 'x' /* ' */ OR island IN (SELECT zzz FROM read_csv('{p}')) /* ' */",
    "species = 'x' -- '\n OR island IN (SELECT column_1 FROM read_csv('{p}', has_header = false))",
    "island IN (SELECT column_1 FROM read_csv('{p}', has_header = false))",
    "EXISTS (SELECT * FROM read_csv('{p}'))",
    "read_csv('{p}') IS NULL",
    "\"read_csv\"('{p}') IS NULL",
    "species = 'x' OR island = (SELECT max(column_1) FROM read_csv('{p}'))",
    "species = 'x'; SELECT * FROM read_csv('{p}')",
    "species = 'x' UNION SELECT * FROM read_csv('{p}')",
    "species = $$x$$ OR island IN (SELECT column_1 FROM read_csv('{p}'))",
    "species = E'x\\'' OR island IN (SELECT column_1 FROM read_csv('{p}')) OR species = E'\\''",
    "species = 'x\\' OR island IN (SELECT column_1 FROM read_csv('{p}')) OR species = '",
    "island IN (TABLE x)",
    "island = ANY(SELECT column_1 FROM read_csv('{p}'))",
    "coalesce((SELECT column_1 FROM read_csv('{p}')), 'a') = 'a'",
    "CAST((SELECT column_1 FROM read_csv('{p}')) AS VARCHAR) = 'a'",
    "CASE WHEN (SELECT 1 FROM read_csv('{p}')) = 1 THEN TRUE END",
]


@pytest.mark.parametrize("template", ATTACKS, ids=range(len(ATTACKS)))
def test_known_attacks_are_refused_without_reading_the_file(
    canary: Canary, frame: pl.DataFrame, template: str
) -> None:
    canary.arm()
    expression = template.format(p=canary.path)
    with pytest.raises(InvalidInput) as info:
        render_expression(expression)
    assert SECRET not in info.value.message
    assert _attempt(frame, expression).count(SECRET) == 0
    assert not canary.was_read(), f"{expression!r} read the file"


def test_the_comment_bypass_names_the_construct_with_a_400(canary: Canary) -> None:
    expression = ATTACKS[0].format(p=canary.path)
    with pytest.raises(BadRequest) as info:
        render_expression(expression)
    assert info.value.code == "forbidden_expression" and info.value.status == 400
    assert "sub-query" in info.value.message


def test_a_missing_file_is_refused_the_same_way_as_a_present_one(tmp_path: Path) -> None:
    messages = []
    (tmp_path / "exists.csv").write_text("a\n1\n")
    for path in (tmp_path / "absent.csv", tmp_path / "exists.csv"):
        with pytest.raises(BadRequest) as info:
            render_expression(f"island IN (SELECT column_1 FROM read_csv('{path}'))")
        # The expression itself is echoed (shortened); what follows it must not differ.
        messages.append(info.value.message.split("is not allowed:")[1])
    assert messages[0] == messages[1]


@pytest.mark.parametrize(
    ("expression", "rows"),
    [
        ("mass > 2 AND island <> 'x'", [("x", "Dream", 2.5)]),
        ("species IS NOT NULL AND species NOT LIKE 'x%'", [("a", "Biscoe", 1.0)]),
        ("island NOT IN ('Biscoe', 'Dream')", [(None, "x", 3.0)]),
        ("mass NOT BETWEEN 2 AND 2.9 AND species IS NULL", [(None, "x", 3.0)]),
        ("upper(island) = 'DREAM' /* a comment */", [("x", "Dream", 2.5)]),
        ("CASE WHEN mass > 2.6 THEN TRUE ELSE FALSE END", [(None, "x", 3.0)]),
        ("CAST(mass AS INTEGER) = 1 OR island = 'it''s'", [("a", "Biscoe", 1.0)]),
        ("\"island\" = 'Biscoe'", [("a", "Biscoe", 1.0)]),
        ("island = 'select * from read_csv(''x'')'", []),
    ],
    ids=[
        "and",
        "not-null-like",
        "not-in",
        "not-between",
        "comment",
        "case",
        "cast",
        "quoted",
        "text",
    ],
)
def test_plain_conditions_still_work(
    frame: pl.DataFrame, expression: str, rows: list[tuple[object, ...]]
) -> None:
    assert filter_rows(frame, expression).rows() == rows


def test_limits_give_a_422_naming_the_setting() -> None:
    limits = ExpressionLimits(max_chars=4096, max_depth=8)
    with pytest.raises(InvalidInput) as info:
        render_expression("mass > 1 OR " * 400 + "mass > 1", limits=limits)
    assert (info.value.code, info.value.status) == ("expression_too_long", 422)
    assert info.value.details["setting"] == "NARRATE_MAX_EXPRESSION_CHARS"
    for deep in ("abs(" * 9 + "mass" + ")" * 9, "(" * 5000 + "mass" + ")" * 5000):
        with pytest.raises(InvalidInput) as info:
            render_expression(deep, limits=ExpressionLimits(max_chars=20_000, max_depth=8))
        assert (info.value.code, info.value.status) == ("expression_too_deep", 422)
    for chain in ("NOT " * 30 + "mass > 1", "mass" + " - 1" * 30, "- " * 30 + "mass"):
        with pytest.raises(InvalidInput) as info:
            render_expression(chain, limits=limits)
        assert info.value.code == "expression_too_deep", chain


def test_the_longest_unbracketed_chains_fail_cleanly() -> None:
    for chain in ("NOT " * 1000 + "mass > 1", "mass" + "-1" * 2000, "- " * 2000 + "mass"):
        with pytest.raises(InvalidInput) as info:
            render_expression(chain[:4096])
        assert info.value.code in ("expression_too_deep", "invalid_expression"), chain


def test_a_long_chain_of_or_is_one_level_and_runs(frame: pl.DataFrame) -> None:
    expression = " OR ".join(f"mass = {i}" for i in range(300))  # ~3.6 KB
    assert filter_rows(frame, expression)["mass"].to_list() == [1.0, 3.0]


def test_ten_thousand_ors_are_refused_before_any_parser_runs() -> None:
    expression = " OR ".join(f"mass = {i}" for i in range(10_000))
    with pytest.raises(InvalidInput) as info:
        render_expression(expression)
    assert info.value.code == "expression_too_long"


def test_the_depth_setting_is_reachable_without_recursion_errors(frame: pl.DataFrame) -> None:
    limits = ExpressionLimits(max_chars=4096, max_depth=64)
    expression = "abs(" * 63 + "mass" + ")" * 63 + " > 2"
    assert render_expression(expression, limits=limits).count("abs(") == 63


def test_functions_outside_the_list_and_polars_panics_are_input_errors(
    frame: pl.DataFrame,
) -> None:
    with pytest.raises(BadRequest, match="'system' is not a function"):
        render_expression("system('ls') = 0")
    with pytest.raises(BadRequest, match="at least one argument"):
        render_expression("greatest() > 1")


FRAGMENTS = [
    "/* ' */", '/* " */', "-- '\n", "--\n", "/* /* */ */", "'", "''", "\\'", "E'\\''", "$$",
    "$x$", "\u00a0", "\u200b", "ＳＥＬＥＣＴ", "ѕelect", "ＦＲＯＭ", "`", ";", "(", ")", ",",
    "abs(", "coalesce(", "upper(", "CAST(", "island", "species", "1", "OR", "AND", "IN", "=",
    "'x'", '"island"', "CASE WHEN", "THEN", "END", "::", "\\", "U&'\\0041'", "x'41'", "?",
]  # fmt: skip


def _payloads(path: Path) -> list[str]:
    return [
        f"read_csv('{path}')",
        f"(SELECT column_1 FROM read_csv('{path}', has_header = false))",
        f"(SELECT * FROM read_parquet('{path}'))",
        f"\"read_csv\"('{path}')",
        f"READ_NDJSON('{path}')",
        f"(TABLE read_csv('{path}'))",
    ]


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_generated_expression_reaches_the_file(
    canary: Canary, frame: pl.DataFrame, data: st.DataObject
) -> None:
    before = data.draw(st.lists(st.sampled_from(FRAGMENTS), max_size=6))
    after = data.draw(st.lists(st.sampled_from(FRAGMENTS), max_size=6))
    payload = data.draw(st.sampled_from(_payloads(canary.path)))
    glue = data.draw(st.sampled_from([" ", "", "\n", "\t", " OR island IN ", " = "]))
    expression = glue.join([*before, payload, *after])
    canary.arm()
    seen = _attempt(frame, expression)
    assert SECRET not in seen
    assert not canary.was_read(), f"{expression!r} read the file"
