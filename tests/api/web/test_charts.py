"""Chart data: every row inside the window is drawn once, on its day and series, and nothing else."""

from __future__ import annotations

import datetime
from collections import defaultdict
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from api.web.charts import by_day

LAST = datetime.date(2028, 3, 1)  # after a leap day
FIRST = LAST - datetime.timedelta(days=29)
rows = st.lists(
    st.fixed_dictionaries(
        {
            "day": st.dates(FIRST - datetime.timedelta(days=5), LAST + datetime.timedelta(days=2)),
            "model": st.sampled_from(["gpt-4", "claude", "=evil()", ""]),
            "credits": st.decimals(0, 10**6, places=6, allow_nan=False, allow_infinity=False),
        }
    ),
    max_size=40,
)


@given(rows)
def test_each_day_and_series_is_the_sum_of_its_rows_in_the_window(given_rows):
    chart = by_day(given_rows, FIRST, LAST, key="model", value="credits")

    expected: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for row in given_rows:
        if FIRST <= row["day"] <= LAST:
            expected[(row["day"].isoformat(), row["model"])] += row["credits"]
    drawn = {
        (label, name): value
        for name, values in chart.series.items()
        for label, value in zip(chart.labels, values, strict=True)
        if value
    }
    assert drawn == {key: value for key, value in expected.items() if value}
    assert chart.labels[0] == FIRST.isoformat() and chart.labels[-1] == LAST.isoformat() and len(chart.labels) == 30
    assert "2028-02-29" in chart.labels
    assert sum(chart.totals()) == sum(expected.values(), Decimal(0))
    json = chart.as_json()
    assert all(isinstance(v, str) for dataset in json["datasets"] for v in dataset["data"])
