"""detect_pii, mask_value and hash_value on real-looking values and near misses."""

from __future__ import annotations

import random

import polars as pl
import pytest

from narrate.core.data.pii import detect_pii, hash_value, mask_value, pii_fix
from narrate.core.data.types import infer_types


def _detect(name: str, values: list[str]) -> list[dict[str, object]]:
    frame, kinds = infer_types(pl.DataFrame({name: values}))
    return detect_pii(frame, kinds)


@pytest.mark.parametrize(
    ("name", "values", "kind"),
    [
        ("contact", ["ann@example.com", "bob.smith@mail.co.uk", "c+tag@x.io"], "email"),
        ("tel", ["+44 20 7946 0958", "(415) 555-2671", "415-555-2671", "+14155550123"], "phone"),
        ("card", ["4111 1111 1111 1111", "5500-0000-0000-0004", "378282246310005"], "credit_card"),
        ("acct", ["GB82 WEST 1234 5698 7654 32", "DE89370400440532013000"], "iban"),
        ("host", ["192.168.0.1", "10.0.0.254", "2001:db8::1"], "ip_address"),
        ("ssn", ["123-45-6789", "078-05-1120", "219-09-9999"], "national_id"),
        ("nino", ["AB 12 34 56 C", "QQ123456A", "CE 99 88 77 D"], "national_id"),
        ("surname", ["Smith", "García", "O'Neil"], "person_name"),
        ("Full Name", ["Ann Lee", "Bob Stone", "x"], "person_name"),
    ],
    ids=["email", "phone", "credit-card", "iban", "ip", "ssn", "uk-nino", "surname", "full-name"],
)
def test_detect_pii_finds_personal_columns(name: str, values: list[str], kind: str) -> None:
    found = _detect(name, values)
    assert len(found) == 1
    hit = found[0]
    assert (hit["column"], hit["kind"]) == (name, kind)
    assert hit["actions"] == ["drop", "mask", "hash"]
    assert 0 < float(hit["share"]) <= 1  # type: ignore[arg-type]
    assert hit["examples_masked"]
    assert all(example not in values for example in hit["examples_masked"])  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("name", "values"),
    [
        ("card", ["4111111111111112", "1234567812345678", "5500000000000005"]),
        ("order", ["ORD-555-1234", "123-4567-89", "2023-10-0001"]),
        ("day", ["2023-10-01", "2024-01-31", "1999-12-31"]),
        ("qty", ["5551234567", "4155550123", "2125550000"]),
        ("acct", ["GB82WEST12345698765433", "DE89370400440532013001"]),
        ("version", ["1.2.3", "999.1.1.1", "300.2.2.2"]),
        ("time", ["12:30:00", "10:00:00", "23:59:59"]),
        ("code", ["000-12-3456", "666-12-3456", "900-12-3456"]),
        ("product_name", ["Widget", "Gadget", "Gizmo"]),
    ],
    ids=[
        "16-digits-failing-luhn",
        "order-ids",
        "dates",
        "plain-integers",
        "iban-bad-checksum",
        "invalid-ipv4",
        "clock-times",
        "invalid-ssn-areas",
        "product-name-header",
    ],
)
def test_detect_pii_ignores_near_misses(name: str, values: list[str]) -> None:
    assert _detect(name, values) == []


def test_detect_pii_needs_thirty_percent_of_values() -> None:
    values = ["ann@example.com"] + [f"note {i}" for i in range(9)]
    assert _detect("comment", values) == []
    assert _detect("comment", values[:1] * 3 + values[1:8])[0]["kind"] == "email"


@pytest.mark.parametrize(
    ("value", "kind", "masked"),
    [
        ("ann.lee@example.com", "email", "a***@example.com"),
        ("4111 1111 1111 1111", "credit_card", "**** **** **** 1111"),
        ("Ann Lee", "person_name", "A. L."),
        ("415-555-2671", "phone", "***-***-2671"),
        ("ab", None, "*b"),
    ],
    ids=["email", "card", "name", "phone", "short"],
)
def test_mask_value_keeps_only_shape(value: str, kind: str | None, masked: str) -> None:
    assert mask_value(value, kind) == masked


def test_hash_value_is_salted_and_stable() -> None:
    assert hash_value("ann@example.com", "s1") == hash_value("ann@example.com", "s1")
    assert hash_value("ann@example.com", "s1") != hash_value("ann@example.com", "s2")
    assert len(hash_value("x", b"salt")) == 64


def test_hash_value_refuses_empty_salt() -> None:
    with pytest.raises(ValueError, match="non-empty salt"):
        hash_value("x", "")


def _luhn_digit(partial: str) -> str:
    """The check digit that makes ``partial + digit`` pass the Luhn check."""
    total = 0
    for index, char in enumerate(reversed(partial)):
        number = int(char)
        if index % 2 == 0:
            number = number * 2 - 9 if number > 4 else number * 2
        total += number
    return str((10 - total % 10) % 10)


def _cards(count: int, seed: int = 7) -> list[int]:
    rng = random.Random(seed)
    prefixes = ["4", "51", "37", "6011"]
    out = []
    for i in range(count):
        prefix = prefixes[i % len(prefixes)]
        length = 15 if prefix == "37" else 16
        body = prefix + "".join(rng.choice("0123456789") for _ in range(length - 1 - len(prefix)))
        out.append(int(body + _luhn_digit(body)))
    return out


def _random_ints(count: int, digits: int, *, seed: int) -> list[int]:
    rng = random.Random(seed)
    return [rng.randrange(10 ** (digits - 1), 10**digits) for _ in range(count)]


def _detect_frame(columns: dict[str, list[object]]) -> list[dict[str, object]]:
    frame, kinds = infer_types(pl.DataFrame(columns))
    return detect_pii(frame, kinds)


def test_card_numbers_stored_as_integers_are_found() -> None:
    cards = _cards(200)
    frame, kinds = infer_types(pl.DataFrame({"card": cards}))
    assert kinds["card"] == "integer"  # digits only: read as a number, still checked
    [hit] = detect_pii(frame, kinds)
    assert (hit["column"], hit["kind"], hit["share"]) == ("card", "credit_card", 1.0)
    assert all(str(card) not in hit["examples_masked"] for card in cards)
    assert str(hit["examples_masked"][0]).endswith(str(cards[0])[-4:])


def test_phone_numbers_stored_as_integers_are_found_by_header() -> None:
    rng = random.Random(3)
    phones = [
        int(f"{rng.choice([415, 212, 617])}{rng.randint(2_000_000, 9_999_999)}") for _ in range(100)
    ]
    for header in ("phone", "Mobile Number", "tel", "contact_phone", "fax"):
        [hit] = _detect_frame({header: phones})
        assert (hit["column"], hit["kind"]) == (header, "phone")


@pytest.mark.parametrize(
    "columns",
    [
        # 16-digit integers that are not card numbers: about 1 in 10 passes Luhn by chance
        {"card": _random_ints(300, 16, seed=1)},
        # card-like integers mixed with non-cards: too few valid ones for digits alone
        {"account": _cards(50) + _random_ints(150, 16, seed=2)},
        # small counts, even under a phone-like header
        {"phone_calls": [i % 40 for i in range(200)]},
        {"tel": list(range(200))},
        # ten-digit numbers without a phone header are quantities or IDs, not phones
        {"order_no": [4_155_550_000 + i for i in range(200)]},
        # negative and short numbers
        {"card": [-c for c in _cards(50)]},
        {"amount": [123_456 + i for i in range(200)]},
    ],
    ids=[
        "random-16-digits",
        "few-valid-cards",
        "small-counts-phone-header",
        "small-ints-tel-header",
        "ten-digits-no-header",
        "negative-cards",
        "six-digit-amounts",
    ],
)
def test_integer_near_misses_are_not_personal_data(columns: dict[str, list[object]]) -> None:
    assert _detect_frame(columns) == []


def test_findings_carry_recipe_fixes_for_each_action() -> None:
    [hit] = _detect("email", ["ann@example.com", "bob@example.org"])
    assert hit["fixes"] == {
        "drop": {"step": "drop_columns", "columns": ["email"]},
        "mask": {"step": "pii", "columns": ["email"], "method": "mask"},
        "hash": {"step": "pii", "columns": ["email"], "method": "hash"},
    }
    assert pii_fix("x", "hash") == {"step": "pii", "columns": ["x"], "method": "hash"}
    with pytest.raises(ValueError, match="Unknown PII action"):
        pii_fix("x", "encrypt")
