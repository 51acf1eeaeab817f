"""Reads from a read replica for reports and exports: `reads_from_replica`, and the router behind it.

With `DATABASE_REPLICA_URL` set (settings: the `replica` alias), code that reads many rows and can
live with replication lag asks for the replica explicitly:

    @reads_from_replica                  # a view (a streamed response is read there too)
    def report_view(request): ...

    with reads_from_replica():           # or a block
        rows = virtual_agent_report(filters)

Inside, reads of the reporting data (the apps in REPLICA_APPS) go to `replica`; writes, and reads of
users, memberships, API keys and sessions (who may see what must be current: a revoked key or a
removed member is refused at once, not once the replica catches up) always go to `default`. Without
the setting everything is `default`. A contextvar carries the request, so threads and asyncio tasks
each have their own.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, TypeVar, overload

from django.conf import settings
from django.http import StreamingHttpResponse

REPLICA = "replica"
# The data reports and exports read: calls, campaigns, and the names they show (queues, bots).
REPLICA_APPS = frozenset({"reporting", "campaigns", "routing", "virtual_agents"})

_replica_reads: ContextVar[bool] = ContextVar("replica_reads", default=False)

F = TypeVar("F", bound=Callable[..., Any])


def has_replica() -> bool:
    return REPLICA in settings.DATABASES


def is_reading_from_replica() -> bool:
    return _replica_reads.get()


@contextmanager
def _replica_block() -> Iterator[None]:
    token = _replica_reads.set(True)
    try:
        yield
    finally:
        _replica_reads.reset(token)


@overload
def reads_from_replica(func: F) -> F: ...
@overload
def reads_from_replica(func: None = None) -> Any: ...
def reads_from_replica(func: F | None = None) -> Any:
    """A decorator (`@reads_from_replica`) or a context manager (`with reads_from_replica():`)."""
    if func is None:
        return _replica_block()

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _replica_block():
            result = func(*args, **kwargs)
        if isinstance(result, StreamingHttpResponse) and not result.is_async:
            # A streamed export runs its queries while the server iterates, after the view returned.
            result.streaming_content = _each_from_replica(result.streaming_content)
        return result

    return wrapper  # type: ignore[return-value]


def _each_from_replica(chunks: Iterable[Any]) -> Iterator[Any]:
    """Each chunk produced inside replica reads: set and reset around every step, since a server may
    iterate the response from a different context each time (ASGI runs sync iterators in threads)."""
    iterator = iter(chunks)
    while True:
        token = _replica_reads.set(True)
        try:
            chunk = next(iterator)
        except StopIteration:
            return
        finally:
            _replica_reads.reset(token)
        yield chunk


class ReplicaRouter:
    """Sends the reporting apps' reads inside `reads_from_replica` to the replica; nothing else."""

    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        if _replica_reads.get() and model._meta.app_label in REPLICA_APPS and has_replica():
            return REPLICA
        return None  # default

    def db_for_write(self, model: type[Any], **hints: Any) -> str | None:
        return "default"

    def allow_relation(self, obj1: Any, obj2: Any, **hints: Any) -> bool | None:
        return True  # the replica holds the same rows as default
