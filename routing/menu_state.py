"""A call's menu state: in the shared cache (Redis), and in PostgreSQL while Redis is down.

The route API stores where a call waits at a menu and reads it back when the caller answers
(routing.telephony). Redis holds it in normal operation; when a Redis call fails (stopped,
restarting, unreachable: voiso_byob.cache.CACHE_DOWN), the state goes to `MenuState` rows instead,
and a call whose state is not in Redis is looked for there. A row is taken when read: the call's
next answer stores the state that follows wherever it can. Calls that waited at a menu when Redis
went down lose their state with it (Redis holds it alone), and answer `unknown_call`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone

from routing.models import MenuState
from voiso_byob.cache import CACHE_DOWN, cache_answered, cache_unavailable

SECONDS = 3600  # a caller does not sit in one IVR menu for an hour


def key(center_id: Any, call_id: str) -> str:
    return f"route-state:{center_id}:{call_id}"


def load(center_id: Any, call_id: str) -> Any:
    """The stored state, from Redis, else from the database (taken); None: the call waits at no menu."""
    try:
        stored = cache.get(key(center_id, call_id))
    except CACHE_DOWN as exc:
        cache_unavailable("menu state read from PostgreSQL", exc)
        stored = None
    else:
        cache_answered()
    return stored if stored is not None else take_saved(center_id, call_id)


def take_saved(center_id: Any, call_id: str) -> Any:
    """The state saved in the database while Redis was down, removed as it is read (one query when
    there is none: Redis misses only for unknown, finished or expired calls, and after an outage)."""
    with transaction.atomic():
        row = (
            MenuState.objects.select_for_update()
            .filter(contact_center_id=center_id, call_id=call_id, expires_at__gt=timezone.now())
            .values_list("pk", "state")
            .first()
        )
        if row is None:
            return None
        MenuState.objects.filter(pk=row[0]).delete()
    return row[1]


def save(center_id: Any, call_id: str, state: Any) -> None:
    try:
        cache.set(key(center_id, call_id), state, SECONDS)
    except CACHE_DOWN as exc:
        cache_unavailable("menu state saved in PostgreSQL", exc)
        now = timezone.now()
        MenuState.objects.filter(expires_at__lte=now).delete()  # the table holds only an outage's calls
        MenuState.objects.update_or_create(
            contact_center_id=center_id,
            call_id=call_id,
            defaults={"state": state, "expires_at": now + timedelta(seconds=SECONDS)},
        )
    else:
        cache_answered()


def clear(center_id: Any, call_id: str) -> None:
    try:
        cache.delete(key(center_id, call_id))
    except CACHE_DOWN as exc:
        cache_unavailable("menu state cleared in PostgreSQL", exc)
        MenuState.objects.filter(contact_center_id=center_id, call_id=call_id).delete()
    else:
        cache_answered()
