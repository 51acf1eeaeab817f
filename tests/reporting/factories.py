"""Call records as ingestion leaves them, for the calls browser and API tests.

Records, handoffs and events are written directly: these tests are about reading them, and
ingestion (tested on its own) is what guarantees their consistency in production.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from reporting.models import (
    BotOutcome,
    CallEvent,
    CallRecord,
    CallStatus,
    Direction,
    Handoff,
    HandoffState,
    ProviderCallReport,
)
from virtual_agents.models import Provider, ProviderIntegration, VirtualAgent
from voiso_byob.models import ContactCenter

_seq = itertools.count(1)
T0 = datetime(2025, 3, 14, 9, 0, tzinfo=UTC)


def make_integration(center: ContactCenter, provider: str = Provider.VAPI) -> ProviderIntegration:
    return ProviderIntegration.objects.create(
        contact_center=center, provider=provider, label=f"{provider} {next(_seq)}"
    )


def make_bot(center: ContactCenter, name: str | None = None) -> VirtualAgent:
    n = next(_seq)
    return VirtualAgent.objects.create(
        contact_center=center,
        integration=make_integration(center),
        name=name or f"Bot {n}",
        sip_uri=f"sip:bot{n}@bots.example",
        is_connected=True,
    )


def make_call(
    center: ContactCenter,
    *,
    call_id: str | None = None,
    started_at: datetime | None = T0,
    seconds: float | None = 90,
    **fields: Any,
) -> CallRecord:
    """An ended inbound call; started_at=None is one whose call.started has not arrived."""
    ended = started_at + timedelta(seconds=seconds) if started_at and seconds is not None else None
    values: dict[str, Any] = {
        "status": CallStatus.ENDED if ended else CallStatus.IN_PROGRESS,
        "direction": Direction.INBOUND if started_at else "",
        "from_number": "+15550000000",
        "to_number": "+15559990000",
        "started_at": started_at,
        "ended_at": ended,
        "total_seconds": seconds if ended else None,
        "end_reason": "hangup" if ended else "",
        "event_count": 2,
        "last_event_at": ended or started_at or T0,
    }
    values.update(fields)
    return CallRecord.objects.create(contact_center=center, call_id=call_id or f"call-{next(_seq)}", **values)


def make_handoff(record: CallRecord, **fields: Any) -> Handoff:
    sequence = fields.pop("sequence", record.handoffs.count() + 1)
    handoff = Handoff.objects.create(
        contact_center=record.contact_center,
        call_record=record,
        sequence=sequence,
        state=fields.pop("state", HandoffState.REQUESTED),
        **fields,
    )
    CallRecord.objects.filter(pk=record.pk).update(
        handoff_count=record.handoffs.count(), bot_outcome=BotOutcome.HANDED_OFF
    )
    record.refresh_from_db()
    return handoff


def make_event(
    center: ContactCenter, call_id: str, type: str, occurred_at: datetime, **data: Any
) -> CallEvent:
    return CallEvent.objects.create(
        contact_center=center,
        event_id=f"evt-{next(_seq)}",
        type=type,
        call_id=call_id,
        occurred_at=occurred_at,
        data=data,
    )


def make_report(record: CallRecord, **fields: Any) -> ProviderCallReport:
    integration = fields.pop("integration", None) or make_integration(record.contact_center)
    return ProviderCallReport.objects.create(
        contact_center=record.contact_center,
        integration=integration,
        provider=integration.provider,
        provider_call_id=fields.pop("provider_call_id", f"prov-{next(_seq)}"),
        call_id=record.call_id,
        call_record=record,
        **fields,
    )
