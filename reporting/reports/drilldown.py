"""From a report figure to the Calls page that lists the calls behind it.

    calls_query(filters, "queues", "abandoned", row=queue_id, bucket=point["bucket"])
    -> "date_from=2026-05-01&date_to=2026-05-07&tz=Europe%2FLondon&queue=…&queue_result=abandoned&…"

The query holds the report's own window (dates in its zone), its filters, the row's bot / queue /
campaign, the bucket's [start, next start) and the figure's predicate (reporting.reports.predicates,
the very Q the report counted with), so the Calls page's count equals the figure for every figure in
EXACT. Other figures link to the calls they are computed from:
- rates link to their numerator's calls, times and percentiles to the calls they are taken over;
- `leads` and `attempts_per_lead` to the dialled calls (a lead may have several);
- handoff counts (`handoffs_requested`, `handoffs_completed`, `handoffs_failed`) count REFERs: the
  list shows the calls with at least one such handoff, fewer when a call had several.
A row of a deleted bot or queue, or of a campaign id that names no campaign of the center, has no
list (the Calls page cannot filter on those): `row_has_list()` says so.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from reporting.reports.filters import ReportFilters
from reporting.reports.sql import next_bucket

# figure → (Calls page parameter, value), per report.
FIGURES: dict[str, dict[str, tuple[str, str]]] = {
    "virtual_agents": {
        "calls": ("outcome", "reached_bot"),
        "contained": ("outcome", "contained"),
        "handed_off": ("outcome", "handed_off"),
        "abandoned_in_bot": ("outcome", "abandoned_in_bot"),
        "in_progress": ("outcome", "in_bot"),
        "containment_rate": ("outcome", "contained"),
        "handoff_rate": ("outcome", "handed_off"),
        "abandon_rate": ("outcome", "abandoned_in_bot"),
        "bot_time_mean": ("outcome", "reached_bot"),
        "bot_time_p50": ("outcome", "reached_bot"),
        "bot_time_p90": ("outcome", "reached_bot"),
        "time_to_handoff_mean": ("outcome", "handed_off"),
        "time_to_handoff_p50": ("outcome", "handed_off"),
        "time_to_handoff_p90": ("outcome", "handed_off"),
        "handoffs_requested": ("handoff", "requested"),
        "handoffs_completed": ("handoff", "completed"),
        "handoffs_failed": ("handoff", "failed"),
        "handoff_success_rate": ("handoff", "completed"),
    },
    "queues": {
        "offered": ("queue_result", "offered"),
        "answered": ("queue_result", "answered"),
        "abandoned": ("queue_result", "abandoned"),
        "waiting": ("queue_result", "waiting"),
        "answered_within_service_level": ("queue_result", "within_service_level"),
        "service_level": ("queue_result", "within_service_level"),
        "answer_rate": ("queue_result", "answered"),
        "abandon_rate": ("queue_result", "abandoned"),
        "wait_mean": ("queue_result", "answered"),
        "wait_p50": ("queue_result", "answered"),
        "wait_p90": ("queue_result", "answered"),
        "handle_time_mean": ("queue_result", "answered"),
        "handle_time_p50": ("queue_result", "answered"),
        "handle_time_p90": ("queue_result", "answered"),
    },
    "campaigns": {
        "attempts": ("attempt", "dialled"),
        "leads": ("attempt", "dialled"),
        "attempts_per_lead": ("attempt", "dialled"),
        "connects": ("attempt", "connected"),
        "connect_rate": ("attempt", "connected"),
        "completed": ("attempt", "completed"),
        "busy": ("attempt", "busy"),
        "no_answer": ("attempt", "no_answer"),
        "machine": ("attempt", "machine"),
        "failed": ("attempt", "failed"),
        "in_progress": ("attempt", "ringing"),
        "dropped": ("attempt", "dropped"),
        "drop_rate": ("attempt", "dropped"),
        "handoffs": ("attempt", "handed_off"),
    },
}

# The figures whose list has exactly as many calls as the figure counts.
EXACT: dict[str, frozenset[str]] = {
    "virtual_agents": frozenset({"calls", "contained", "handed_off", "abandoned_in_bot", "in_progress"}),
    "queues": frozenset({"offered", "answered", "abandoned", "waiting", "answered_within_service_level"}),
    "campaigns": frozenset(
        {
            "attempts",
            "connects",
            "completed",
            "busy",
            "no_answer",
            "machine",
            "failed",
            "in_progress",
            "dropped",
            "handoffs",
        }
    ),
}

_ROW_PARAMETER = {"virtual_agents": "virtual_agent", "queues": "queue", "campaigns": "campaign"}


def calls_query(
    filters: ReportFilters, report: str, figure: str, row: Any = None, bucket: datetime | None = None
) -> str:
    """The Calls page's query string for `figure` of `report` ("virtual_agents" | "queues" |
    "campaigns"), in total or for one row (its key: the bot / queue / campaign id of the row,
    None for the totals) and one bucket (its start, as in the series; None for the whole range).

    `row`: a row's `virtual_agent` / `queue` / `campaign` value (check `row_has_list` first: None
    here means the totals). Raises KeyError for a figure the report does not have.
    """
    parameter, value = FIGURES[report][figure]
    query: list[tuple[str, str]] = [
        ("date_from", filters.start.isoformat()),
        ("date_to", filters.end.isoformat()),
        ("tz", filters.tz.key),
    ]
    if filters.direction:
        query.append(("direction", filters.direction))
    selected = {
        "virtual_agent": filters.virtual_agents,
        "queue": filters.queues,
        "campaign": filters.campaigns,
    }
    if row is not None:
        selected[_ROW_PARAMETER[report]] = (row,)
    for name, ids in selected.items():
        query.extend((name, str(pk)) for pk in ids)
    if bucket is not None:
        after = next_bucket(bucket, filters.interval, filters.tz)
        query.append(("started_from", bucket.astimezone(UTC).isoformat()))
        query.append(("started_before", after.astimezone(UTC).isoformat()))
    query.append((parameter, value))
    return urlencode(query)


def row_has_list(report: str, row: dict[str, Any]) -> bool:
    """Whether a report row can be drilled into (its bot, queue or campaign still exists)."""
    return row.get(_ROW_PARAMETER[report]) is not None
