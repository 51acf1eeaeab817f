"""Per-key rate limits: a token bucket per API key, sized by the key's scope (settings.API_RATE_LIMITS).

A bucket holds up to `burst` tokens and refills continuously at `rate` tokens per second; every
request an API key makes takes one token (a batch of events is one request: batching is what the
switch should do, so it costs no more), and a request that finds the bucket empty is refused with
429 `rate_limited` and `Retry-After` (whole seconds, rounded up) before it changes anything.
Portal sessions are not limited here (sign-ins have their own throttle: voiso_byob.login_throttle).

Where the buckets live (`buckets()`, one small interface, two implementations):
- with Redis (the shared cache), in Redis, so every worker and server draws on the same bucket;
  the take is one Lua script, atomic, and the telephony hot path runs it as part of the one Redis
  round trip a request makes anyway (`RedisCache.get_then_write(take=...)`: the bucket, then the
  request's reads and writes — none of them when the bucket is empty);
- without Redis (`make run` on SQLite), in this process's memory: each process has its own
  buckets, which is enough for a development server.
Requests that make no Redis call of their own (events, DRF views) take theirs in `check()`; for a
busy key with a large burst (telephony's) a process takes a hundredth of the burst at a time and
spends it over the next second (`LEASE_*`), so only one request in many makes the round trip.
The clock is the application's (`time.time()`, so tests move it); servers' clocks are kept within
milliseconds of one another by NTP, and a bucket never refills from a clock that went backwards.

When Redis fails, requests are let through (fail open) and a warning is logged at most once a minute
per process: a rate limiter must never be the reason calls stop being routed.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger(__name__)

CODE = "rate_limited"
SIP_STATUS = 503  # what the switch answers an INVITE or REFER with: Service Unavailable, with Retry-After


@dataclass(frozen=True, slots=True)
class Limit:
    rate: float  # tokens per second, refilled continuously
    burst: int  # the bucket's size: requests that may come at once after a quiet spell

    @property
    def refill_seconds(self) -> float:
        """From empty to full; a bucket left alone that long is full, so it need not be kept."""
        return self.burst / self.rate


@dataclass(frozen=True, slots=True)
class Take:
    """Tokens from one bucket at one moment: `up_to` of them, and at least one."""

    bucket: str
    limit: Limit
    now: float
    up_to: int = 1


class RateLimited(Exception):
    def __init__(self, wait: float) -> None:
        self.wait = wait
        self.retry_after = max(1, math.ceil(wait))
        super().__init__(message(self.retry_after))


def message(retry_after: int) -> str:
    unit = "second" if retry_after == 1 else "seconds"
    return f"Too many requests for this API key; retry after {retry_after} {unit}."


def limit_for(scope: str) -> Limit | None:
    """The scope's limit from settings; None when the scope is not limited (a rate of 0)."""
    rate, burst = settings.API_RATE_LIMITS.get(scope, (0, 0))
    return Limit(float(rate), int(burst)) if rate > 0 else None


def bucket_key(key_id: Any) -> str:
    return f"ratelimit:{key_id}"


def take_for(key_id: Any, scope: str) -> Take | None:
    limit = limit_for(scope)
    if limit is None:
        return None
    return Take(bucket=bucket_key(key_id), limit=limit, now=time.time())


# --- the buckets -------------------------------------------------------------------------------


class Buckets(Protocol):
    def take(self, take: Take) -> int:
        """The tokens taken (1 to `take.up_to`); RateLimited, taking none, when not even one is there."""
        ...


def refill(tokens: float, at: float, take: Take) -> tuple[float, float]:
    """The bucket's tokens and time after refilling up to `take.now` (never from a clock gone back)."""
    if take.now > at:
        return min(float(take.limit.burst), tokens + (take.now - at) * take.limit.rate), take.now
    return tokens, at


class LocalBuckets:
    """Buckets in this process's memory: the fallback without Redis (each process has its own)."""

    MAX_BUCKETS = 10_000

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()  # gunicorn threads or daphne's thread pool share a process

    def take(self, take: Take) -> int:
        with self._lock:
            state = self._buckets.get(take.bucket)
            tokens, at = refill(*state, take) if state is not None else (float(take.limit.burst), take.now)
            if tokens < 1:
                raise RateLimited((1 - tokens) / take.limit.rate)
            taken = min(take.up_to, math.floor(tokens))
            if len(self._buckets) >= self.MAX_BUCKETS and take.bucket not in self._buckets:
                self._forget_full(take.now)
            self._buckets[take.bucket] = (tokens - taken, at)
            return taken

    def _forget_full(self, now: float) -> None:
        # Buckets idle long enough to be full again are the same as no bucket; drop them. If every
        # bucket is busy (keys come and go faster than they refill), start over: a process's memory
        # never grows without bound, at the price of a fresh burst for each key.
        idle = [name for name, (_, at) in self._buckets.items() if now - at > 3600]
        for name in idle:
            del self._buckets[name]
        if len(self._buckets) >= self.MAX_BUCKETS:
            self._buckets.clear()

    def clear(self) -> None:
        with self._lock:
            self._buckets.clear()


# KEYS[1] the bucket (a hash: tokens, at); KEYS[2 .. 1+n_get] read; the rest written with ARGV[7 ..].
# ARGV: rate, burst, now, up_to, n_get, expiry of the written keys (seconds; 0: none).
# Returns {tokens taken (1 .. up_to), values read...}, or {0, seconds to wait} having done nothing.
# The same arithmetic as `refill` and LocalBuckets.take; a fraction travels as text (a Lua number
# returned to Redis is cut to an integer).
TAKE_SCRIPT = """
local rate, burst, now, up_to = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens, at = tonumber(state[1]), tonumber(state[2])
if tokens == nil or at == nil then
  tokens, at = burst, now
elseif now > at then
  tokens, at = math.min(burst, tokens + (now - at) * rate), now
end
if tokens < 1 then
  return {0, tostring((1 - tokens) / rate)}
end
local taken = math.min(up_to, math.floor(tokens))
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens - taken), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
local n_get, expiry = tonumber(ARGV[5]), tonumber(ARGV[6])
local answer = {taken}
for i = 2, 1 + n_get do
  answer[#answer + 1] = redis.call('GET', KEYS[i])
end
for i = 2 + n_get, #KEYS do
  local value = ARGV[5 + i - n_get]
  if expiry > 0 then
    redis.call('SET', KEYS[i], value, 'EX', expiry)
  else
    redis.call('SET', KEYS[i], value)
  end
end
return answer
"""


def script_args(take: Take, n_get: int, expiry: int | None) -> list[Any]:
    limit = take.limit
    return [repr(limit.rate), limit.burst, repr(take.now), take.up_to, n_get, expiry or 0]


class RedisBuckets:
    """Buckets in Redis, through the shared cache (voiso_byob.cache.RedisCache)."""

    def take(self, take: Take) -> int:
        taken, _ = cache.take_then_get_write(take, [])
        return taken


local_buckets = LocalBuckets()
_redis_buckets = RedisBuckets()


def buckets() -> Buckets:
    return _redis_buckets if hasattr(cache, "get_then_write") else local_buckets


# --- for the views -------------------------------------------------------------------------------

_WARN_EVERY_SECONDS = 60.0
_last_warning = 0.0


def warn_unavailable() -> None:
    """Log that limits are not enforced; at most once a minute per process (the hot path may call
    this thousands of times a second while Redis is down)."""
    global _last_warning
    now = time.monotonic()
    if now - _last_warning >= _WARN_EVERY_SECONDS:
        _last_warning = now
        logger.warning("API rate limits not enforced: the shared cache is unavailable", exc_info=True)


# Per process: tokens taken ahead from a busy key's bucket (bucket → (tokens left, until when)).
# The events endpoint makes no Redis call of its own; taking a telephony key's tokens a hundred at a
# time spares it a round trip on 99 requests of 100. Only for buckets of at least LEASE_MIN_BURST,
# where what a few processes hold ahead (each at most burst / LEASE_SHARE, for LEASE_SECONDS; what
# is left then is dropped, never returned) is a small part of the burst; smaller limits are exact.
LEASE_SHARE = 100
LEASE_MIN_BURST = 2 * LEASE_SHARE
LEASE_SECONDS = 1.0
_leases: dict[str, tuple[int, float]] = {}
_leases_lock = threading.Lock()


def lease_size(limit: Limit) -> int:
    return limit.burst // LEASE_SHARE if limit.burst >= LEASE_MIN_BURST else 1


def check(key_id: Any, scope: str) -> None:
    """Take a token for the key's request; RateLimited when its bucket is empty. Fails open (logged)."""
    take = take_for(key_id, scope)
    if take is not None:
        _check(take)


def _check(take: Take) -> None:
    size = lease_size(take.limit)
    if size > 1:
        with _leases_lock:
            left, until = _leases.get(take.bucket, (0, 0.0))
            if left > 0 and take.now < until:
                _leases[take.bucket] = (left - 1, until)
                return
        take = Take(bucket=take.bucket, limit=take.limit, now=take.now, up_to=size)
    try:
        taken = buckets().take(take)
    except RateLimited:
        raise
    except Exception:
        warn_unavailable()
        return
    if taken > 1:
        with _leases_lock:
            if len(_leases) > 10_000:  # keys come and go; never let this grow without bound
                _leases.clear()
            _leases[take.bucket] = (taken - 1, take.now + LEASE_SECONDS)


def token_for_round_trip(key_id: Any, scope: str) -> Take | None:
    """For a request about to make its Redis round trip anyway (route, refer): the Take to send with
    it (RedisCache.get_then_write), or None when no token need be taken there — the scope has no
    limit, or its bucket is taken ahead and this process spends from that (`check`: cheaper still
    than a bigger round trip)."""
    take = take_for(key_id, scope)
    if take is None or lease_size(take.limit) == 1:
        return take
    _check(take)
    return None


def forget_leases() -> None:
    with _leases_lock:
        _leases.clear()
