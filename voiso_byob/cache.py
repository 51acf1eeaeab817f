"""Django's Redis cache, with one redis-py client per connection pool instead of one per call.

Django's RedisCacheClient builds a `redis.Redis` around the pool on every cache call; building
one fills a table of ~170 response callbacks, which measured a quarter of a millisecond
per telephony request. redis-py clients are thread-safe and the pool is fork-aware, so one
client per pool is enough.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

from django.core.cache import cache
from django.core.cache.backends import redis as django_redis
from django.db import transaction
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from voiso_byob import rate_limits
from voiso_byob.rate_limits import Take

logger = logging.getLogger(__name__)


class ReusedClientRedisCacheClient(django_redis.RedisCacheClient):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[int, Any] = {}

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        index = self._get_connection_pool_index(write)
        client = self._clients.get(index)
        if client is None:
            if index not in self._pools:
                self._pools[index] = self._pool_class.from_url(self._servers[index], **self._pool_options)
            client = self._clients[index] = self._client(connection_pool=self._pools[index])
        return client


class RedisCache(django_redis.RedisCache):
    def __init__(self, server: Any, params: dict[str, Any]) -> None:
        super().__init__(server, params)
        self._class = ReusedClientRedisCacheClient
        self._take_scripts: dict[int, Any] = {}  # per client: its SHA is loaded into Redis once

    def validate_key(self, key: str) -> None:
        # Django's check warns about what memcached refuses (spaces, control characters, > 250
        # bytes); Redis keys are binary-safe, and the check walks every character of every key.
        return None

    def get_then_write(
        self,
        get_keys: Sequence[str],
        *,
        set_items: Mapping[str, Any] | None = None,
        timeout: int | None = None,
        delete_keys: Sequence[str] = (),
        take: Take | None = None,
    ) -> list[Any]:
        """Read `get_keys`, then write `set_items` and delete `delete_keys`, in one round trip.

        A pipeline, not a transaction: the reads see the values from before the writes. With
        `take`, a token is taken from a rate-limit bucket first, in the same round trip; when the
        bucket is empty nothing is read or written and RateLimited is raised (voiso_byob.rate_limits).
        """
        if take is not None:
            if delete_keys:
                raise ValueError("get_then_write deletes nothing behind a take")
            return self.take_then_get_write(take, get_keys, set_items=set_items, timeout=timeout)[1]
        client = self._cache.get_client(write=True)
        serializer = self._cache._serializer
        pipe = client.pipeline(transaction=False)
        for key in get_keys:
            pipe.get(self.make_and_validate_key(key))
        expiry = self.get_backend_timeout(timeout)
        for key, value in (set_items or {}).items():
            pipe.set(self.make_and_validate_key(key), serializer.dumps(value), ex=expiry)
        for key in delete_keys:
            pipe.delete(self.make_and_validate_key(key))
        results = pipe.execute()[: len(get_keys)]
        return [None if value is None else serializer.loads(value) for value in results]

    def take_then_get_write(
        self,
        take: Take,
        get_keys: Sequence[str],
        *,
        set_items: Mapping[str, Any] | None = None,
        timeout: int | None = None,
    ) -> tuple[int, list[Any]]:
        """Tokens from a rate-limit bucket, then `get_keys` read and `set_items` written, atomically in
        one round trip (rate_limits.TAKE_SCRIPT): (tokens taken, values read). RateLimited, having read
        and written nothing, when the bucket is empty."""
        set_items = set_items or {}
        client = self._cache.get_client(write=True)
        serializer = self._cache._serializer
        script = self._take_scripts.get(id(client))
        if script is None:
            script = self._take_scripts[id(client)] = client.register_script(rate_limits.TAKE_SCRIPT)
        keys = [self.make_and_validate_key(key) for key in (take.bucket, *get_keys, *set_items)]
        expiry = self.get_backend_timeout(timeout) if set_items else None
        values = [serializer.dumps(value) for value in set_items.values()]
        args = [*rate_limits.script_args(take, len(get_keys), expiry), *values]
        taken, *results = script(keys=keys, args=args)
        if not taken:
            raise rate_limits.RateLimited(float(results[0]))
        return int(taken), [None if value is None else serializer.loads(value) for value in results]

    def add_and_incr(self, deltas: Mapping[str, int], *, timeout: int) -> list[int]:
        """Each counter moved by its delta, created at 0 (expiring after `timeout`) when missing.

        One round trip for all of them (SET NX EX, then INCRBY, per key); the new values, in order.
        """
        client = self._cache.get_client(write=True)
        pipe = client.pipeline(transaction=False)
        for key, delta in deltas.items():
            redis_key = self.make_and_validate_key(key)
            pipe.set(redis_key, 0, ex=timeout, nx=True)
            pipe.incrby(redis_key, delta)
        return [int(value) for value in pipe.execute()[1::2]]


# --- when Redis is down ------------------------------------------------------------------------
# Every caller of the shared cache has a way on without it (PostgreSQL, or a feature that waits),
# so a failure is reported here, once per outage and process, instead of a warning per request.
# The connections' short timeouts (settings.CACHES) keep a Redis that does not answer from
# holding a request up for longer than that.

# What a Redis that is stopped, restarting, unreachable or too slow raises (redis-py wraps most
# socket errors; OSError for those it does not); anything else is a bug and is not swallowed.
CACHE_DOWN = (RedisConnectionError, RedisTimeoutError, OSError)
OUTAGE_QUIET_SECONDS = 60.0  # an outage is over when nothing has failed for this long


class _Outage:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started = 0.0  # monotonic time of the outage's first failure; 0: no outage
        self.last = 0.0
        self.failures = 0

    def note(self, what: str, exc: BaseException) -> None:
        now = time.monotonic()
        with self._lock:
            is_new = not self.started or now - self.last > OUTAGE_QUIET_SECONDS
            if is_new:
                self.started, self.failures = now, 0
            self.last = now
            self.failures += 1
        if is_new:
            logger.warning(
                "shared cache (Redis) unavailable: %s (%s: %s); carrying on without it, "
                "from PostgreSQL where needed. Further failures are not logged until it answers again.",
                what,
                type(exc).__name__,
                str(exc).splitlines()[0][:200] if str(exc) else "",
            )

    def ended(self) -> None:
        """A cache call worked: if an outage was on, say how long it lasted."""
        if not self.started:
            return
        with self._lock:
            started, failures, self.started = self.started, self.failures, 0.0
        if started:
            seconds = time.monotonic() - started
            logger.warning(
                "shared cache (Redis) answers again after %.1f s (%d failed calls)", seconds, failures
            )


outage = _Outage()


def cache_unavailable(what: str, exc: BaseException) -> None:
    """Record a failed shared-cache call (`what`: what was being done); logged once per outage."""
    outage.note(what, exc)


def cache_answered() -> None:
    """Record a shared-cache call that worked (cheap: an attribute read unless an outage was on)."""
    if outage.started:
        outage.ended()


# --- the telephony generation ----------------------------------------------------------------
# One number in the shared cache that changes whenever anything a telephony answer depends on
# changes (API keys, centers, numbers, flows, extensions and their owners). Processes keep
# answers' inputs in memory and check this number in the same round trip as the write a
# request makes anyway (routing.hotpath); a different number means "read the database again".

TELEPHONY_GENERATION_KEY = "telephony-generation"


def bump_telephony_generation() -> None:
    """Now, and again after the current transaction commits.

    Now: so the next request in this transaction (and tests, whose transaction never commits)
    reads the change. After commit: a process that re-read the database in between saw the
    old rows under the first new value, and must read again.
    """
    _bump_now()
    if transaction.get_connection().in_atomic_block:
        transaction.on_commit(_bump_now)


def _bump_now() -> None:
    try:
        try:
            cache.incr(TELEPHONY_GENERATION_KEY)
        except ValueError:  # missing (first change, or evicted): any new value invalidates
            cache.set(TELEPHONY_GENERATION_KEY, secrets.randbits(48), None)
    except Exception as exc:
        # Entries in other processes then live until their age limit (hotpath.LOCAL_SECONDS).
        cache_unavailable("telephony generation not bumped", exc)
