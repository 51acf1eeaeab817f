"""The campaigns report: the dialer's calls (records with a campaign) of the cohort.

Each dial is one call record carrying `campaign_ref` and `lead_ref` (the dialer's ids, from
call.started). attempts = those calls; leads = distinct leads among them; attempts_per_lead =
attempts ÷ leads. Outcomes partition the attempts as the dialer's own CallAttempt.outcome does
(campaigns.services): completed when a bot answered (`bot_connected_at`), else by the end reason
— busy, no_answer, machine — and failed for every other ended call (failed, rejected,
invalid_number, dropped, …); in_progress while neither. So completed + busy + no_answer +
machine + failed + in_progress == attempts.

connects: calls a person answered. The telephony contract has no "callee answered" event, so
the records hold no answer time: a connect is a call a bot answered, or one the switch ended
with end_reason `dropped` — its word for "a person answered and no bot took the call within
2 s" (the switch is the one party that sees the answer, so it applies the 2 s). dropped = those;
drop_rate = dropped ÷ connects. handoffs = attempts a bot handed off (≥ 1 REFER).
Rows: one per campaign (a campaign_ref that names no campaign of the center: "Unknown campaign").
"""

from __future__ import annotations

import uuid
from typing import Any

from django.db.models import Count

from campaigns.models import Campaign
from reporting.reports import aggregate
from reporting.reports.aggregate import rate
from reporting.reports.filters import ReportFilters, cohort
from reporting.reports.predicates import ATTEMPT_RESULTS as RESULTS
from reporting.reports.predicates import DIALLED

FIGURES = {
    "attempts": Count("pk"),
    "leads": Count("lead_ref", distinct=True),
    "connects": Count("pk", filter=RESULTS["connected"]),
    "completed": Count("pk", filter=RESULTS["completed"]),
    "busy": Count("pk", filter=RESULTS["busy"]),
    "no_answer": Count("pk", filter=RESULTS["no_answer"]),
    "machine": Count("pk", filter=RESULTS["machine"]),
    "failed": Count("pk", filter=RESULTS["failed"]),
    "in_progress": Count("pk", filter=RESULTS["ringing"]),
    "dropped": Count("pk", filter=RESULTS["dropped"]),
    "handoffs": Count("pk", filter=RESULTS["handed_off"]),
}


def _derive(values: dict[str, Any]) -> dict[str, Any]:
    values["connect_rate"] = rate(values["connects"], values["attempts"])
    values["attempts_per_lead"] = rate(values["attempts"], values["leads"])
    values["drop_rate"] = rate(values["dropped"], values["connects"])
    return values


def _campaign_id(ref: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(ref)
    except (TypeError, ValueError):
        return None


def campaign_report(filters: ReportFilters) -> dict[str, Any]:
    """The report, read from the 15-minute rollups when they can answer it
    (reporting.reports.from_rollups), else computed from the records."""
    from reporting.reports import from_rollups  # it builds on this module

    return from_rollups.read(filters, from_rollups.campaign_report, campaign_report_raw)


def campaign_report_raw(filters: ReportFilters) -> dict[str, Any]:
    """The report from the raw records: the definition the rollups must equal."""
    records = cohort(filters).filter(DIALLED)
    figures = aggregate.computed(records, FIGURES, _derive, filters, by="campaign_ref")
    return assemble_report(filters, **figures)


def assemble_report(
    filters: ReportFilters,
    *,
    total: dict[str, Any],
    grouped: list[dict[str, Any]],
    series: list[dict[str, Any]],
) -> dict[str, Any]:
    """The report from its derived figures (the raw path's and the rollups' alike)."""
    ids = {row["key"]: _campaign_id(row["key"]) for row in grouped}
    names = dict(
        Campaign.objects.for_center(filters.center)
        .filter(pk__in=[pk for pk in ids.values() if pk])
        .values_list("pk", "name")
    )
    table = []
    for row in grouped:
        ref = row.pop("key")
        pk = ids[ref]
        known = pk in names
        table.append(
            {
                "campaign": pk if known else None,
                "campaign_ref": ref,
                "name": names.get(pk, "Unknown campaign"),
                **row,
            }
        )
    table.sort(key=lambda row: (row["name"].lower(), row["campaign_ref"]))
    return aggregate.report(filters, total, table, series)
