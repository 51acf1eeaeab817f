"""Database helpers shared by the hot paths (telephony route/refer, event ingestion)."""

from __future__ import annotations

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
