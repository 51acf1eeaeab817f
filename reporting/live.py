"""The live feed: stored call and handoff events go to the tenant's group, and pages catch up.

Ingestion calls `publish()` from `transaction.on_commit`, so a socket never sees an event
that was rolled back. Sending never raises: when Redis is down the feed degrades, and the
events API keeps accepting and storing events.

A page that was not connected for a while (a dropped socket, the moment between rendering
and connecting) asks `catch_up()` for the events stored since then, as the same messages
the socket carries (see reporting.feed), and drops the ones it already has by event id.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.utils import timezone

from reporting.assemble import Lookups, StoredEvent, assemble
from reporting.events import AgentInfo, agent_ref_key, find_virtual_agents
from reporting.feed import call_summary, handoff_summary
from reporting.models import CallEvent, CallRecord, Handoff
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter

logger = logging.getLogger(__name__)

MESSAGE_TYPE = "live.events"  # handled by LiveConsumer.live_events


def group_name(center_id: UUID | str) -> str:
    return f"live.{center_id}"


def publish(center_id: UUID | str, messages: list[dict[str, Any]]) -> None:
    """Send one batch of feed messages (see `reporting.feed`) to every socket of one center."""
    if not messages:
        return
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(group_name(center_id), {"type": MESSAGE_TYPE, "messages": messages})
    except Exception as exc:  # the channel layer's failures are many (connection, timeouts, capacity)
        logger.warning("live feed: could not publish %d message(s): %s", len(messages), type(exc).__name__)


# `received_at` is stamped before the INSERT and the row is visible only at COMMIT, and the
# servers' clocks differ a little: an event stamped just before the page's last sync can
# become visible after it. Looking this far back covers both; duplicates are dropped by the page.
CATCH_UP_MARGIN = timedelta(seconds=30)
# Beyond this many events the page reloads instead (rendering the state is cheaper than replaying).
CATCH_UP_LIMIT = 1000


@dataclass(frozen=True)
class CatchUp:
    messages: list[dict[str, Any]]
    server_time: datetime  # taken before reading: the next catch-up starts from here
    is_truncated: bool


def catch_up(center: ContactCenter, *, since: datetime) -> CatchUp:
    """The feed messages of `center`'s events stored since `since` (minus the margin), oldest first.

    Not by cursor: CallEvent ids are handed out at INSERT, so on PostgreSQL a lower id can
    commit after a higher one the page has already seen.
    """
    server_time = timezone.now()
    events = list(
        CallEvent.objects.for_center(center)
        .filter(received_at__gte=since - CATCH_UP_MARGIN)
        .order_by("received_at", "id")[: CATCH_UP_LIMIT + 1]
    )
    is_truncated = len(events) > CATCH_UP_LIMIT
    return CatchUp(stored_feed_messages(center, events[:CATCH_UP_LIMIT]), server_time, is_truncated)


def agent_summary(agent: VirtualAgent | None) -> dict[str, Any] | None:
    if agent is None:
        return None
    return {
        "id": str(agent.id),
        "name": agent.name,
        "extension": agent.extension.digits if agent.extension else "",
    }


def _agent_info_summary(info: AgentInfo) -> dict[str, Any]:
    return {"id": info.id, "name": info.name, "extension": info.extension}


def stored_feed_messages(center: ContactCenter, events: Sequence[CallEvent]) -> list[dict[str, Any]]:
    """What ingestion published for these stored events, rebuilt from the records as they are now.

    `call` and `handoff` show the current state (not the state right after each event): the
    page keeps the furthest state it has seen, so replaying never moves anything backwards.
    """
    call_ids = {event.call_id for event in events}
    records = {
        record.call_id: record
        for record in CallRecord.objects.for_center(center)
        .filter(call_id__in=call_ids)
        .select_related("virtual_agent__extension")
    }
    handoffs = {
        (handoff.call_record_id, handoff.sequence): handoff
        for handoff in Handoff.objects.for_center(center)
        .filter(call_record__in=list(records.values()))
        .select_related("virtual_agent__extension")
    }
    handoff_of_event = _handoff_of_event(center, call_ids)
    refs = {ref for event in events if isinstance(ref := event.data.get("virtual_agent"), str)}
    agents = find_virtual_agents(center, refs)

    messages = []
    for event in events:
        record = records.get(event.call_id)
        if record is None:  # events and their record commit together; never expected
            continue
        sequence = handoff_of_event.get(event.event_id)
        handoff = handoffs.get((record.pk, sequence)) if sequence else None
        # The same bot the published message named: the event's, else the handoff's, else the call's.
        ref = event.data.get("virtual_agent")
        named = agents.get(agent_ref_key(ref) or "") if isinstance(ref, str) else None
        if named is not None:
            agent = _agent_info_summary(named)
        else:
            agent = agent_summary((handoff.virtual_agent if handoff else None) or record.virtual_agent)
        messages.append(
            {
                "cursor": event.pk,
                "event": {
                    "id": event.event_id,
                    "type": event.type,
                    "call_id": event.call_id,
                    "occurred_at": event.occurred_at.isoformat(),
                    "data": event.data,
                },
                # The model rows carry the same field names as the fold's dataclasses.
                "call": call_summary(record.call_id, record),  # type: ignore[arg-type]
                "virtual_agent": agent,
                "handoff": handoff_summary(handoff) if handoff is not None else None,  # type: ignore[arg-type]
            }
        )
    return messages


def _handoff_of_event(center: ContactCenter, call_ids: set[str]) -> dict[str, int]:
    """Which handoff (sequence) each handoff.* event of these calls applied to, by the fold's own rule."""
    by_call: dict[str, list[StoredEvent]] = defaultdict(list)
    rows = (
        CallEvent.objects.for_center(center)
        .filter(call_id__in=call_ids, type__startswith="handoff.")
        .values_list("call_id", "event_id", "type", "occurred_at", "data")
    )
    for call_id, event_id, kind, occurred_at, data in rows:
        by_call[call_id].append(StoredEvent(event_id=event_id, type=kind, occurred_at=occurred_at, data=data))
    mapping: dict[str, int] = {}
    for stored in by_call.values():
        mapping.update(assemble(stored, Lookups()).handoff_of_event)
    return mapping
