"""Database helpers shared by the hot paths (telephony route/refer, event ingestion)."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from django.db import connection


@contextmanager
def prepared_cursor() -> Iterator[Any]:
    """A cursor whose statements PostgreSQL prepares once per connection.

    Django's own cursors bind parameters on the client, so PostgreSQL parses and plans the full
    text on every call; for the hot paths' fixed statements that planning measured as much as
    running them. A server-binding psycopg cursor lets psycopg prepare a statement on its
    `prepare_threshold`-th use (settings: PREPARE_THRESHOLD). It still goes through Django's
    cursor wrapper, so tests count its queries and DEBUG logs them. Parameters are typed by the
    server: give untyped ones an explicit cast in the SQL. Other databases: Django's cursor.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    import psycopg

    connection.ensure_connection()
    with connection._prepare_cursor(psycopg.Cursor(connection.connection)) as cursor:
        yield cursor


@contextmanager
def server_bound_cursor() -> Iterator[Any]:
    """A cursor that sends parameters apart from the statement text, and never prepares it.

    For statements with large parameters (an events batch is one JSON text of ~150 kB): Django's
    cursors bind on the client, escaping and copying that text into the SQL (measured: 7 % of a
    batch's CPU). Planned afresh every time, with the actual values (see
    reporting.ingest_sql._cursor). Parameters are typed by the server, as for prepared_cursor.
    Other databases: Django's cursor.
    """
    if connection.vendor != "postgresql":
        with connection.cursor() as cursor:
            yield cursor
        return
    connection.ensure_connection()
    with connection._prepare_cursor(_unprepared_cursor_class()(connection.connection)) as cursor:
        yield cursor


@functools.cache
def _unprepared_cursor_class() -> type:
    import psycopg

    class UnpreparedCursor(psycopg.Cursor):  # type: ignore[type-arg]
        def execute(
            self, query: Any, params: Any = None, *, prepare: bool | None = None, **kwargs: Any
        ) -> Any:
            return super().execute(query, params, prepare=False, **kwargs)

    return UnpreparedCursor
