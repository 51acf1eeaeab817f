"""Database helpers shared by the hot paths (telephony route/refer, event ingestion)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection


@contextmanager
def prepared_cursor(*, numbered: bool = False) -> Iterator[Any]:
    """A cursor whose statements PostgreSQL prepares once per connection.

    Django's own cursors bind parameters on the client, so PostgreSQL parses and plans the full
    text on every call; for the hot paths' fixed statements that planning measured as much as
    running them. A server-binding psycopg cursor lets psycopg prepare a statement on its
    `prepare_threshold`-th use (settings: PREPARE_THRESHOLD). It still goes through Django's
    cursor wrapper, so tests count its queries and DEBUG logs them. Parameters are typed by the
    server: give untyped ones an explicit cast in the SQL. Other databases: Django's cursor.

    `numbered`: the statement's placeholders are PostgreSQL's own `$1, $2, …` (see `numbered()`).
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    kind = psycopg.RawCursor if numbered else psycopg.Cursor
    with connection._prepare_cursor(kind(connection.connection)) as cursor:
        yield cursor


@functools.lru_cache(maxsize=64)
def numbered(sql: str) -> str:
    """A statement's `%s` placeholders as PostgreSQL's own `$1, $2, …`, for the `numbered` cursors.

    psycopg rewrites `%s` into `$n` before every execution, and remembers the rewrite only for
    statements under 4 kB: the longest hand-written statements (event ingestion's) were rewritten
    on every request (measured: an eighth of a single event's CPU). A raw cursor sends the text as
    is; this makes that text once. The statement may hold no other `%`.
    """
    parts = sql.split("%s")
    if any("%" in part for part in parts):
        raise ValueError("numbered() takes statements whose only % are %s placeholders")
    return parts[0] + "".join(f"${index}{part}" for index, part in enumerate(parts[1:], start=1))
