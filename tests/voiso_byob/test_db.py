"""voiso_byob.db: the hot paths' cursors and the statement text they send."""

from __future__ import annotations

import pytest
from django.db import connection

from voiso_byob.db import numbered, prepared_cursor


def test_numbered_placeholders() -> None:
    assert numbered("SELECT %s::int + %s, '$x'") == "SELECT $1::int + $2, '$x'"
    assert numbered("SELECT 1") == "SELECT 1"
    with pytest.raises(ValueError, match="only % are %s"):
        numbered("SELECT 1 WHERE name LIKE 'a%'")


@pytest.mark.postgres
@pytest.mark.django_db
def test_numbered_statements_run_on_postgresql_and_are_counted(django_assert_num_queries) -> None:
    long_statement = "SELECT %s::int + %s::int" + " + 0" * 2000  # longer than psycopg's 4 kB memo
    with django_assert_num_queries(3):
        for _ in range(3):  # the third runs prepared (PREPARE_THRESHOLD), when the cursor prepares
            with prepared_cursor(numbered=True) as cursor:
                cursor.execute(numbered(long_statement), [40, 2])
                assert cursor.fetchone() == (42,)
    assert connection.vendor == "postgresql"
