"""Matching provider post-call reports and call records, whichever arrives first."""

from __future__ import annotations

from collections.abc import Iterable

from django.db.models import Q

from reporting.models import CallRecord, ProviderCallReport


def attach_pending_reports(records: Iterable[CallRecord]) -> int:
    """Link unmatched reports to these records (by our call id or the provider's). Returns how many."""
    by_call_id: dict[str, CallRecord] = {}
    by_provider_id: dict[str, CallRecord] = {}
    center_id = None
    for record in records:
        center_id = record.contact_center_id
        by_call_id[record.call_id] = record
        if record.provider_call_id:
            by_provider_id[record.provider_call_id] = record
    if center_id is None:
        return 0
    pending = ProviderCallReport.objects.filter(contact_center_id=center_id, call_record__isnull=True).filter(
        Q(call_id__in=list(by_call_id)) | Q(provider_call_id__in=list(by_provider_id))
    )
    matched = 0
    for report in pending.only("id", "call_id", "provider_call_id"):
        record = by_call_id.get(report.call_id) or by_provider_id.get(report.provider_call_id)
        if record is not None:
            matched += ProviderCallReport.objects.filter(pk=report.pk, call_record__isnull=True).update(
                call_record=record
            )
    return matched
