"""The virtual agents report: what each bot did with the calls that reached it.

`calls` = the cohort's calls that reached a bot *and whose outcome is decided*
(`CallRecord.bot_outcome`, folded by reporting.assemble): handed off (≥ 1 REFER), abandoned in
bot (the caller hung up within BOT_ABANDON_SECONDS of the bot answering, no REFER) or contained
(ended in the bot otherwise). The outcome is one column, so contained + handed_off +
abandoned_in_bot == calls by construction. A call still with its bot and no REFER yet has no
outcome: it is counted in `in_progress`, outside `calls`, until it ends (a handed-off call in
progress is already decided and counts).

Handoffs (one per REFER) are those of the cohort's calls, attributed to the call's bot (its row),
so each row's handoffs belong to its calls. `handoff_success_rate` = handoffs completed (final
NOTIFY 2xx) ÷ handoffs requested. Bot time is `bot_seconds` (bot connect to the first completed
handoff, else the end) of the decided calls; time to handoff runs from the bot's connect to the
call's first REFER. Rows: one per bot (`virtual_agent_id`; None for a bot since deleted).
"""

from __future__ import annotations

from typing import Any

from django.db.models import Count, F, Q, Sum, TextField, Value
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce

from reporting.models import Handoff, HandoffState, TargetType
from reporting.reports import aggregate
from reporting.reports.aggregate import rate
from reporting.reports.durations import Micros, PercentileDisc, binned, mean_of
from reporting.reports.filters import DEFAULT_CONTEXT_KEY, ReportFilters, cohort, cohort_q
from reporting.reports.predicates import ABANDONED_IN_BOT, CONTAINED, HANDED_OFF, IN_BOT, REACHED
from reporting.reports.sql import Seconds
from virtual_agents.models import VirtualAgent

BREAKDOWN_LIMIT = 50  # failure reasons and context values listed, most frequent first

TO_HANDOFF = Seconds("handoff_requested_at", "bot_connected_at")
HAS_TIME_TO_HANDOFF = HANDED_OFF & Q(handoff_requested_at__isnull=False, bot_connected_at__isnull=False)
HAS_BOT_TIME = REACHED & Q(bot_seconds__isnull=False)

CALL_FIGURES = {
    "calls": Count("pk", filter=REACHED),
    "contained": Count("pk", filter=CONTAINED),
    "handed_off": Count("pk", filter=HANDED_OFF),
    "abandoned_in_bot": Count("pk", filter=ABANDONED_IN_BOT),
    "in_progress": Count("pk", filter=IN_BOT),
    # Means from whole-microsecond sums, binned discrete percentiles: reporting.reports.durations.
    "bot_time_n": Count("pk", filter=HAS_BOT_TIME),
    "bot_time_us": Sum(Micros("bot_seconds"), filter=HAS_BOT_TIME),
    "bot_time_p50": PercentileDisc(binned("bot_seconds"), 0.5, filter=HAS_BOT_TIME),
    "bot_time_p90": PercentileDisc(binned("bot_seconds"), 0.9, filter=HAS_BOT_TIME),
    "time_to_handoff_n": Count("pk", filter=HAS_TIME_TO_HANDOFF),
    "time_to_handoff_us": Sum(Micros("handoff_requested_at", "bot_connected_at"), filter=HAS_TIME_TO_HANDOFF),
    "time_to_handoff_p50": PercentileDisc(binned(TO_HANDOFF), 0.5, filter=HAS_TIME_TO_HANDOFF),
    "time_to_handoff_p90": PercentileDisc(binned(TO_HANDOFF), 0.9, filter=HAS_TIME_TO_HANDOFF),
}

HANDOFF_FIGURES = {
    "handoffs_requested": Count("pk"),
    "handoffs_completed": Count("pk", filter=Q(state=HandoffState.COMPLETED)),
    "handoffs_failed": Count("pk", filter=Q(state=HandoffState.FAILED)),
}
# TargetType "" (the Refer-To did not resolve) is reported as "unresolved".
TARGET_NAMES = {value or "unresolved": value for value in TargetType.values}
# Counted in the same scan as the totals' handoff figures.
TARGET_FIGURES = {
    f"to_{name}": Count("pk", filter=Q(target_type=value)) for name, value in TARGET_NAMES.items()
}


_MEANS = [(f"{name}_mean", f"{name}_us", f"{name}_n") for name in ("bot_time", "time_to_handoff")]


def _derive_calls(values: dict[str, Any]) -> dict[str, Any]:
    for mean, micros, count in _MEANS:  # names spelled once: this runs for each point of a series
        values[mean] = mean_of(values.pop(micros), values.pop(count))
    calls = values["calls"]
    values["containment_rate"] = rate(values["contained"], calls)
    values["handoff_rate"] = rate(values["handed_off"], calls)
    values["abandon_rate"] = rate(values["abandoned_in_bot"], calls)
    return values


def _derive_handoffs(values: dict[str, Any]) -> dict[str, Any]:
    values["handoff_success_rate"] = rate(values["handoffs_completed"], values["handoffs_requested"])
    return values


def handoffs_of(filters: ReportFilters) -> Any:
    """The handoffs (REFERs) of the cohort's calls."""
    return Handoff.objects.filter(cohort_q(filters, prefix="call_record__"))


def _failures(handoffs: Any) -> list[dict[str, Any]]:
    failed = (
        handoffs.filter(state=HandoffState.FAILED)
        .order_by()
        .values("failure_reason", "sip_status")
        .annotate(count=Count("pk"))
        .order_by("-count", "failure_reason", F("sip_status").asc(nulls_first=True))[:BREAKDOWN_LIMIT]
    )
    return [
        {"reason": row["failure_reason"], "sip_status": row["sip_status"], "count": row["count"]}
        for row in failed
    ]


def _by_context(handoffs: Any, key: str) -> dict[str, Any]:
    """Handoffs by the value the bot passed in the context header `key` ("" when it passed none)."""
    values = (
        handoffs.order_by()
        # A handoff without the header and one with it empty are one value, "" (as the rollups keep it).
        .annotate(
            context_value=Coalesce(KeyTextTransform(key, "context"), Value(""), output_field=TextField())
        )
        .values("context_value")
        .annotate(count=Count("pk"))
        .order_by("-count", "context_value")[:BREAKDOWN_LIMIT]
    )
    return {
        "key": key,
        "values": [{"value": row["context_value"], "count": row["count"]} for row in values],
    }


def virtual_agent_report(filters: ReportFilters, *, context_key: str = DEFAULT_CONTEXT_KEY) -> dict[str, Any]:
    """The report, read from the 15-minute rollups when they can answer it
    (reporting.reports.from_rollups), else computed from the records."""
    from reporting.reports import from_rollups  # it builds on this module

    return from_rollups.read(
        filters, from_rollups.virtual_agent_report, virtual_agent_report_raw, context_key=context_key
    )


def virtual_agent_report_raw(
    filters: ReportFilters, *, context_key: str = DEFAULT_CONTEXT_KEY
) -> dict[str, Any]:
    """The report from the raw records and handoffs: the definition the rollups must equal."""
    records = cohort(filters)
    handoffs = handoffs_of(filters)
    total = aggregate.totals(records, CALL_FIGURES, _derive_calls)
    handoff_totals = aggregate.totals(handoffs, {**HANDOFF_FIGURES, **TARGET_FIGURES}, _derive_handoffs)
    per_bot = aggregate.rows(records, CALL_FIGURES, _derive_calls, by="virtual_agent_id")
    per_bot_handoffs = aggregate.rows(
        handoffs, HANDOFF_FIGURES, _derive_handoffs, by="call_record__virtual_agent_id"
    )
    series = aggregate.series(records, CALL_FIGURES, _derive_calls, filters)
    handoff_series = aggregate.series(
        handoffs, HANDOFF_FIGURES, _derive_handoffs, filters, field="call_record__started_at"
    )
    for point, handoff_point in zip(series, handoff_series, strict=True):
        handoff_point.pop("bucket")
        point.update(handoff_point)
    return assemble_report(
        filters,
        total=total,
        handoff_totals=handoff_totals,
        failures=_failures(handoffs),
        by_context=_by_context(handoffs, context_key),
        per_bot=per_bot,
        per_bot_handoffs=per_bot_handoffs,
        series=series,
    )


def assemble_report(
    filters: ReportFilters,
    *,
    total: dict[str, Any],
    handoff_totals: dict[str, Any],
    failures: list[dict[str, Any]],
    by_context: dict[str, Any],
    per_bot: list[dict[str, Any]],
    per_bot_handoffs: list[dict[str, Any]],
    series: list[dict[str, Any]],
) -> dict[str, Any]:
    """The report from its derived figures (the raw path's and the rollups' alike); each point of
    `series` holds its calls' figures and their handoffs'."""
    total["handoffs_by_target"] = {name: handoff_totals.pop(f"to_{name}") for name in TARGET_NAMES}
    total.update(handoff_totals)
    total["failures"] = failures
    total["handoffs_by_context"] = by_context
    bots = {row["key"]: row for row in per_bot}
    bot_handoffs = {row["key"]: row for row in per_bot_handoffs}
    names = dict(VirtualAgent.objects.filter(pk__in=[k for k in bots if k]).values_list("pk", "name"))
    table = []
    for key, row in bots.items():
        if not row["calls"] and not row["in_progress"]:
            continue  # calls that never reached a bot (virtual_agent is None) or only undecided ones
        handoff_row = bot_handoffs.get(key) or _derive_handoffs({name: 0 for name in HANDOFF_FIGURES})
        handoff_row.pop("key", None)
        table.append(
            {"virtual_agent": key, "name": names.get(key, "Deleted virtual agent"), **row, **handoff_row}
        )
    for row in table:
        row.pop("key")
    table.sort(key=lambda row: (row["name"].lower(), str(row["virtual_agent"])))
    return aggregate.report(filters, total, table, series)
