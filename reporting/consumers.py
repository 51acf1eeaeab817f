"""The live feed socket (/ws/live/): one tenant's call and handoff events, as they are stored.

Thin on purpose: it applies the portal's access rules at connect, joins the tenant's group and
forwards what `reporting.live.publish()` sends. It reads the database again only when told its
user's access changed (reporting.signals: role, membership or account), and closes with 4403
if the user may no longer watch this center's feed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from reporting.live import group_name, user_group_name
from voiso_byob.access import current_membership
from voiso_byob.models import Membership

# Close codes the page understands: it stops reconnecting on these (4000-4999 are the
# application's range; the numbers echo HTTP so they read at a glance).
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403


@dataclass
class _ScopeRequest:
    """What `current_membership()` reads from a request, taken from the socket's scope.

    The socket must pick the same contact center as the page that opened it (the session's
    current center), so it goes through the portal's own lookup rather than a copy of it.
    """

    user: Any
    session: Any


@database_sync_to_async
def _live_center_id(scope: dict[str, Any]) -> tuple[int, UUID | None]:
    """(close code, center id): code 0 when the user may watch the feed of that center."""
    user = scope.get("user")
    if user is None or not user.is_authenticated:
        return CLOSE_UNAUTHENTICATED, None
    membership = current_membership(_ScopeRequest(user=user, session=scope["session"]))  # type: ignore[arg-type]
    if membership is None or not membership.can_read_configuration:
        return CLOSE_FORBIDDEN, None
    return 0, membership.contact_center_id


@database_sync_to_async
def _may_still_watch(user_id: Any, center_id: UUID) -> bool:
    membership = (
        Membership.objects.filter(user_id=user_id, user__is_active=True, contact_center_id=center_id)
        .only("role")
        .first()
    )
    return membership is not None and membership.can_read_configuration


class LiveConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None
    user_group: str | None = None
    center_id: UUID | None = None

    async def connect(self) -> None:
        code, center_id = await _live_center_id(self.scope)
        if center_id is None:
            # Accept, then close: a refusal before accept is an HTTP 403 at the handshake and
            # the browser never learns why; the close code tells the page to stop retrying
            # (4401: log in again, 4403: this role or center has no live feed).
            await self.accept()
            await self.close(code=code)
            return
        # Join before accepting: once the page sees the socket open it fetches what it
        # missed, and everything published after that fetch must already reach this socket.
        self.group, self.center_id = group_name(center_id), center_id
        self.user_group = user_group_name(self.scope["user"].pk)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.channel_layer.group_add(self.user_group, self.channel_name)
        await self.accept()

    async def disconnect(self, code: int) -> None:
        for group in (self.group, self.user_group):
            if group is not None:
                await self.channel_layer.group_discard(group, self.channel_name)

    async def live_access_changed(self, event: dict[str, Any]) -> None:
        """The user's role, membership or account changed: still allowed to watch this feed?"""
        if self.center_id is not None and not await _may_still_watch(self.scope["user"].pk, self.center_id):
            await self.close(code=CLOSE_FORBIDDEN)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        # The feed is one-way: whatever the browser sends (JSON or not) is ignored, never an error.
        return

    async def live_events(self, event: dict[str, Any]) -> None:
        """A batch from `reporting.live.publish()`, passed on unchanged."""
        await self.send_json({"type": "events", "messages": event["messages"]})
