"""Chart data for the pages: the same rows as the tables beside them, shaped for Chart.js.

A chart is also printed as an HTML table (for screen readers and browsers without JavaScript), from
the same object, so the picture and the numbers cannot disagree. Amounts stay decimal strings:
Chart.js parses them for drawing only.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any


@dataclass(frozen=True, slots=True)
class Chart:
    """Bars per label (a day, a model...), one series per key (a model, a provider...)."""

    labels: list[str]
    series: dict[str, list[Decimal]] = field(default_factory=dict)
    # what the labels are, as the table's first column says it
    title: str = "Day"

    def totals(self) -> list[Decimal]:
        return [sum((values[i] for values in self.series.values()), Decimal(0)) for i in range(len(self.labels))]

    def as_json(self) -> dict[str, Any]:
        """What static/charts.js draws: {labels, datasets: [{label, data}]} with decimal strings."""
        return {
            "labels": self.labels,
            "datasets": [{"label": key, "data": [str(v) for v in values]} for key, values in self.series.items()],
        }


def days(last: datetime.date, count: int) -> list[datetime.date]:
    return [last - datetime.timedelta(days=count - 1 - i) for i in range(count)]


def by_day(
    rows: Iterable[Mapping[str, Any]], first: datetime.date, last: datetime.date, *, key: str, value: str
) -> Chart:
    """Stacked daily bars: every day from first to last (a day without rows is zero), one series
    per distinct `key`, ordered by the series' total, largest first."""
    labels = [d.isoformat() for d in days(last, (last - first).days + 1)]

    def day_of(row: Mapping[str, Any]) -> str:
        return row["day"].isoformat() if isinstance(row["day"], datetime.date) else str(row["day"])

    return _stacked(rows, labels, day_of, key=key, value=value, title="Day")


def _stacked(
    rows: Iterable[Mapping[str, Any]],
    labels: list[str],
    label_of: Callable[[Mapping[str, Any]], str],
    *,
    key: str,
    value: str,
    title: str,
) -> Chart:
    """Each row's `value` added to its label's bar of its `key`'s series; rows of other labels are
    left out; series ordered by their total, largest first."""
    index = {label: i for i, label in enumerate(labels)}
    series: dict[str, list[Decimal]] = {}
    for row in rows:
        at = index.get(label_of(row))
        if at is None:
            continue
        values = series.setdefault(str(row[key]), [Decimal(0)] * len(labels))
        values[at] += Decimal(row[value])
    ordered = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    return Chart(labels, dict(ordered), title)


def by_label(rows: Iterable[Mapping[str, Any]], *, label: str, value: str, name: str) -> Chart:
    """One bar per row (a model, a provider), in the rows' order: a single series called `name`."""
    listed = list(rows)
    return Chart([str(r[label]) for r in listed], {name: [Decimal(r[value] or 0) for r in listed]}, label.title())


def months(last: datetime.date, count: int) -> list[datetime.date]:
    """The first days of the `count` months up to the one holding `last`, oldest first."""
    index = last.year * 12 + last.month - 1
    return [datetime.date(i // 12, i % 12 + 1, 1) for i in range(index - count + 1, index + 1)]


def by_month(rows: Iterable[Mapping[str, Any]], last: datetime.date, count: int, *, key: str, value: str) -> Chart:
    """Stacked monthly bars, as by_day: rows carry `month` (its first day); a month without rows is zero."""
    labels = [m.isoformat()[:7] for m in months(last, count)]
    return _stacked(rows, labels, lambda row: str(row["month"])[:7], key=key, value=value, title="Month")
