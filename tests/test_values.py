"""Amounts and ids are checked before any SQL runs; no float becomes money."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest

from ledger.errors import InvalidAmount, InvalidId
from ledger.values import to_credits, to_uuid


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2.50", Decimal("2.50")),
        (" 7 ", Decimal("7")),
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


def test_zero_is_allowed_only_where_asked():
    assert to_credits("0", allow_zero=True) == 0
    with pytest.raises(InvalidAmount):
        to_credits("-0.5", allow_zero=True)


def test_ids_must_be_uuids():
    value = uuid.uuid4()
    assert to_uuid(str(value)) == value
    with pytest.raises(InvalidId, match="user_id must be a UUID"):
        to_uuid("USER_UUID", "user_id")
