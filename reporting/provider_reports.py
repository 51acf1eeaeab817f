"""Provider post-call reports: stored once per provider call, matched to call records
whichever arrives first.

A report always names the provider's call id, and our call id when the provider echoed the
X-Voiso-Call-Id header we put on the INVITE; a record carries our call id and, once
`bot.connected` told it, the provider's call id. A report with our call id matches only the
record of that call id (it is authoritative); one without matches the record whose
provider call id is the report's. Always within the report's contact center.

Races: a webhook and the events of its call may be stored by two transactions at once,
neither able to see the other's uncommitted row. So each side looks after its commit (the
webhook also inside its transaction, to answer with the match): under READ COMMITTED a
statement sees everything committed before it started, so whichever of the two commits second
finds the other's row.

Each match (and each later change of a matched report's summary) is announced on the live
feed after its commit: `reporting.live.publish_reports`, a report.ready message (reporting.feed).

Transcript turns are `{"role": "bot" | "caller", "text", "seconds"?}` (seconds into the call).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone

from reporting.live import publish_reports
from reporting.models import CallRecord, ProviderCallReport
from virtual_agents.models import ProviderIntegration
from virtual_agents.webhooks import ProviderReport
from voiso_byob.db import prepared_cursor
from voiso_byob.jsontext import dumps_compact

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class StoredReport:
    report: ProviderCallReport
    is_new: bool


def _merge(stored: ProviderCallReport, report: ProviderReport) -> None:
    """What this delivery says, over what earlier ones said. Absent parts never erase.

    Retell sends `call_ended` then `call_analyzed` (the same call, now with the summary), in
    either order on retries; a re-sent ElevenLabs or Vapi report carries the same content.
    """
    if report.call_id:
        stored.call_id = report.call_id
    if report.transcript:
        stored.transcript = report.transcript
    if report.summary:
        stored.summary = report.summary
    if report.recording_url:
        stored.recording_url = report.recording_url
    if report.ended_reason:
        stored.ended_reason = report.ended_reason


def _find_record_id(report: ProviderCallReport) -> int | None:
    records = CallRecord.objects.filter(contact_center_id=report.contact_center_id)
    if report.call_id:
        # (contact_center, call_id) is the record's unique key.
        return records.filter(call_id=report.call_id).values_list("pk", flat=True).first()
    return (
        records.filter(provider_call_id=report.provider_call_id)
        .order_by("-pk")
        .values_list("pk", flat=True)
        .first()
    )


def _match_after_commit(report_id: int) -> None:
    report = ProviderCallReport.objects.filter(pk=report_id, call_record__isnull=True).first()
    if report is None:
        return
    record_id = _find_record_id(report)
    if record_id is not None:
        matched = ProviderCallReport.objects.filter(pk=report_id, call_record__isnull=True).update(
            call_record_id=record_id, updated=timezone.now()
        )
        if matched:  # autocommit: already committed
            publish_reports(report.contact_center_id, [report_id])


def store_report(*, integration: ProviderIntegration, report: ProviderReport) -> StoredReport:
    """Create or update the integration's report for this provider call, and match it.

    Idempotent: a re-sent webhook updates the one row. Race-safe: the row is inserted with
    INSERT … ON CONFLICT DO NOTHING on (integration, provider_call_id), then locked, so two
    deliveries arriving together merge one after the other instead of failing or duplicating.
    """
    now = timezone.now()
    with transaction.atomic():
        ProviderCallReport.objects.bulk_create(
            [
                ProviderCallReport(
                    contact_center_id=integration.contact_center_id,
                    integration=integration,
                    provider=integration.provider,
                    provider_call_id=report.provider_call_id,
                    received_at=now,
                    updated=now,
                )
            ],
            ignore_conflicts=True,
        )
        stored = ProviderCallReport.objects.select_for_update().get(
            integration=integration, provider_call_id=report.provider_call_id
        )
        # ON CONFLICT DO NOTHING reports no pk either way; the row we inserted carries our `now`.
        is_new = stored.received_at == now
        was_matched, old_summary = stored.call_record_id is not None, stored.summary
        _merge(stored, report)
        if stored.call_record_id is None:
            stored.call_record_id = _find_record_id(stored)
        stored.updated = now
        stored.save()
        # Retell's summary comes in a second delivery, after the first one matched the report.
        is_news = not was_matched or stored.summary != old_summary
        if stored.call_record_id is not None and stored.summary and is_news:
            center_id, report_id = stored.contact_center_id, stored.pk
            transaction.on_commit(lambda: publish_reports(center_id, [report_id]), robust=True)
    if stored.call_record_id is None:
        # Runs now when called outside a transaction, else once the caller's commits.
        report_id = stored.pk
        transaction.on_commit(lambda: _match_after_commit(report_id), robust=True)
    return StoredReport(report=stored, is_new=is_new)


# ProviderCallReport's table; the PostgreSQL test run executes this statement.
_PENDING_SQL = """
    SELECT id, call_id, provider_call_id FROM reporting_providercallreport
    WHERE call_record_id IS NULL AND contact_center_id = %s::uuid
      AND (call_id = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))
           OR (call_id = '' AND provider_call_id = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))))
"""


def _pending(
    center_id: object, call_ids: Iterable[str], provider_ids: Iterable[str]
) -> list[tuple[int, str, str]]:
    """Unmatched reports of a center naming one of these calls (served by the partial indexes)."""
    call_ids, provider_ids = list(call_ids), list(provider_ids)
    if connection.vendor == "postgresql":
        # The ids as two JSON texts instead of one placeholder per id (ingestion calls this for
        # every batch, and compiling an IN list of a thousand ids cost 4x the query itself), nor
        # as arrays, which psycopg dumps in Python (measured: 0.3 ms of a batch's CPU).
        with prepared_cursor() as cursor:
            cursor.execute(
                _PENDING_SQL, [str(center_id), dumps_compact(call_ids), dumps_compact(provider_ids)]
            )
            return cursor.fetchall()
    lookup = Q(call_id__in=call_ids) | Q(call_id="", provider_call_id__in=provider_ids)
    return list(
        ProviderCallReport.objects.unmatched()
        .filter(lookup, contact_center_id=center_id)
        .order_by()
        .values_list("pk", "call_id", "provider_call_id")
    )


def _attach(records: Sequence[CallRecord | RecordRef]) -> tuple[int, dict[object, list[int]]]:
    """(how many reports it matched, the ids it tried to match by center)."""
    by_center: dict[object, tuple[dict[str, Any], dict[str, Any]]] = defaultdict(lambda: ({}, {}))
    for record in records:
        by_call_id, by_provider_id = by_center[record.contact_center_id]
        by_call_id[record.call_id] = record
        if record.provider_call_id:
            by_provider_id[record.provider_call_id] = record
    matched = 0
    tried: dict[object, list[int]] = defaultdict(list)
    now = timezone.now()
    for center_id, (by_call_id, by_provider_id) in by_center.items():
        report_ids: dict[int, list[int]] = defaultdict(list)
        for report_id, call_id, provider_call_id in _pending(center_id, by_call_id, by_provider_id):
            record = by_call_id.get(call_id) if call_id else by_provider_id.get(provider_call_id)
            if record is not None:
                report_ids[record.pk].append(report_id)
        for record_id, ids in report_ids.items():
            # `call_record IS NULL` again: a concurrent webhook may have matched it meanwhile.
            matched += ProviderCallReport.objects.filter(pk__in=ids, call_record__isnull=True).update(
                call_record_id=record_id, updated=now
            )
            # All of them, even one a concurrent webhook matched first: the page dedupes by report.
            tried[center_id] += ids
    return matched, tried


def _publish(*tried: dict[object, list[int]]) -> None:
    for center_id in {center_id for ids in tried for center_id in ids}:
        publish_reports(center_id, sorted({pk for ids in tried for pk in ids.get(center_id, [])}))


@dataclass(frozen=True, slots=True)
class RecordRef:
    """What matching needs of a call record (ingestion has no model instance to hand)."""

    pk: int
    contact_center_id: Any
    call_id: str
    provider_call_id: str


def attach_pending_reports_on_commit(records: Iterable[RecordRef]) -> None:
    """Ingestion's way: look once, after the transaction that stored these records commits.

    Enough on its own: a webhook also looks once after its own commit, and under READ COMMITTED
    whichever of the two commits second finds the other's row. (Looking inside the transaction
    too would only attach a moment sooner, for a query on every new call.)
    """
    records = list(records)
    if records:
        transaction.on_commit(lambda: _publish(_attach(records)[1]), robust=True)


def attach_pending_reports(records: Iterable[CallRecord]) -> int:
    """Link unmatched reports to these (just assembled) records. Returns how many now.

    Ingestion calls it inside the transaction that stored the records; it looks again once
    that transaction commits, for a report whose webhook was being stored at the same time.
    """
    records = [record for record in records if record.pk is not None]
    if not records:
        return 0
    matched, tried = _attach(records)
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(lambda: _publish(tried, _attach(records)[1]), robust=True)
    else:
        _publish(tried)
    return matched
