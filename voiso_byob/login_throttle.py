"""Sign-in throttling: failed passwords counted per account and per address in the shared cache.

Policy (settings LOGIN_FAILURES_PER_ACCOUNT, LOGIN_FAILURES_PER_ADDRESS, LOGIN_COOLOFF_SECONDS):
- An account (the e-mail typed, whether or not it exists, so a lock reveals nothing) may fail 5
  times in a window that starts at its first failure and lasts the cool-off (15 minutes); the
  5th failure locks it for the cool-off. An address (REMOTE_ADDR) may fail 30 times the same way,
  so one office behind NAT is not locked by one person's typos, while one address guessing across
  many accounts is.
- While locked, no password is checked at all (the right one included) and the answer says when
  to try again. The lock ends by itself after the cool-off: nobody, the owner included, is locked
  out for good, and a guesser gets at most 5 guesses per account per cool-off.
- A successful sign-in forgets the account's failures (not the address's).
- Every lock is logged (logger `voiso_byob.login`, WARNING).

Enforced in the authentication backend, so every sign-in (portal, Django admin, test client)
obeys it; the login forms only turn the refusal into a clear message. The counters live in the
default cache: Redis in production (shared by every worker); without Redis, per process. While
a configured Redis is down, each worker counts in its own memory (`_fallback`): the limits then
hold per worker (at most the limit times the workers per cool-off) instead of not at all, and
nobody is locked out by the outage itself.
Django's own cache rather than django-axes: axes has one failure limit for all its lockout
parameters, and the per-address limit here must be higher than the per-account one.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache
from django.core.cache.backends.base import BaseCache
from django.core.cache.backends.locmem import LocMemCache
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest

from voiso_byob.cache import CACHE_DOWN, cache_unavailable

logger = logging.getLogger("voiso_byob.login")
T = TypeVar("T")

# Counts kept by this worker while the shared cache does not answer.
_fallback = LocMemCache("login-throttle-fallback", {"MAX_ENTRIES": 10_000})


def _counted(operation: str, apply: Callable[[BaseCache], T]) -> T:
    """`apply` on the shared cache, or on this worker's own memory while the shared one is down."""
    try:
        return apply(cache)
    except CACHE_DOWN as exc:
        cache_unavailable(f"sign-in throttle: {operation} counted in this worker only", exc)
        return apply(_fallback)


@dataclass(frozen=True)
class Lock:
    scope: str  # "account" | "address"
    retry_after: int  # seconds


def _account_key(email: str) -> str:
    digest = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    return f"login-failures:account:{digest}"


def _address_key(address: str) -> str:
    return f"login-failures:address:{address}"


def client_address(request: HttpRequest | None) -> str | None:
    """REMOTE_ADDR (behind a proxy, the proxy must put the client's address there)."""
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def _keys(email: str, address: str | None) -> list[tuple[str, str, int]]:
    keys = [("account", _account_key(email), settings.LOGIN_FAILURES_PER_ACCOUNT)]
    if address:
        keys.append(("address", _address_key(address), settings.LOGIN_FAILURES_PER_ADDRESS))
    return keys


def current_lock(email: str, address: str | None) -> Lock | None:
    """The lock in force for this account or address, if any."""
    keys = [f"{key}:until" for _, key, _ in _keys(email, address)]
    found = _counted("lock", lambda store: store.get_many(keys))
    for scope, key, _ in _keys(email, address):
        until = found.get(f"{key}:until")
        if until is not None and until > time.time():
            return Lock(scope, max(int(until - time.time()) + 1, 1))
    return None


def record_failure(email: str, address: str | None) -> None:
    _counted("failure", lambda store: _count_failure(store, email, address))


def _count_failure(cache: BaseCache, email: str, address: str | None) -> None:
    cooloff = settings.LOGIN_COOLOFF_SECONDS
    for scope, key, limit in _keys(email, address):
        # The window starts at the first failure (add is a no-op when the key exists); incr is
        # atomic in Redis and in the local-memory cache, so concurrent guesses are all counted.
        cache.add(key, 0, timeout=cooloff)
        try:
            failures = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=cooloff)
            failures = 1
        if failures >= limit:
            cache.set(f"{key}:until", time.time() + cooloff, timeout=cooloff)
            cache.delete(key)
            logger.warning(
                "sign-in locked for %s s: %s failures for %s %s",
                cooloff,
                failures,
                scope,
                _account_key(email)[-12:] if scope == "account" else address,
            )


def record_success(email: str) -> None:
    _counted("success", lambda store: store.delete(_account_key(email)))


class ThrottledModelBackend(ModelBackend):
    """ModelBackend that refuses (PermissionDenied: no other backend is tried) while a lock holds."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if username is None:
            username = kwargs.get("email")
        if username is None or password is None:
            return None
        address = client_address(request)
        if current_lock(username, address) is not None:
            raise PermissionDenied("Too many failed sign-ins.")
        user = super().authenticate(request, username=username, password=password, **kwargs)
        if user is None:
            record_failure(username, address)
        else:
            record_success(username)
        return user


def lock_message(lock: Lock) -> str:
    minutes = (lock.retry_after + 59) // 60
    wait = f"{minutes} minute{'s' if minutes != 1 else ''}"
    if lock.scope == "account":
        return f"Too many failed sign-ins for this account. Try again in {wait}."
    return f"Too many failed sign-ins from your network. Try again in {wait}."
