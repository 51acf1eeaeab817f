"""The reports' 15-minute rollups (`CallRollup`, `HandoffRollup`), kept exact by ingestion.

A record contributes to one `CallRollup` row — its key is the 15-minute UTC bucket of its start
and its bot, queue, campaign and direction — the counts of the report figures it is in, its
durations' whole-microsecond sums and one count in each duration histogram
(reporting.reports.durations); each of its handoffs adds 1 to one `HandoffRollup` row. A record
without a start is in no report and contributes nothing.

Ingestion folds a call's events into its record again whenever events arrive, so each fold knows
the record before and after: `fold_into_rollups()` subtracts the before's contribution and adds
the after's, in the fold's transaction. A late or out-of-order event that moves a call to
another bucket, bot or outcome moves its counts with it. The deltas are applied as additive
upserts (`INSERT … ON CONFLICT DO UPDATE SET n = n + excluded.n`, PostgreSQL and SQLite alike),
sorted by key: two workers folding into the same row add up instead of overwriting each other.

`rebuild_rollups()` recomputes a center's rollups from its records with the raw reports' own
predicates (reporting.reports.predicates), grouped by the rollup key: after a bulk load, and on
upgrade. tests/reporting/test_rollups.py checks that every report read from the rollups kept by
ingestion, and from rebuilt ones, equals the report computed from the raw records.

What the rollups cannot follow without a rebuild: a change of BOT_ABANDON_SECONDS (the stored
outcomes do not follow either), and a queue's service level T edited later — a call counts as
answered within T against its queue's T when it was folded, the raw report against today's.
"""

from __future__ import annotations

import functools
import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import BigIntegerField, Case, Count, F, IntegerField, Q, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce

from reporting import ingest_sql
from reporting.assemble import Assembly, HandoffFields, RecordFields
from reporting.models import (
    CALL_ROLLUP_COUNTS,
    CALL_ROLLUP_HISTOGRAMS,
    NO_ID,
    BotOutcome,
    CallRecord,
    CallRollup,
    CallStatus,
    Handoff,
    HandoffRollup,
)
from reporting.reports import predicates as p
from reporting.reports.durations import (
    Micros,
    bin_index,
    bin_of,
    histogram_columns,
    micros_between,
    micros_of,
)
from reporting.reports.filters import DEFAULT_CONTEXT_KEY
from reporting.reports.sql import Bucket, Seconds
from routing.models import SERVICE_LEVEL_DEFAULT, Queue
from voiso_byob.db import numbered
from voiso_byob.jsontext import dumps_compact

BUCKET_SECONDS = 15 * 60
CALL_KEY = ("bucket", "virtual_agent", "queue", "campaign_ref", "direction")
HANDOFF_KEY = (*CALL_KEY, "target_type", "state", "sip_status", "failure_reason", "reason")
CALL_COLUMNS = (
    *CALL_ROLLUP_COUNTS,
    *(name for prefix in CALL_ROLLUP_HISTOGRAMS for name in histogram_columns(prefix)),
)

_REACHED = (BotOutcome.CONTAINED, BotOutcome.HANDED_OFF, BotOutcome.ABANDONED_IN_BOT)


def bucket_of(moment: datetime) -> datetime:
    """The start of the 15-minute UTC bucket holding `moment`."""
    seconds = math.floor(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % BUCKET_SECONDS, UTC)


def _id(value: str | uuid.UUID | None) -> uuid.UUID:
    if value is None:
        return NO_ID
    return value if isinstance(value, uuid.UUID) else uuid.UUID(value)


def call_key(record: RecordFields) -> tuple[Any, ...]:
    assert record.started_at is not None
    return (
        bucket_of(record.started_at),
        _id(record.virtual_agent_id),
        _id(record.queue_id),
        record.campaign_ref,
        record.direction,
    )


def reason_of(handoff: HandoffFields) -> str:
    """The X-Reason value as the raw report reads it (`context ->> 'X-Reason'`), "" for none."""
    value = handoff.context.get(DEFAULT_CONTEXT_KEY)
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def call_counts(record: RecordFields, service_level: int) -> dict[str, int]:
    """The record's contribution to its CallRollup row: the predicates of
    reporting.reports.predicates (and the reports' duration filters), in Python."""
    out: dict[str, int] = {}
    outcome, status = record.bot_outcome, record.status
    if outcome in _REACHED:
        out["calls"] = 1
        out[outcome] = 1
        if record.bot_seconds is not None:
            _duration(out, "bot_time", record.bot_seconds, micros_of(record.bot_seconds))
    elif (
        outcome == BotOutcome.NONE
        and record.bot_connected_at is not None
        and status == CallStatus.IN_PROGRESS
    ):
        out["in_bot"] = 1
    if (
        outcome == BotOutcome.HANDED_OFF
        and record.handoff_requested_at is not None
        and record.bot_connected_at is not None
    ):
        delta = record.handoff_requested_at - record.bot_connected_at
        _duration(
            out,
            "time_to_handoff",
            delta.total_seconds(),
            micros_between(record.handoff_requested_at, record.bot_connected_at),
        )

    if record.queue_entered_at is not None:
        out["offered"] = 1
        if record.queue_answered_at is not None:
            out["answered"] = 1
            wait = record.queue_wait_seconds
            if wait is not None:
                _duration(out, "wait", wait, micros_of(wait))
                if wait <= service_level:
                    out["answered_within_service_level"] = 1
            if record.human_seconds is not None:
                _duration(out, "handle_time", record.human_seconds, micros_of(record.human_seconds))
        elif status == CallStatus.ENDED:
            out["abandoned"] = 1
        elif status == CallStatus.IN_PROGRESS:
            out["waiting"] = 1

    if record.campaign_ref:
        out["attempts"] = 1
        bot_answered = record.bot_connected_at is not None
        no_bot_ended = not bot_answered and status == CallStatus.ENDED
        reason = record.end_reason
        dropped = no_bot_ended and reason == p.DROPPED_REASON
        if bot_answered or dropped:
            out["connects"] = 1
        if bot_answered:
            out["completed"] = 1
        if no_bot_ended:
            out[reason if reason in p.UNANSWERED_REASONS else "failed"] = 1
        if dropped:
            out["dropped"] = 1
        if not bot_answered and status == CallStatus.IN_PROGRESS:
            out["ringing"] = 1
        if record.handoff_count > 0:
            out["attempts_handed_off"] = 1
    return out


def _duration(out: dict[str, int], prefix: str, seconds: float, micros: int) -> None:
    out[f"{prefix}_n"] = 1
    out[f"{prefix}_us"] = micros
    out[f"{prefix}_h{bin_index(seconds):02d}"] = 1


class RollupDelta:
    """Contributions added (sign 1) and taken away (sign -1), summed per rollup row."""

    def __init__(self) -> None:
        self.calls: dict[tuple[Any, ...], dict[str, int]] = defaultdict(lambda: defaultdict(int))
        self.handoffs: dict[tuple[Any, ...], int] = defaultdict(int)

    def is_empty(self) -> bool:
        return not any(n for n in self.handoffs.values()) and not any(
            any(row.values()) for row in self.calls.values()
        )

    def add(
        self, record: RecordFields, handoffs: Sequence[HandoffFields], *, sign: int, service_level: int
    ) -> None:
        if record.started_at is None:
            return
        key = call_key(record)
        counts = call_counts(record, service_level)
        if counts:
            row = self.calls[key]
            for name, value in counts.items():
                row[name] += sign * value
        for h in handoffs:
            hkey = (*key, h.target_type, h.state, h.sip_status or 0, h.failure_reason, reason_of(h))
            self.handoffs[hkey] += sign

    def rows(self) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
        """The rows that change, sorted by key (upserts in one order: no deadlock between two)."""
        calls = [
            (*key, *(row.get(name, 0) for name in CALL_COLUMNS))
            for key, row in sorted(self.calls.items(), key=lambda item: _sortable(item[0]))
            if any(row.values())
        ]
        handoffs = [
            (*key, n) for key, n in sorted(self.handoffs.items(), key=lambda item: _sortable(item[0])) if n
        ]
        return calls, handoffs


def _sortable(key: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(str(part) for part in key)


def service_levels(queue_ids: Iterable[str | None]) -> dict[str, int]:
    """T of each queue, by id (as the fold's records name them); absent: SERVICE_LEVEL_DEFAULT."""
    ids = {str(pk) for pk in queue_ids if pk}
    if not ids:
        return {}
    return {
        str(pk): t for pk, t in Queue.objects.filter(pk__in=ids).values_list("pk", "service_level_seconds")
    }


def fold_into_rollups(center_id: Any, changes: Iterable[tuple[Assembly | None, Assembly | None]]) -> None:
    """Apply folds to the rollups: each (before, after) pair is one call's record and handoffs as
    they were (None: no record yet) and as they are now. Call inside the fold's transaction."""
    apply_delta(center_id, delta_of(changes))


def delta_of(changes: Iterable[tuple[Assembly | None, Assembly | None]]) -> RollupDelta:
    """What folds change in the rollups (see fold_into_rollups), not yet applied."""
    changes = [(before, after) for before, after in changes if before is not after]
    # T is read only for calls answered in a queue (the one figure it decides): most folds,
    # every one of a call that never reached an agent, then need no query for it.
    queue_ids = [
        a.record.queue_id
        for pair in changes
        for a in pair
        if a is not None
        and a.record.queue_answered_at is not None
        and a.record.queue_wait_seconds is not None
    ]
    levels = service_levels(queue_ids) if queue_ids else {}
    delta = RollupDelta()
    for before, after in changes:
        for assembly, sign in ((before, -1), (after, 1)):
            if assembly is not None:
                level = levels.get(str(assembly.record.queue_id), SERVICE_LEVEL_DEFAULT)
                delta.add(assembly.record, assembly.handoffs, sign=sign, service_level=level)
    return delta


# --- the upserts ------------------------------------------------------------------------------


def _upsert_names(model: type[Any], key: Sequence[str], columns: Sequence[str]) -> tuple[str, str, str, str]:
    """The upsert's table, inserted columns, conflict target and additive SET list."""
    quote = connection.ops.quote_name
    table = quote(model._meta.db_table)
    names = ", ".join(
        quote(model._meta.get_field(name).column) for name in ("contact_center", *key, *columns)
    )
    conflict = ", ".join(quote(model._meta.get_field(name).column) for name in ("contact_center", *key))
    updates = ", ".join(
        f"{quote(c)} = {table}.{quote(c)} + excluded.{quote(c)}"
        for c in (model._meta.get_field(name).column for name in columns)
    )
    return table, names, conflict, updates


def _upsert_sql(model: type[Any], key: Sequence[str], columns: Sequence[str], rows: int) -> str:
    table, names, conflict, updates = _upsert_names(model, key, columns)
    row = "(" + ", ".join(["%s"] * (1 + len(key) + len(columns))) + ")"
    return (
        f"INSERT INTO {table} ({names}) VALUES {', '.join([row] * rows)} "  # noqa: S608
        f"ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )


@functools.cache
def _upsert_sql_pg(model: type[Any], key: tuple[str, ...], columns: tuple[str, ...], where: str = "") -> str:
    """PostgreSQL's upsert of any number of rows: the center's id, then the rows as one JSON
    parameter (ingest_sql's derived table `v`, in the rows' order: the locks are taken in it),
    only `where` that holds. ~177 bound parameters a row measured most of a 500-event batch's
    time (the driver's adapting and its scan of the statement's placeholders). Not numbered."""
    table, names, conflict, updates = _upsert_names(model, key, columns)
    fields = [model._meta.get_field(name) for name in (*key, *columns)]
    quote = connection.ops.quote_name
    derived = ingest_sql.rows_from_json([(quote(f.column), ingest_sql.record_type(f)) for f in fields])
    center = model._meta.get_field("contact_center")
    values = ", ".join(f"v.{quote(f.column)}" for f in fields)
    return (
        f"INSERT INTO {table} ({names}) "  # noqa: S608
        f"SELECT %s::{ingest_sql.record_type(center)}, {values} FROM {derived} "
        f"{f'WHERE {where} ' if where else ''}ON CONFLICT ({conflict}) DO UPDATE SET {updates}"
    )


def upserts_pg(center_id: Any, delta: RollupDelta, *, where: str) -> list[tuple[str, list[Any]]]:
    """The delta's upserts as (SQL with %s, parameters) for another statement to run as its
    CTEs, only when `where` holds (reporting.ingest_sql.write_one: one event's write). PostgreSQL."""
    calls, handoffs = delta.rows()
    return [
        (_upsert_sql_pg(model, key, columns, where), [str(center_id), _json_rows(rows)])
        for model, key, columns, rows in (
            (CallRollup, CALL_KEY, CALL_COLUMNS, calls),
            (HandoffRollup, HANDOFF_KEY, ("n",), handoffs),
        )
        if rows
    ]


def _json_rows(rows: list[Any]) -> str:
    """The rows as ingest_sql's JSON rows: the bucket (first) as microseconds, ids as text."""
    return dumps_compact([[ingest_sql.micros(row[0]), str(row[1]), str(row[2]), *row[3:]] for row in rows])


def _upsert(
    model: type[Any], center_id: Any, key: Sequence[str], columns: Sequence[str], rows: list[Any]
) -> None:
    if not rows:
        return
    if ingest_sql.prefills_records():  # PostgreSQL
        with ingest_sql.prepared() as cursor:
            cursor.execute(
                numbered(_upsert_sql_pg(model, tuple(key), tuple(columns))),
                [str(center_id), _json_rows(rows)],
            )
        return
    # Only the key's values need the fields' adapting: the counts are plain ints.
    key_fields = [model._meta.get_field(name) for name in ("contact_center", *key)]
    width = len(key_fields) + len(columns)
    per_statement = max(1, 30_000 // width)  # under the backends' bound-parameter limits
    with connection.cursor() as cursor:
        for start in range(0, len(rows), per_statement):
            chunk = rows[start : start + per_statement]
            params: list[Any] = []
            for row in chunk:
                values = (center_id, *row)
                params += [
                    field.get_db_prep_value(value, connection)
                    for field, value in zip(key_fields, values, strict=False)
                ]
                params += values[len(key_fields) :]
            cursor.execute(_upsert_sql(model, key, columns, len(chunk)), params)


def apply_delta(center_id: Any, delta: RollupDelta) -> None:
    calls, handoffs = delta.rows()
    _upsert(CallRollup, center_id, CALL_KEY, CALL_COLUMNS, calls)
    _upsert(HandoffRollup, center_id, HANDOFF_KEY, ("n",), handoffs)


# --- rebuilt from the records -----------------------------------------------------------------


_BUCKET_UTC = ZoneInfo("UTC")


_TO_HANDOFF = Seconds("handoff_requested_at", "bot_connected_at")
_HAS_TIME_TO_HANDOFF = p.HANDED_OFF & Q(handoff_requested_at__isnull=False, bot_connected_at__isnull=False)
# The duration histograms and sums: (prefix, seconds, microseconds, the records they are taken over).
_DURATIONS = (
    ("bot_time", F("bot_seconds"), Micros("bot_seconds"), p.REACHED & Q(bot_seconds__isnull=False)),
    (
        "time_to_handoff",
        _TO_HANDOFF,
        Micros("handoff_requested_at", "bot_connected_at"),
        _HAS_TIME_TO_HANDOFF,
    ),
    (
        "wait",
        F("queue_wait_seconds"),
        Micros("queue_wait_seconds"),
        p.ANSWERED & Q(queue_wait_seconds__isnull=False),
    ),
    ("handle_time", F("human_seconds"), Micros("human_seconds"), p.ANSWERED & Q(human_seconds__isnull=False)),
)
_COUNTED = {
    "calls": p.REACHED,
    "contained": p.CONTAINED,
    "handed_off": p.HANDED_OFF,
    "abandoned_in_bot": p.ABANDONED_IN_BOT,
    "in_bot": p.IN_BOT,
    "offered": p.OFFERED,
    "answered": p.ANSWERED,
    "abandoned": p.ABANDONED,
    "waiting": p.WAITING,
    "answered_within_service_level": p.WITHIN_SERVICE_LEVEL,
    "attempts": p.ATTEMPT_RESULTS["dialled"],
    "connects": p.ATTEMPT_RESULTS["connected"],
    "completed": p.ATTEMPT_RESULTS["completed"],
    "busy": p.ATTEMPT_RESULTS["busy"],
    "no_answer": p.ATTEMPT_RESULTS["no_answer"],
    "machine": p.ATTEMPT_RESULTS["machine"],
    "failed": p.ATTEMPT_RESULTS["failed"],
    "ringing": p.ATTEMPT_RESULTS["ringing"],
    "dropped": p.ATTEMPT_RESULTS["dropped"],
    "attempts_handed_off": p.ATTEMPT_RESULTS["handed_off"],
}


def _per_record() -> dict[str, Any]:
    """Each record's contribution as columns: 1/0 per count, and per duration its bin (NULL when
    the record has none) and its microseconds."""
    columns: dict[str, Any] = {
        f"f_{name}": Case(When(q, then=Value(1)), default=Value(0), output_field=IntegerField())
        for name, q in _COUNTED.items()
    }
    for prefix, seconds, micros, condition in _DURATIONS:
        columns[f"b_{prefix}"] = Case(When(condition, then=bin_of(seconds)), output_field=IntegerField())
        columns[f"u_{prefix}"] = Case(When(condition, then=micros), output_field=BigIntegerField())
    return columns


def _summed_per_key() -> list[str]:
    """The outer query's sums of `_per_record`'s columns, in CALL_COLUMNS order."""
    quote = connection.ops.quote_name
    sums: dict[str, str] = {name: f"SUM({quote('f_' + name)})" for name in _COUNTED}
    for prefix, *_ in _DURATIONS:
        bin_column = quote(f"b_{prefix}")
        sums[f"{prefix}_n"] = f"COUNT({bin_column})"
        sums[f"{prefix}_us"] = f"COALESCE(SUM({quote('u_' + prefix)}), 0)"
        for index, name in enumerate(histogram_columns(prefix)):
            sums[name] = f"COUNT(*) FILTER (WHERE {bin_column} = {index})"
    assert set(sums) == set(CALL_COLUMNS)
    return [sums[name] for name in CALL_COLUMNS]


def _keyed(records: Any, prefix: str = "") -> Any:
    return records.annotate(
        r_bucket=Bucket(f"{prefix}started_at", "15m", _BUCKET_UTC),
        r_virtual_agent=Coalesce(f"{prefix}virtual_agent_id", Value(NO_ID)),
        r_queue=Coalesce(f"{prefix}queue_id", Value(NO_ID)),
        r_campaign_ref=F(f"{prefix}campaign_ref"),
        r_direction=F(f"{prefix}direction"),
    )


_R_KEY = ("r_bucket", "r_virtual_agent", "r_queue", "r_campaign_ref", "r_direction")


def _insert_select(model: type[Any], columns: Sequence[str], query: Any, connection: Any) -> None:
    quote = connection.ops.quote_name
    names = ", ".join(quote(model._meta.get_field(name).column) for name in columns)
    sql, params = query.query.get_compiler(connection.alias).as_sql()
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {quote(model._meta.db_table)} ({names}) {sql}", params)


def rebuild_rollups(*, center_id: Any, using: str = DEFAULT_DB_ALIAS) -> tuple[int, int]:
    """A center's rollups recomputed from its records and handoffs, in one transaction of the
    database `using`; returns the rows written."""
    with transaction.atomic(using=using):
        return _rebuild(center_id, connections[using])


def _rebuild(center_id: Any, connection: Any) -> tuple[int, int]:
    using = connection.alias
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # One big GROUP BY: JIT compiling its ~170 aggregates costs seconds, and with the
            # default work_mem the groups spill to disk.
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '256MB'")
    CallRollup.objects.using(using).filter(contact_center_id=center_id).delete()
    HandoffRollup.objects.using(using).filter(contact_center_id=center_id).delete()
    # Each record's columns computed once in a derived table (OFFSET 0: PostgreSQL would otherwise
    # pull it up and evaluate every CASE again in each of the ~170 sums), then summed per key.
    records = (
        _keyed(CallRecord.objects.using(using).filter(contact_center_id=center_id, started_at__isnull=False))
        .annotate(**_per_record())
        .values("contact_center_id", *_R_KEY, *_per_record())
    )
    inner, params = records.query.get_compiler(using).as_sql()
    quote = connection.ops.quote_name
    key = ", ".join(quote(name) for name in ("contact_center_id", *_R_KEY))
    names = ", ".join(
        quote(CallRollup._meta.get_field(name).column)
        for name in ("contact_center", *CALL_KEY, *CALL_COLUMNS)
    )
    fence = "LIMIT -1 OFFSET 0" if connection.vendor == "sqlite" else "OFFSET 0"  # SQLite: no OFFSET alone
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {quote(CallRollup._meta.db_table)} ({names}) "  # noqa: S608
            f"SELECT {key}, {', '.join(_summed_per_key())} FROM ({inner} {fence}) per_record GROUP BY {key} "
            # In time order, as ingestion writes them: a report's month of rows then sits on few
            # pages (hashed, a month of handoff rows was spread over 6,193 pages for 28,606 rows).
            f"ORDER BY {key}",
            params,
        )
    handoffs = (
        _keyed(
            Handoff.objects.using(using).filter(
                contact_center_id=center_id, call_record__started_at__isnull=False
            ),
            prefix="call_record__",
        )
        .annotate(
            r_sip_status=Coalesce("sip_status", Value(0)),
            r_reason=Coalesce(_context_value(), Value(""), output_field=TextField()),
        )
        .order_by()
        .values(
            "contact_center_id", *_R_KEY, "target_type", "state", "r_sip_status", "failure_reason", "r_reason"
        )
        .annotate(r_n=Count("pk"))
        .order_by("contact_center_id", *_R_KEY)  # in time order, as above
        .values_list(
            "contact_center_id",
            *_R_KEY,
            "target_type",
            "state",
            "r_sip_status",
            "failure_reason",
            "r_reason",
            "r_n",
        )
    )
    _insert_select(HandoffRollup, ("contact_center", *HANDOFF_KEY, "n"), handoffs, connection)
    return (
        CallRollup.objects.using(using).filter(contact_center_id=center_id).count(),
        HandoffRollup.objects.using(using).filter(contact_center_id=center_id).count(),
    )


def _context_value() -> Any:
    return KeyTextTransform(DEFAULT_CONTEXT_KEY, "context")
