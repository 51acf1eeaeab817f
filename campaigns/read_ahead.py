"""A pure function worked out one step ahead in a background thread.

The lead import uses it to read a file's next chunk (its CSV, fields and numbers: our Python)
while this chunk is written (COPY, the number checks, the commit: time spent waiting for
PostgreSQL, during which psycopg lets go of the GIL). What was measured is in
campaigns/lead_imports.py, beside its use.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Generic, TypeVar

V = TypeVar("V")


class ReadAhead(Generic[V]):
    """`take(*key)` returns `read(*key)`; `start(*key)` begins that call in a background thread,
    so that a later `take` of the same key only waits for what is left of it.

    One call ahead at most: a `start` drops the previous one if it was never taken. `read` must be
    pure (no database: Django's connections belong to their thread) so that a result worked out
    ahead is the one `take` would have worked out itself. Safe to share between threads.

    Creating the thread shortens the process's GIL switch interval (5 ms by default) to
    SWITCH_INTERVAL: the thread waiting on I/O needs the GIL back after each of its waits, and
    the reading thread, pure Python, would otherwise hold it up to 5 ms each time.
    """

    SWITCH_INTERVAL = 0.0005

    def __init__(self, read: Callable[..., V], *, name: str) -> None:
        self._read = read
        self._name = name
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pending: tuple[tuple[Hashable, ...], Future[V]] | None = None

    def start(self, *key: Hashable) -> None:
        with self._lock:
            if self._executor is None:
                sys.setswitchinterval(min(sys.getswitchinterval(), self.SWITCH_INTERVAL))
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=self._name)
            if self._pending is not None:
                self._pending[1].cancel()
            self._pending = (key, self._executor.submit(self._read, *key))

    def take(self, *key: Hashable) -> V:
        with self._lock:
            pending, self._pending = self._pending, None
        if pending is not None:
            if pending[0] == key:
                return pending[1].result()
            pending[1].cancel()
        return self._read(*key)
