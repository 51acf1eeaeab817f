"""Running a report's FILTER aggregates over its cohort: in total, per row, per time bucket.

Each report names its figures once, as a dict of aggregates (`Count("pk", filter=…)`, `Avg`,
`PercentileCont`), and `totals`, `rows` and `series` run that same dict three ways, so a chart's
figures, the table's and the totals can never drift apart (summed per row or per bucket, the
counts equal the totals). `derive` then adds the rates from the counts.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from django.db.models import Aggregate, Count, QuerySet

from reporting.reports.filters import ReportFilters
from reporting.reports.sql import Bucket, bucket_axis

Figures = Mapping[str, Aggregate]
Derive = Callable[[dict[str, Any]], dict[str, Any]]


def rate(numerator: int | None, denominator: int | None) -> float | None:
    """A fraction 0-1, None when there is nothing to divide by."""
    if not denominator:
        return None
    return (numerator or 0) / denominator


def empty(figures: Figures) -> dict[str, Any]:
    """The figures of no calls: counts 0, everything else (means, percentiles) None."""
    return {name: 0 if isinstance(aggregate, Count) else None for name, aggregate in figures.items()}


def _clean(values: dict[str, Any], figures: Figures) -> dict[str, Any]:
    out = empty(figures)
    for name in figures:
        value = values.get(name)
        if value is not None:
            out[name] = value
    return out


def totals(records: QuerySet[Any], figures: Figures, derive: Derive) -> dict[str, Any]:
    return derive(_clean(records.aggregate(**figures), figures))


def rows(records: QuerySet[Any], figures: Figures, derive: Derive, *, by: str) -> list[dict[str, Any]]:
    """One dict per value of `by` (a field; None for calls with none), with `key` = that value."""
    grouped = records.order_by().values(by).annotate(**figures)
    return [{"key": row[by], **derive(_clean(row, figures))} for row in grouped]


def series(
    records: QuerySet[Any],
    figures: Figures,
    derive: Derive,
    filters: ReportFilters,
    *,
    field: str = "started_at",
) -> list[dict[str, Any]]:
    """The figures per bucket of `filters.interval` in `filters.tz`, every bucket of the window
    present (zero-filled: a chart's axis has no holes); [] when the interval is "none"."""
    if filters.interval == "none":
        return []
    grouped = (
        records.order_by()
        .annotate(report_bucket=Bucket(field, filters.interval, filters.tz))
        .values("report_bucket")
        .annotate(**figures)
    )
    found = {_utc(row["report_bucket"]): _clean(row, figures) for row in grouped}
    return zero_filled(filters, found, empty(figures), derive)


def computed(
    records: QuerySet[Any], figures: Figures, derive: Derive, filters: ReportFilters, *, by: str
) -> dict[str, Any]:
    """`totals`, `rows` by `by` and `series` of the same figures over the same records, as the
    reports' `assemble_report` takes them."""
    return {
        "total": totals(records, figures, derive),
        "grouped": rows(records, figures, derive, by=by),
        "series": series(records, figures, derive, filters),
    }


def zero_filled(
    filters: ReportFilters, found: Mapping[datetime, dict[str, Any]], empty: dict[str, Any], derive: Derive
) -> list[dict[str, Any]]:
    """One point per bucket of the window: `found`'s values (keyed by the bucket's UTC start), else
    `empty`'s, each derived. Built with one walk of the axis: a month of 15-minute buckets is 2,976."""
    start, end = filters.window
    out = []
    for bucket, utc in bucket_axis(start, end, filters.interval, filters.tz):
        values = found.get(utc)
        point = derive(dict(values) if values is not None else dict(empty))
        point["bucket"] = bucket
        out.append(point)
    return out


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def report(
    filters: ReportFilters, total: dict[str, Any], table: list[dict[str, Any]], chart: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "tz": filters.tz.key,
        "start": filters.start,
        "end": filters.end,
        "interval": filters.interval,
        "totals": total,
        "rows": table,
        "series": chart,
    }
