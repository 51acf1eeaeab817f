"""The live feed: stored call and handoff events go to the tenant's group, and pages catch up.

Ingestion calls `publish()` from `transaction.on_commit`, so a socket never sees an event
that was rolled back. Sending never raises: when Redis is down the feed degrades, and the
events API keeps accepting and storing events.

A page that was not connected for a while (a dropped socket, the moment between rendering
and connecting) asks `catch_up()` for the events stored since then, as the same messages
the socket carries (see reporting.feed), and drops the ones it already has by event id.
Provider reports take the same two ways: `publish_reports()` after the commit that matched
them, and `catch_up()` for the reports matched (or updated) in its window.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from reporting.assemble import FoldSettings, StoredEvent, assemble
from reporting.events import EventIn
from reporting.feed import feed_messages, report_message
from reporting.models import CallEvent, ProviderCallReport
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


ACCESS_MESSAGE_TYPE = "live.access_changed"  # handled by LiveConsumer.live_access_changed


def user_group_name(user_id: Any) -> str:
    """Every live socket of one user, whatever its center: told when the user's access changes."""
    return f"live-user-{user_id}"


def access_changed(user_id: Any) -> None:
    """Tell the user's open sockets to check their access again (role, membership, account)."""
    layer = get_channel_layer()
    if layer is None:
        return
    try:
        async_to_sync(layer.group_send)(user_group_name(user_id), {"type": ACCESS_MESSAGE_TYPE})
    except Exception as exc:  # as publish(): the feed degrades, the change itself stands
        logger.warning("live feed: could not tell user %s's sockets: %s", user_id, type(exc).__name__)


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
    # A report's `updated` is stamped when it is matched and whenever a delivery changes it, before
    # its commit like an event's `received_at`: the same margin covers it.
    reports = list(
        _reports_with_summary(ProviderCallReport.objects.for_center(center))
        .filter(updated__gte=since - CATCH_UP_MARGIN)
        .order_by("updated", "id")[: CATCH_UP_LIMIT + 1]
    )
    is_truncated = len(events) > CATCH_UP_LIMIT or len(reports) > CATCH_UP_LIMIT
    messages = stored_feed_messages(center, events[:CATCH_UP_LIMIT])
    # After the events: the page knows the call before it hears of its summary.
    messages += report_messages(reports[:CATCH_UP_LIMIT])
    return CatchUp(messages, server_time, is_truncated)


def agent_summary(agent: VirtualAgent | None) -> dict[str, Any] | None:
    """A virtual agent as feed messages show it."""
    if agent is None:
        return None
    return {
        "id": str(agent.id),
        "name": agent.name,
        "extension": agent.extension.digits if agent.extension else "",
    }


def stored_feed_messages(center: ContactCenter, events: Sequence[CallEvent]) -> list[dict[str, Any]]:
    """The feed messages of these stored events, built as ingestion builds them.

    Each call is folded again from all its stored events (with the names they resolved to
    when stored), and the messages come from reporting.feed: so `call` and `handoff` show
    the state now, which the page merges without ever moving a stage backwards.
    """
    call_ids = {event.call_id for event in events}
    by_call: dict[str, list[StoredEvent]] = defaultdict(list)
    rows = (
        CallEvent.objects.for_center(center)
        .filter(call_id__in=call_ids)
        .values_list("call_id", "event_id", "type", "occurred_at", "data", "refs")
    )
    for call_id, event_id, kind, occurred_at, data, refs in rows:
        by_call[call_id].append(
            StoredEvent(event_id=event_id, type=kind, occurred_at=occurred_at, data=data, refs=refs)
        )
    fold = FoldSettings(bot_abandon_seconds=float(settings.BOT_ABANDON_SECONDS))
    assemblies = {call_id: assemble(stored, fold) for call_id, stored in by_call.items()}
    new_events = [
        (event.pk, EventIn(event.event_id, event.type, event.call_id, event.occurred_at, event.data))
        for event in events
    ]
    return feed_messages(new_events, assemblies)


def _reports_with_summary(reports: QuerySet[ProviderCallReport]) -> QuerySet[ProviderCallReport]:
    """Matched reports that have a summary, with what their messages show of the call."""
    return (
        reports.filter(call_record__isnull=False)
        .exclude(summary="")
        .select_related("call_record__virtual_agent__extension")
    )


def report_messages(reports: Iterable[ProviderCallReport]) -> list[dict[str, Any]]:
    """The report.ready messages of matched reports (loaded with `call_record__virtual_agent`)."""
    return [
        report_message(report, report.call_record, agent_summary(report.call_record.virtual_agent))
        for report in reports
        if report.call_record is not None and report.summary
    ]


def publish_reports(center_id: UUID | str, report_ids: Collection[int]) -> None:
    """Send the report.ready messages of these reports, those matched and with a summary.

    For `transaction.on_commit`: it reads the reports as committed, so a report that lost
    its match meanwhile, or has no summary yet, sends nothing.
    """
    if not report_ids:
        return
    reports = _reports_with_summary(
        ProviderCallReport.objects.filter(contact_center_id=center_id, pk__in=list(report_ids))
    ).order_by("updated", "id")
    publish(center_id, report_messages(reports))
