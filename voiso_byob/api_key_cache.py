"""API keys in the shared cache: the telephony hot path authenticates without SQL.

The SIP layer sends its key with every call. The key row (with its contact center) is
kept in the default cache (Redis in production, shared by every process); revoking
deletes the entry after commit, and the timeout bounds how long a change made behind
the services' back (Django admin) can go unseen. A cache outage falls back to SQL.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from voiso_byob.cache import CACHE_DOWN, cache_unavailable
from voiso_byob.models import ApiKey

logger = logging.getLogger(__name__)

API_KEY_CACHE_SECONDS = 60


def api_key_cache_key(prefix: str) -> str:
    return f"apikey:v1:{prefix}"


def cached_api_key(prefix: str) -> ApiKey | None:
    try:
        key = cache.get(api_key_cache_key(prefix))
    except CACHE_DOWN as exc:
        cache_unavailable("API keys read from PostgreSQL", exc)
        key = None
    if key is not None:
        return key
    key = ApiKey.objects.select_related("contact_center").filter(prefix=prefix).first()
    if key is not None:
        try:
            cache.set(api_key_cache_key(prefix), key, timeout=API_KEY_CACHE_SECONDS)
        except CACHE_DOWN as exc:
            cache_unavailable("API keys read from PostgreSQL", exc)
    return key


def forget_api_keys(keys: Iterable[ApiKey]) -> None:
    """Drop cached keys (revoked, or their contact center changed)."""
    try:
        cache.delete_many([api_key_cache_key(key.prefix) for key in keys])
    except Exception:
        logger.warning(
            "API key cache unavailable; entries expire in %s s", API_KEY_CACHE_SECONDS, exc_info=True
        )


# Per process: key id → time of this process's last write of last_used_at.
_touched: dict[Any, float] = {}


def touch_api_key(key: ApiKey) -> None:
    touch_api_key_id(key.pk)


def touch_api_key_id(key_id: Any) -> None:
    """Record use at most once a minute per key.

    Each process remembers when it last recorded a key, so a busy key costs nothing most of
    the time; when that memory says "due", the shared cache decides which process writes
    (an UPDATE, not a SELECT), so several workers still write about once a minute together.
    """
    resolution = ApiKey.LAST_USED_RESOLUTION.total_seconds()
    now = time.time()
    last = _touched.get(key_id)
    if last is not None and now - last < resolution:
        return
    if len(_touched) > 10_000:  # keys come and go; never let this grow without bound
        _touched.clear()
    _touched[key_id] = now
    try:
        first_this_minute = cache.add(f"apikey-used:{key_id}", 1, timeout=int(resolution))
    except CACHE_DOWN as exc:  # each process then writes once a minute (its own memory above)
        cache_unavailable("API key use recorded without the cache", exc)
        first_this_minute = True
    if first_this_minute:
        ApiKey.objects.filter(pk=key_id).update(last_used_at=timezone.now())


# --- per process, for the events endpoint --------------------------------------------------

KEY_MEMORY_SECONDS = 10.0
_remembered: dict[str, tuple[ApiKey, float]] = {}


def remembered_api_key(prefix: str) -> tuple[ApiKey | None, bool]:
    """(the key, whether it came from this process's memory) — memory first, then cached_api_key.

    Only active keys are remembered, for a few seconds. Whoever uses one must confirm in its own
    write that the key is still active (reporting.ingest does it in the statement that stores the
    events, at no extra cost), so a revocation is honoured at once; what the memory can hold back
    for those seconds is a change to the key's contact center (its settings, as validation reads them).
    """
    entry = _remembered.get(prefix)
    if entry is not None and time.monotonic() - entry[1] < KEY_MEMORY_SECONDS:
        return entry[0], True
    key = cached_api_key(prefix)
    if key is not None and key.is_active:
        if len(_remembered) > 10_000:  # keys come and go; never let this grow without bound
            _remembered.clear()
        _remembered[prefix] = (key, time.monotonic())
    return key, False


def forget_remembered_api_key(prefix: str) -> None:
    _remembered.pop(prefix, None)


def is_still_active(key: ApiKey) -> bool:
    """The database's word on a remembered key (before an answer that is not a store)."""
    return ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).exists()
