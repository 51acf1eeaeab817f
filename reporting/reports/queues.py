"""The queues report: callers who waited for a human, whether a bot handed them over (a REFER to
a queue) or a flow routed them straight there (`queue.entered`).

Of the cohort's calls, a queue was *offered* a call when the call entered it (`queue_entered_at`:
its last entry, the start of its `queue_wait_seconds`; a REFER to a queue that failed enters
nothing). The row is the queue the call entered last (`CallRecord.queue`; None for a queue since
deleted). Then, by construction answered + abandoned + waiting == offered:
- answered: an agent connected after the entry (`queue_answered_at`);
- abandoned: the call ended without that (hung up, or the queue's failover took it elsewhere);
- waiting: still in the queue now.
abandon_rate = abandoned ÷ offered; service_level = answered within the queue's
`service_level_seconds` (T, default 20 s) ÷ offered (Amazon Connect's choice of denominator:
callers who hung up before T count against it). wait_p50 / wait_p90 / wait_mean: the waits of
answered calls (entry to answer). Handle time: `human_seconds` (the first agent's connect to the
end) of answered calls.
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, Q, Sum

from reporting.reports import aggregate
from reporting.reports.aggregate import rate
from reporting.reports.durations import Micros, PercentileDisc, binned, mean_of
from reporting.reports.filters import ReportFilters, cohort
from reporting.reports.predicates import ABANDONED, ANSWERED, OFFERED, WAITING, WITHIN_SERVICE_LEVEL
from routing.models import SERVICE_LEVEL_DEFAULT, Queue

HANDLED = ANSWERED & Q(human_seconds__isnull=False)
# Avg skipped NULLs; a count beside a sum must name them.
HAS_WAIT = ANSWERED & Q(queue_wait_seconds__isnull=False)

FIGURES = {
    "offered": Count("pk", filter=OFFERED),
    "answered": Count("pk", filter=ANSWERED),
    "abandoned": Count("pk", filter=ABANDONED),
    "waiting": Count("pk", filter=WAITING),
    "answered_within_service_level": Count("pk", filter=WITHIN_SERVICE_LEVEL),
    # Means from whole-microsecond sums, binned discrete percentiles: reporting.reports.durations.
    "wait_n": Count("pk", filter=HAS_WAIT),
    "wait_us": Sum(Micros("queue_wait_seconds"), filter=HAS_WAIT),
    "wait_p50": PercentileDisc(binned("queue_wait_seconds"), 0.5, filter=HAS_WAIT),
    "wait_p90": PercentileDisc(binned("queue_wait_seconds"), 0.9, filter=HAS_WAIT),
    "handle_time_n": Count("pk", filter=HANDLED),
    "handle_time_us": Sum(Micros("human_seconds"), filter=HANDLED),
    "handle_time_p50": PercentileDisc(binned("human_seconds"), 0.5, filter=HANDLED),
    "handle_time_p90": PercentileDisc(binned("human_seconds"), 0.9, filter=HANDLED),
}


def _derive(values: dict[str, Any]) -> dict[str, Any]:
    for name in ("wait", "handle_time"):
        values[f"{name}_mean"] = mean_of(values.pop(f"{name}_us"), values.pop(f"{name}_n"))
    offered = values["offered"]
    values["answer_rate"] = rate(values["answered"], offered)
    values["abandon_rate"] = rate(values["abandoned"], offered)
    values["service_level"] = rate(values["answered_within_service_level"], offered)
    return values


def queue_report(filters: ReportFilters) -> dict[str, Any]:
    """The report, read from the 15-minute rollups when they can answer it
    (reporting.reports.from_rollups), else computed from the records."""
    from reporting.reports import from_rollups  # it builds on this module

    return from_rollups.read(filters, from_rollups.queue_report, queue_report_raw)


def queue_report_raw(filters: ReportFilters) -> dict[str, Any]:
    """The report from the raw records: the definition the rollups must equal."""
    records = cohort(filters).filter(OFFERED)  # only offered calls can count in any figure
    return assemble_report(filters, **aggregate.computed(records, FIGURES, _derive, filters, by="queue_id"))


def assemble_report(
    filters: ReportFilters,
    *,
    total: dict[str, Any],
    grouped: list[dict[str, Any]],
    series: list[dict[str, Any]],
) -> dict[str, Any]:
    """The report from its derived figures (the raw path's and the rollups' alike)."""
    queues = {
        queue.pk: queue
        for queue in Queue.objects.filter(
            pk__in=[row["key"] for row in grouped if row["key"]]
        ).select_related("extension")
    }
    table = []
    for row in grouped:
        queue = queues.get(row.pop("key"))
        table.append(
            {
                "queue": queue.pk if queue else None,
                "name": queue.name if queue else "Deleted queue",
                "extension": queue.extension.digits if queue else "",
                "service_level_seconds": queue.service_level_seconds if queue else SERVICE_LEVEL_DEFAULT,
                **row,
            }
        )
    table.sort(key=lambda row: (row["name"].lower(), str(row["queue"])))
    return aggregate.report(filters, total, table, series)
