"""A report's dict (reporting.reports: {"tz", "start", "end", "interval", "totals", "rows",
"series"}) as export tables, every figure the dict's own value: nothing is recomputed here.

Columns come from the dict: the figures are the totals' scalar keys, in the report's order;
a row's other keys (its id, name, a queue's extension…) come first. The totals' breakdowns
(handoffs by target, failures, context values) are lists and dicts, not columns: the page and
the API show them. Buckets are written as ISO 8601 with the offset of the report's zone.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from reporting.exports.formats import Sheet, csv_safe

Cell = str | int | float | None


@dataclass(frozen=True)
class ReportTables:
    figures: list[str]  # the figure columns, shared by rows, totals and buckets
    keys: list[str]  # a row's identifying columns (id, name, …)
    rows: list[list[Cell]]  # one per bot / queue / campaign, then none for the totals
    totals: list[Cell]
    series_figures: list[str]
    series: list[list[Cell]]  # [bucket, *series_figures]


def _is_scalar(value: Any) -> bool:
    return value is None or isinstance(value, str | int | float | uuid.UUID | date)


def _cell(value: Any) -> Cell:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def report_tables(report: dict[str, Any]) -> ReportTables:
    totals = report["totals"]
    figures = [name for name, value in totals.items() if _is_scalar(value)]
    keys: list[str] = []
    for row in report["rows"]:
        keys += [name for name in row if name not in totals and name not in keys and _is_scalar(row[name])]
    series_figures = [name for name in (report["series"][0] if report["series"] else {}) if name != "bucket"]
    return ReportTables(
        figures=figures,
        keys=keys,
        rows=[[_cell(row.get(name)) for name in (*keys, *figures)] for row in report["rows"]],
        totals=[_cell(totals[name]) for name in figures],
        series_figures=series_figures,
        series=[
            [_cell(point["bucket"]), *(_cell(point.get(name)) for name in series_figures)]
            for point in report["series"]
        ],
    )


def csv_rows(tables: ReportTables) -> tuple[list[str], Iterator[list[Cell]]]:
    """One rectangular table: `section` says what a line is — "row" (a bot, queue or campaign),
    "total", or "bucket" (a point of the series, its start in `bucket`). Figure columns are the
    union of the rows' and the series' (a bucket leaves the row-only ones empty)."""
    figures = tables.figures + [name for name in tables.series_figures if name not in tables.figures]
    header = ["section", "bucket", *tables.keys, *figures]
    blank_keys: list[Cell] = [None] * len(tables.keys)

    def safe(cells: Sequence[Cell]) -> list[Cell]:
        # Names come from outside; numbers are numbers, never formulas.
        return [csv_safe(cell) if isinstance(cell, str) else cell for cell in cells]

    def lines() -> Iterator[list[Cell]]:
        width = len(tables.figures)
        padding: list[Cell] = [None] * (len(figures) - width)
        for row in tables.rows:
            yield safe(["row", None, *row, *padding])
        yield safe(["total", None, *blank_keys, *tables.totals, *padding])
        for bucket, *values in tables.series:
            by_name = dict(zip(tables.series_figures, values, strict=True))
            yield safe(["bucket", bucket, *blank_keys, *(by_name.get(name) for name in figures)])

    return header, lines()


RATE_FORMAT = "0.0%"


def xlsx_sheets(tables: ReportTables, title: str, interval: str, report: dict[str, Any]) -> list[Sheet]:
    """A sheet of rows with the totals last, a sheet of the series (when grouped), the filters."""
    rates = {name: RATE_FORMAT for name in tables.figures if _is_rate(name)}
    label: list[Cell] = [None] * len(tables.keys)
    if label:
        label[tables.keys.index("name") if "name" in tables.keys else 0] = "Total"
    sheets = [Sheet(title, [*tables.keys, *tables.figures], [*tables.rows, [*label, *tables.totals]], rates)]
    if tables.series:
        sheets.append(
            Sheet(
                f"By {interval}",
                ["bucket", *tables.series_figures],
                tables.series,
                {name: RATE_FORMAT for name in tables.series_figures if _is_rate(name)},
            )
        )
    about = [[name, _cell(report[name])] for name in ("tz", "start", "end", "interval")]
    sheets.append(Sheet("Filters", ["filter", "value"], about))
    return sheets


def _is_rate(name: str) -> bool:
    return name.endswith("_rate") or name == "service_level"
