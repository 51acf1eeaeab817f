"""The live feed's sending side: stored call and handoff events go to the tenant's group.

Ingestion calls `publish()` from `transaction.on_commit`, so a socket never sees an event
that was rolled back. Sending never raises: when Redis is down the feed degrades, and the
events API keeps accepting and storing events.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer

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
