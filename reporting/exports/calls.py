"""Call records as export rows: the calls list's filters and order, one row per call.

`call_rows` reads typed values (the XLSX, and the CSV off PostgreSQL); `call_csv_chunks` is the
CSV export's named fast path. bench/exports.py measured, under gunicorn on a busy 2-core
machine: the export as it was (a model instance per row with three select_related joins, one
line per chunk) 4,300-5,400 rows/s; `call_rows` + `csv_call_rows` + the csv module about
19,000 rows/s, short of the 50,000 target; PostgreSQL's COPY writing the same cells
(`_copy_csv_chunks`) reached 51,455 rows/s for 1 M rows at load 10.5, peak RSS flat at
107 MiB. Figures in bench/README.md.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connections, transaction
from django.db.models import CharField, F
from django.db.models.functions import Cast

from reporting.exports.formats import FORMULA_TRIGGERS, ROWS_PER_CHUNK, csv_chunks
from reporting.models import CallRecordQuerySet
from reporting.queries import dated_in_order, in_list_order, undated_in_order

CALL_COLUMNS = [
    "call_id",
    "started_at",
    "direction",
    "from",
    "to",
    "virtual_agent",
    "outcome",
    "handoffs",
    "queue",
    "answered_by",
    "answered_extension",
    "duration_seconds",
    "bot_seconds",
    "queue_wait_seconds",
    "human_seconds",
    "end_reason",
    "hangup_by",
    "status",
    "recording_url",
]
SECONDS_COLUMNS = ("duration_seconds", "bot_seconds", "queue_wait_seconds", "human_seconds")

# Read in CALL_COLUMNS order; the agent is named by full name, else email (User.display_name).
_FIELDS = (
    "call_id",
    "started_text",
    "direction",
    "from_number",
    "to_number",
    "virtual_agent__name",
    "bot_outcome",
    "handoff_count",
    "queue__name",
    "answered_by__user__full_name",
    "answered_by__user__email",
    "answered_extension",
    "total_seconds",
    "bot_seconds",
    "queue_wait_seconds",
    "human_seconds",
    "end_reason",
    "hangup_by",
    "status",
    "recording_url",
)

CallRow = tuple[Any, ...]


def call_rows(records: CallRecordQuerySet, zone: ZoneInfo) -> Iterator[CallRow]:
    """Every record of `records` in list order, as CALL_COLUMNS values, read in chunks.

    Values: text, the start as ISO 8601 in `zone` ("" when unknown), handoffs an int, seconds
    floats or None. Read with values_list, the bot's, queue's and agent's names joined in the
    same query, through server-side cursors (`in_list_order`, chunks of 500). The start is
    read as text and parsed with datetime.fromisoformat: psycopg's loading of a timestamptz
    as Django sets it up cost ~13 µs a row here (200,000 rows read at 59,000 rows/s with the
    column, 245,000 without it).
    """
    rows = records.annotate(started_text=Cast("started_at", CharField())).values_list(*_FIELDS)
    for (
        call_id,
        started,
        direction,
        from_number,
        to_number,
        bot,
        outcome,
        handoffs,
        queue,
        full_name,
        email,
        *rest,
    ) in in_list_order(rows):
        yield (
            call_id,
            _local_iso(started, zone),
            direction,
            from_number,
            to_number,
            bot or "",
            outcome,
            handoffs,
            queue or "",
            full_name or email or "",
            *rest,
        )


def _local_iso(text: str | None, zone: ZoneInfo) -> str:
    if not text:
        return ""
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:  # SQLite keeps UTC without an offset
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(zone).isoformat()


def csv_call_rows(rows: Iterable[CallRow]) -> Iterator[list[object]]:
    """CSV cells: seconds to one decimal, and the formula guard on every cell that holds text
    from outside (numbers, names, ids, reasons, URLs; the enumerations are checked by the
    database and cannot start with a trigger).
    """
    triggers = FORMULA_TRIGGERS

    def safe(text: str) -> str:
        return f"'{text}" if text.startswith(triggers) else text

    def seconds(value: float | None) -> str:
        return "" if value is None else safe(f"{value:.1f}")

    for (
        call_id,
        started,
        direction,
        from_number,
        to_number,
        bot,
        outcome,
        handoffs,
        queue,
        agent,
        extension,
        total,
        bot_seconds,
        wait,
        human,
        end_reason,
        hangup_by,
        status,
        recording_url,
    ) in rows:
        yield [
            safe(call_id),
            started,
            direction,
            safe(from_number),
            safe(to_number),
            safe(bot),
            outcome,
            handoffs,
            safe(queue),
            safe(agent),
            safe(extension),
            seconds(total),
            seconds(bot_seconds),
            seconds(wait),
            seconds(human),
            safe(end_reason),
            hangup_by,
            status,
            safe(recording_url),
        ]


def call_csv_chunks(records: CallRecordQuerySet, zone: ZoneInfo) -> Iterator[bytes]:
    """The CSV export of `records` (CALL_COLUMNS, list order) as byte chunks, in constant memory.

    On PostgreSQL the database writes the rows (`_copy_csv_chunks`); elsewhere `call_rows` and
    `csv_call_rows` do; both write the same rows (tests/reporting/test_call_exports.py), but
    COPY ends lines with "\n" where the csv module writes "\r\n" (RFC 4180; with "\n" it
    would leave a lone "\r" in a cell unquoted).
    The database is the one `records` reads from when this is called: a router's choice is
    made now, in the view, not when the streamed response reads the rows after it returned.
    """
    alias = records.db
    records = records.using(alias)
    if connections[alias].vendor == "postgresql":
        return _copy_csv_chunks(records, zone, alias)
    return csv_chunks(CALL_COLUMNS, csv_call_rows(call_rows(records, zone)))


# The cells of csv_call_rows, written by PostgreSQL. _guard: the formula guard (ascii() of the
# first character, FORMULA_TRIGGERS' codes), and NULL for "" (COPY writes an empty string as ""
# to tell it from NULL; the csv module writes nothing). Times are formatted in the session's
# time zone, set to the center's for the transaction. to_char of a float8 rounds as C's printf
# does, like Python's format ("80.25" -> "80.2"); it is the costliest cell, so it is called
# once a cell: a negative number is the only one that starts with a trigger. Each costed on
# 1 M rows (PostgreSQL alone, busy machine): left(x, 1) IN (...) 1.1 µs, ascii(x) 0.4 µs,
# to_char(float8) 3.3 µs, to_char(timestamptz) 0.8 µs.
_TRIGGER_CODES = ", ".join(str(ord(trigger)) for trigger in FORMULA_TRIGGERS)


def _guard(column: str) -> str:
    return (
        f"CASE WHEN ascii({column}) IN ({_TRIGGER_CODES}) THEN '''' || {column} ELSE NULLIF({column}, '') END"
    )


def _seconds_sql(column: str) -> str:
    return f"CASE WHEN {column} < 0 THEN '''' ELSE '' END || to_char({column}, 'FM999999999990.0')"


_STARTED_SQL = (
    "CASE WHEN date_part('microseconds', r.started_at)::int %% 1000000 = 0 "
    """THEN to_char(r.started_at, 'YYYY-MM-DD"T"HH24:MI:SSTZH:TZM') """
    """ELSE to_char(r.started_at, 'YYYY-MM-DD"T"HH24:MI:SS.USTZH:TZM') END"""
)
_COPY_CELLS = ", ".join(
    [
        _guard("r.call_id"),
        _STARTED_SQL,
        "NULLIF(r.direction, '')",
        _guard("r.from_number"),
        _guard("r.to_number"),
        _guard("r.bot"),
        "NULLIF(r.bot_outcome, '')",
        "r.handoff_count",
        _guard("r.queue_name"),
        _guard("COALESCE(NULLIF(r.agent_name, ''), r.agent_email)"),
        _guard("r.answered_extension"),
        _seconds_sql("r.total_seconds"),
        _seconds_sql("r.bot_seconds"),
        _seconds_sql("r.queue_wait_seconds"),
        _seconds_sql("r.human_seconds"),
        _guard("r.end_reason"),
        "NULLIF(r.hangup_by, '')",
        "NULLIF(r.status, '')",
        _guard("r.recording_url"),
    ]
)
_COPY_COLUMNS = (
    "id",
    "call_id",
    "started_at",
    "direction",
    "from_number",
    "to_number",
    "bot",
    "bot_outcome",
    "handoff_count",
    "queue_name",
    "agent_name",
    "agent_email",
    "answered_extension",
    "total_seconds",
    "bot_seconds",
    "queue_wait_seconds",
    "human_seconds",
    "end_reason",
    "hangup_by",
    "status",
    "recording_url",
)


def _copy_csv_chunks(records: CallRecordQuerySet, zone: ZoneInfo, alias: str) -> Iterator[bytes]:
    """COPY (SELECT <the cells> FROM (<the filtered records>) r ORDER BY <list order>) TO STDOUT.

    The ORM builds the filtered query without an ORDER BY, so PostgreSQL folds it into the
    outer one and can walk reporting_record_started_idx in list order: the dated part, then
    the undated one, as `in_list_order` reads them. PostgreSQL sends a message per row; they
    are joined into chunks of ROWS_PER_CHUNK. One transaction (for the session time zone),
    rolled back if the client goes away (the generator is closed).
    """
    named = records.annotate(
        bot=F("virtual_agent__name"),
        queue_name=F("queue__name"),
        agent_name=F("answered_by__user__full_name"),
        agent_email=F("answered_by__user__email"),
    )
    # COPY ends lines with "\n" (the csv module with "\r\n"): the header as COPY would write it.
    yield (",".join(CALL_COLUMNS) + "\n").encode()
    with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
        cursor.execute("SELECT current_setting('TimeZone'), set_config('TimeZone', %s, true)", [zone.key])
        session_zone = cursor.fetchone()[0]
        yield from _copy_parts(cursor, named)
        # Inside an outer transaction this one is a savepoint, and SET LOCAL would outlive it.
        # (Cut short, it is rolled back, and that undoes SET LOCAL too.)
        cursor.execute("SELECT set_config('TimeZone', %s, true)", [session_zone])


def _copy_parts(cursor: Any, named: CallRecordQuerySet) -> Iterator[bytes]:
    for part in (dated_in_order(named), undated_in_order(named)):
        inner, params = part.order_by().values_list(*_COPY_COLUMNS).query.sql_with_params()
        # Constants and the ORM's compiled query; values travel as parameters.
        statement = (
            f"COPY (SELECT {_COPY_CELLS} FROM ({inner}) AS r "  # noqa: S608
            "ORDER BY r.started_at DESC, r.id DESC) TO STDOUT (FORMAT csv)"
        )
        with cursor.cursor.copy(statement, params) as copy:
            batch: list[bytes] = []
            for line in copy:
                batch.append(bytes(line))
                if len(batch) == ROWS_PER_CHUNK:
                    yield b"".join(batch)
                    batch.clear()
            if batch:
                yield b"".join(batch)
