"""The CSV export: any cell reads back as written, and no cell starts as a formula."""

from __future__ import annotations

import csv
import io
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from api.web.csv_export import FORMULA_STARTS, _line, cell


@given(st.lists(st.text(max_size=30), min_size=1, max_size=6))
def test_any_text_reads_back_and_never_starts_a_formula(values):
    (read,) = list(csv.reader(io.StringIO(_line(values))))

    for given_text, text in zip(values, read, strict=True):
        assert not text.startswith(FORMULA_STARTS)
        assert text == given_text or text == "'" + given_text


@given(st.decimals(-(10**12), 10**12, places=6, allow_nan=False, allow_infinity=False))
def test_a_decimal_is_written_exactly(amount):
    assert Decimal(cell(amount)) == amount
