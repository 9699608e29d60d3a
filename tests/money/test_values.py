"""Amounts and ids are checked before any SQL runs; no float becomes money."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from ledger.errors import InvalidAmount, InvalidId
from ledger.money.values import to_credits, to_uuid


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.50", Decimal("2.50")),
        ("7", Decimal("7")),
        ("0.000001", Decimal("0.000001")),
        (3, Decimal("3")),
        (Decimal("0.000001"), Decimal("0.000001")),
    ],
)
def test_decimal_strings_ints_and_decimals_are_credit_amounts(value, expected):
    assert to_credits(value) == expected


@pytest.mark.parametrize("value", [0.1, True, None, "1e", "", "-1", "0", "sNaN", "-Infinity", "1.0000001", [1]])
def test_anything_else_is_refused(value):
    with pytest.raises(InvalidAmount):
        to_credits(value)


@pytest.mark.parametrize(
    "text",
    ["1e5", "1E+2", "1_000", "\u0661", "\uff11", " 1", "1 ", "+5", "0x10", "1.", ".5", "1,5", "--1", "-+1", "Infinity"],
)
def test_amount_text_must_be_a_plain_ascii_decimal(text):
    """Decimal() reads all of these as numbers ("1e5" is 100000); none is what it looks like."""
    with pytest.raises(InvalidAmount, match="plain decimal"):
        to_credits(text)


def test_zero_is_allowed_only_where_asked():
    assert to_credits("0", allow_zero=True) == 0
    with pytest.raises(InvalidAmount):
        to_credits("-0.5", allow_zero=True)


def test_ids_must_be_uuids():
    value = uuid.uuid4()
    assert to_uuid(str(value)) == value
    with pytest.raises(InvalidId, match="user_id must be a UUID"):
        to_uuid("USER_UUID", "user_id")
