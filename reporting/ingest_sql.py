"""The statements of reporting.ingest, hand-written for speed; table and column names come from the models.

PostgreSQL gets a whole batch as one JSON parameter (`json_to_recordset(%s::json) AS v(col type,
…)`): the statement text is the same whatever the batch size, so the driver does not re-scan
thousands of placeholders on every call (measured: that scan was a third of a 500-event batch),
and the rows are serialised by the json module's C encoder (voiso_byob.jsontext) rather than by
the driver's array dumper (Python, as slow again). Other databases (SQLite, tests and the
embedded default) get the same statements as multi-row VALUES, in chunks under their
bound-parameter limit.

Foreign keys folded from events' `refs` go through `_existing()`: the bot, queue, agent or number
an event named may have been deleted since, and a re-fold must write NULL, not a dangling id.

Every value is a bound parameter; only model names are formatted into the SQL.
"""

from __future__ import annotations

import functools
import json
import operator
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from json.encoder import encode_basestring
from typing import Any

from django.db import connection, models

from reporting.assemble import HANDOFF_FIELDS, RECORD_FIELDS, Assembly, RecordFields, StoredEvent
from reporting.events import EventIn
from reporting.models import CallEvent, CallRecord, Handoff
from voiso_byob.db import numbered, prepared_cursor
from voiso_byob.jsontext import dumps_compact
from voiso_byob.models import ApiKey

CHUNK = 500  # rows per VALUES statement (SQLite's bound-parameter limit)


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _col(model: type[models.Model], name: str) -> str:
    return _q(model._meta.get_field(name).column)


def prefills_records() -> bool:
    """Whether store_and_lock can write a new record whole (`prefill`): PostgreSQL's statement can."""
    return _is_pg()


@functools.cache
def _is_pg() -> bool:
    # Once per process: each `connection.<attribute>` goes through a thread-local lookup, and the
    # hot path asked several times per request (measured: 4 % of a single-event request).
    return connection.vendor == "postgresql"


@functools.cache
def _native_uuid() -> bool:
    return bool(connection.features.has_native_uuid_field)


_json = dumps_compact  # datetimes as ISO 8601 (voiso_byob.jsontext)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(value: datetime | None) -> int | None:
    """An aware datetime as whole microseconds since 1970 UTC (as JSON rows carry times)."""
    return None if value is None else (value - _EPOCH) // _MICROSECOND


def _with_micros(rows: list[list[Any]], columns: Sequence[int]) -> list[list[Any]]:
    """The rows, their datetimes in `columns` as microseconds (in place: the rows are ours)."""
    for row in rows:
        for index in columns:
            value = row[index]
            if value is not None:
                row[index] = (value - _EPOCH) // _MICROSECOND
    return rows


def prepared() -> Any:
    """A cursor whose statements PostgreSQL prepares (voiso_byob.db.prepared_cursor).

    Planning the store statement measured about a millisecond: as much as running it for one
    event, and a tenth of PostgreSQL's work on a batch. Prepared, it is planned for its first five
    runs on a connection, after which PostgreSQL keeps a generic plan (made without the parameters'
    values). The statements are written for that plan to be the one their values would get: every
    table is reached by its index, from the center's id and the batch's ids as an array (`= ANY`),
    and a JSON row set is estimated at the same size whatever it holds (tested with a generic plan
    on PostgreSQL). A generic plan is made again when ANALYZE updates a table's statistics.
    """
    # Statements go as PostgreSQL's own $n text (voiso_byob.db.numbered): PostgreSQL only.
    return prepared_cursor(numbered=True)


def pk_value(value: Any) -> Any:
    """A UUID key as the backend stores it (PostgreSQL: text the server casts; SQLite: 32 hex digits)."""
    if value is None:
        return None
    if _native_uuid():
        return str(value)
    return uuid.UUID(str(value)).hex


def _adapter(field: models.Field) -> Callable[[Any], Any]:
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, models.ForeignKey) and isinstance(field.target_field, models.UUIDField):
        return pk_value
    if isinstance(field, models.JSONField):
        return _json
    return lambda value: value


def record_type(field: models.Field) -> str:
    """The column's type in a json_to_recordset column list: varchar(64) → varchar."""
    return field.db_type(connection).split("(")[0]


def rows_from_json(columns: Sequence[tuple[str, str]]) -> str:
    """A derived table `v` of the rows of one JSON parameter (an array of arrays), in order.

    Timestamps come as whole microseconds since 1970 UTC (`micros`): Python's isoformat() and
    PostgreSQL's parsing of the text measured three times the cost, on every time of every row.
    """
    select = []
    for index, (name, kind) in enumerate(columns):
        if kind == "jsonb":
            select.append(f"(r->{index})::jsonb AS {name}")
        elif kind in ("varchar", "text"):
            select.append(f"r->>{index} AS {name}")
        elif kind in ("timestamptz", "timestamp with time zone"):
            select.append(f"(to_timestamp(0) + (r->>{index})::bigint * interval '1 microsecond') AS {name}")
        else:
            select.append(f"(r->>{index})::{kind} AS {name}")
    source = "jsonb_array_elements(%s::jsonb) WITH ORDINALITY AS x(r, n)"
    return f"(SELECT {', '.join(select)} FROM {source} ORDER BY n) AS v"  # noqa: S608


def _existing(field: models.Field, value: str) -> str:
    """SQL for a foreign key's value that is NULL when the row it names is gone (one PK probe)."""
    if not isinstance(field, models.ForeignKey):
        return value
    table, pk = _q(field.related_model._meta.db_table), _q(field.related_model._meta.pk.column)
    return f"(SELECT {pk} FROM {table} WHERE {pk} = {value})"  # noqa: S608


# --- events --------------------------------------------------------------------------------


def insert_events(
    center_id: Any, events: Sequence[EventIn], refs: dict[str, Any], received: datetime
) -> dict[str, int]:
    """Insert the events (in the given order) that are new; event id → pk of each inserted row."""
    table = _q(CallEvent._meta.db_table)
    names = ["contact_center", "event_id", "type", "call_id", "occurred_at", "received_at", "data", "refs"]
    columns = ", ".join(_col(CallEvent, n) for n in names)
    conflict = (
        f"ON CONFLICT ({_col(CallEvent, 'contact_center')}, {_col(CallEvent, 'event_id')}) DO NOTHING "
        f"RETURNING {_col(CallEvent, 'id')}, {_col(CallEvent, 'event_id')}"
    )
    center = pk_value(center_id)
    inserted: dict[str, int] = {}
    with connection.cursor() as cursor:
        adapt = connection.ops.adapt_datetimefield_value
        for start in range(0, len(events), CHUNK):
            chunk = events[start : start + CHUNK]
            params: list[Any] = []
            for e in chunk:
                params += [center, e.event_id, e.type, e.call_id, adapt(e.occurred_at), adapt(received)]
                params += [_json(e.data), _json(refs.get(e.event_id, {}))]
            rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {rows} {conflict}", params)  # noqa: S608
            inserted.update((event_id, pk) for pk, event_id in cursor.fetchall())
    return inserted


def load_events(center_id: Any, call_ids: list[str]) -> dict[str, list[StoredEvent]]:
    """Every stored event of these calls, by call id (in no particular order: the fold sorts)."""
    stored: dict[str, list[StoredEvent]] = {call_id: [] for call_id in call_ids}
    if not _is_pg():
        rows = CallEvent.objects.filter(contact_center_id=center_id, call_id__in=call_ids).values_list(
            "id", "event_id", "type", "call_id", "occurred_at", "data", "refs"
        )
        for pk, event_id, kind, call_id, occurred_at, data, refs in rows:
            stored[call_id].append(StoredEvent(event_id, kind, occurred_at, data, refs, pk))
        return stored
    names = ["id", "event_id", "type", "call_id", "occurred_at", "data", "refs"]
    with prepared() as cursor:
        columns = ", ".join(_col(CallEvent, n) for n in names)
        where = (
            f"{_col(CallEvent, 'contact_center')} = %s::uuid AND "
            # = ANY(ARRAY(…)), not IN (SELECT …): the planner then probes the (center, call_id)
            # index per call instead of hash-joining every event of the contact center.
            f"{_col(CallEvent, 'call_id')} = ANY(ARRAY(SELECT json_array_elements_text(%s::json)))"
        )
        sql = f"SELECT {columns} FROM {_q(CallEvent._meta.db_table)} WHERE {where}"  # noqa: S608
        cursor.execute(numbered(sql), [pk_value(center_id), _json(call_ids)])
        loads = json.loads
        for pk, event_id, kind, call_id, occurred_at, data, refs in cursor.fetchall():
            # Django has psycopg hand jsonb over as text (JSONField decodes it); so do we.
            data = loads(data) if isinstance(data, str) else data
            refs = loads(refs) if isinstance(refs, str) else refs
            stored[call_id].append(StoredEvent(event_id, kind, occurred_at, data, refs, pk))
    return stored


# --- records -------------------------------------------------------------------------------


def create_missing_records(center_id: Any, call_ids: list[str], now: datetime) -> None:
    """An empty record for each call that has none, inserted in call_id order (see reporting.ingest).

    The databases other than PostgreSQL (whose statements create records with their events)."""
    fields, _ = _new_record_parts()
    columns = ", ".join(_q(f.column) for f in fields)
    table = _q(CallRecord._meta.db_table)
    unique = f"{_col(CallRecord, 'contact_center')}, {_col(CallRecord, 'call_id')}"
    defaults = _record_defaults(center_id, fields, now)
    with connection.cursor() as cursor:
        call_index = [f.name for f in fields].index("call_id")
        row = "(" + ", ".join(["%s"] * len(fields)) + ")"
        step = CHUNK // 2
        for start in range(0, len(call_ids), step):
            chunk = call_ids[start : start + step]
            params: list[Any] = []
            for call_id in chunk:
                values = list(defaults)
                values.insert(call_index, call_id)
                params += values
            rows = ", ".join([row] * len(chunk))
            sql = f"INSERT INTO {table} ({columns}) VALUES {rows} ON CONFLICT ({unique}) DO NOTHING"  # noqa: S608
            cursor.execute(sql, params)


@dataclass(frozen=True, slots=True)
class LockedRecord:
    """A call's record as it was when this transaction locked it (a record it created: empty)."""

    id: int
    call_id: str
    active_virtual_agent_id: str | None
    handoff_count: int
    event_count: int
    provider_call_id: str
    started_at: datetime | None  # the rollups' bucket the record leaves when a fold moves its start
    # Created by this statement with the values `store_and_lock` was given for it (`prefill`).
    prefilled: bool = False


_LOCKED = [
    "id", "call_id", "active_virtual_agent", "handoff_count", "event_count", "provider_call_id", "started_at",
]  # fmt: skip


@dataclass(frozen=True, slots=True)
class Stored:
    """What store_and_lock did: the new events, the locked records, and (PostgreSQL) what it read."""

    inserted: dict[str, int]  # event id → pk of each event this call inserted
    locked: dict[str, LockedRecord]  # by call id
    # The other events of the locked calls that already had some, as the statement's snapshot
    # saw them (this call's new events not among them); None where nothing was read (SQLite).
    earlier: dict[str, list[StoredEvent]] | None = None
    key_revoked: bool = False  # the API key given to check was revoked: nothing was stored


def store_and_lock(
    center_id: Any,
    events: Sequence[EventIn],
    refs: dict[str, Any],
    now: datetime,
    *,
    key_id: Any = None,
    prefill: Mapping[str, RecordFields] | None = None,
    expect_new: bool = False,
) -> Stored:
    """Insert the new events (in the given order), then create and lock the records of their calls.

    Records are created and locked in call_id order: concurrent requests for the same calls queue
    on them instead of deadlocking. PostgreSQL does it all in one statement: the events' INSERT,
    then SELECT … FOR UPDATE of the records it sees (waiting for a holder to commit, and returning
    the row as it is then), then an INSERT of the others, whose ON CONFLICT DO UPDATE locks one a
    concurrent request created meanwhile; and, saving a round trip, it reads the calls' earlier
    events. (Requests can still take their locks in different orders and deadlock — two whose
    snapshots disagree on which records exist, two batches one of which starts a call the other
    carries an event of, a batch and a single event carrying the same event id: rare, and
    reporting.ingest retries either way.)
    The read of earlier events uses the statement's snapshot, taken before any lock wait:
    when another transaction committed events of a call meanwhile, the snapshot has fewer events
    than the locked record's `event_count`, and reporting.ingest reads that call again.

    `key_id`: an API key to confirm active in the same statement (a remembered key: see
    voiso_byob.api_key_cache.remembered_api_key); when it is revoked, nothing is stored.

    `prefill` (PostgreSQL): the fields a call's record gets if this statement creates it, by call
    id (reporting.ingest folds a call that starts in this request before storing it). Such a
    record is written once, whole, instead of created empty and then updated: one row version and
    one round of index entries and foreign-key checks less. Its LockedRecord says `prefilled`,
    with the empty record's values (what the call had before this request: nothing). A call
    without prefill, or whose record already exists, is created empty / locked as it is.

    `expect_new` (PostgreSQL): insert the events plainly, without ON CONFLICT DO NOTHING, which
    probes the unique index once more per event and logs a confirmation record for each (measured:
    a tenth of PostgreSQL's work on a batch). An event id stored before then fails the statement
    with a unique violation (`is_duplicate_event`); the caller rolls back and calls again without.
    """
    if not _is_pg():
        if key_id is not None and not ApiKey.objects.filter(pk=key_id, revoked_at__isnull=True).exists():
            return Stored({}, {}, key_revoked=True)
        inserted = insert_events(center_id, events, refs, now)
        if not inserted:
            return Stored(inserted, {})
        call_ids = sorted({e.call_id for e in events if e.event_id in inserted})
        create_missing_records(center_id, call_ids, now)
        rows = (
            CallRecord.objects.select_for_update()
            .filter(contact_center_id=center_id, call_id__in=call_ids)
            .order_by("call_id")
            .values_list(*[CallRecord._meta.get_field(n).attname for n in _LOCKED])
        )
        return Stored(inserted, {row[1]: LockedRecord(*row[:2], _str(row[2]), *row[3:]) for row in rows})
    key = pk_value(key_id)
    fields, _ = _new_record_parts()
    center = pk_value(center_id)
    defaults = _record_defaults(center_id, fields, now)
    sql = numbered(_store_sql_pg(skip_duplicates=not expect_new))
    with prepared() as cursor:
        cursor.execute(
            sql,
            [
                center,
                now,
                _events_json(events, refs),
                key,
                key,
                center,
                _json(list(prefill or {})),
                *defaults,
                _prefill_rows(prefill or {}),
                center,
                key,
                key,
            ],
        )
        return _stored(cursor.fetchone(), prefill or {})


def _stored(row: tuple[Any, ...], prefill: Mapping[str, RecordFields]) -> Stored:
    """What the store statements return: inserted events, locked records, earlier events, key ok."""
    inserted_json, locked_json, earlier_json, key_ok = row
    if not key_ok:
        return Stored({}, {}, key_revoked=True)
    inserted_rows = _loaded(inserted_json) or []
    locked_rows = _loaded(locked_json) or []
    earlier: dict[str, list[StoredEvent]] = {}
    for event in _stored_events(earlier_json):
        earlier.setdefault(event[-1], []).append(event[0])
    locked: dict[str, LockedRecord] = {}
    for pk, call_id, active, handoffs, event_count, provider_call_id, started_at, state in locked_rows:
        if state == "existing":
            locked[call_id] = LockedRecord(
                pk, call_id, active, handoffs, event_count, provider_call_id, _moment(started_at)
            )
        else:  # created by this statement: before it, the call had nothing
            locked[call_id] = LockedRecord(pk, call_id, None, 0, 0, "", None, prefilled=call_id in prefill)
    return Stored({event_id: pk for pk, event_id in inserted_rows}, locked, earlier)


# --- one event, without a transaction of its own (PostgreSQL) ------------------------------------


@dataclass(frozen=True, slots=True)
class CallSeen:
    """What read_call saw of an event's call, all in one snapshot."""

    record: LockedRecord | None  # as it was (not locked); None: the call has no record
    events: list[StoredEvent]  # every stored event of the call
    duplicate: bool  # the event's id is stored already
    key_revoked: bool = False


def read_call(center_id: Any, event: EventIn, key_id: Any = None) -> CallSeen:
    """The call's record and stored events, and whether this event is stored, in one statement.

    The first of the two statements that store one event (reporting.ingest.ingest_one): the
    record's `event_count` read here is what `write_one` expects to find, in one snapshot with
    the events that made it.
    """
    center, key = pk_value(center_id), pk_value(key_id)
    with prepared() as cursor:
        cursor.execute(
            _read_call_sql_pg(),
            [center, event.call_id, center, event.call_id, center, event.event_id, key, key],
        )
        record_json, events_json, duplicate, key_ok = cursor.fetchone()
    if not key_ok:
        return CallSeen(None, [], False, key_revoked=True)
    row = _loaded(record_json)
    record = None
    if row is not None:
        pk, call_id, active, handoffs, event_count, provider_call_id, started_at = row
        record = LockedRecord(
            pk, call_id, active, handoffs, event_count, provider_call_id, _moment(started_at)
        )
    return CallSeen(record, [e for e, _ in _stored_events(events_json)], bool(duplicate))


@functools.cache
def _read_call_sql_pg() -> str:
    records, events = _q(CallRecord._meta.db_table), _q(CallEvent._meta.db_table)
    center, call_id = _col(CallEvent, "contact_center"), _col(CallEvent, "call_id")
    return numbered(
        f"SELECT (SELECT json_build_array({_locked_columns()}) FROM {records} "  # noqa: S608
        f"WHERE {_col(CallRecord, 'contact_center')} = %s::uuid AND {_col(CallRecord, 'call_id')} = %s), "
        f"(SELECT json_agg(json_build_array({_earlier_columns()})) FROM {events} "
        f"WHERE {center} = %s::uuid AND {call_id} = %s), "
        f"EXISTS (SELECT 1 FROM {events} WHERE {center} = %s::uuid AND {_col(CallEvent, 'event_id')} = %s), "
        f"{_key_ok_pg()}"
    )


def write_one(
    center_id: Any,
    event: EventIn,
    refs: dict[str, Any],
    now: datetime,
    *,
    seen: LockedRecord | None,
    assembly: Assembly,
    handoffs: bool,
    key_id: Any = None,
    also: Sequence[tuple[str, list[Any]]] = (),
) -> tuple[int, int] | None:
    """Store one event with its call's new record and (`handoffs`) handoffs, in one statement.

    The second statement of reporting.ingest.ingest_one: the record is written only if it is
    still as `read_call` saw it (`seen`: the same `event_count`, compared under the row's lock;
    or, when there was none, still none: the insert skips a row another request created), and
    the event only with it. A single statement needs no transaction around it (BEGIN and COMMIT
    measured a tenth of a single event's CPU): it is atomic by itself, and one that finds the
    call moved on, the key revoked or the event stored meanwhile (a unique violation, raised)
    writes nothing. (event pk, record pk), or None when the call moved on or the key is revoked.
    `also`: more statements (SQL with %s, parameters) run as CTEs of this one (the rollups'
    stale marks, reporting.rollups.stale_marks_pg), each gated on the write by its own WHERE.
    """
    center, key = pk_value(center_id), pk_value(key_id)
    handoff_rows = _upsert_handoffs_pg(center_id, [(seen.id if seen else 0, assembly)])[1] if handoffs else []
    with_handoffs = bool(handoff_rows)
    events_params = [center, now, _events_json([event], refs)]
    if seen is not None:
        _, update_params = _update_records_pg([(seen.id, assembly)], updated=now)
        params = [*update_params, seen.event_count, key, key, *events_params, *handoff_rows]
        sql = _write_one_sql_pg(existing=True, with_handoffs=with_handoffs, also=tuple(a for a, _ in also))
    else:
        fields, _ = _new_record_parts()
        defaults = _unfolded_defaults(center_id, fields, now)
        prefill = _prefill_rows({event.call_id: assembly.record})
        params = [*defaults, prefill, key, key, *events_params, *handoff_rows]
        sql = _write_one_sql_pg(existing=False, with_handoffs=with_handoffs, also=tuple(a for a, _ in also))
    params += [value for _, values in also for value in values]
    with prepared() as cursor:
        cursor.execute(sql, params)
        event_pk, record_pk = cursor.fetchone()
    return None if event_pk is None else (event_pk, record_pk)


def _unfolded_defaults(center_id: Any, fields: list[models.Field], now: datetime) -> list[Any]:
    """A new record's values for the columns the fold does not give (`fields` order, call_id aside)."""
    folded = set(RECORD_FIELDS)
    values = _record_defaults(center_id, fields, now)
    kept = [f for f in fields if f.name != "call_id"]
    return [value for f, value in zip(kept, values, strict=True) if f.attname not in folded]


WROTE = "EXISTS (SELECT 1 FROM rec)"  # in write_one's statement: the record was written


@functools.cache
def _write_one_sql_pg(*, existing: bool, with_handoffs: bool, also: tuple[str, ...] = ()) -> str:
    """write_one's statement: the record's conditional write (`rec`), then the event and handoffs
    only when it wrote (parameters: the record's, key, key, center, now, event, [center, handoffs],
    then `also`'s)."""
    records = _q(CallRecord._meta.db_table)
    if existing:
        # write_fold's UPDATE (its WHERE last), for one record and only while its event count is
        # still the one seen.
        fields, table, _ = _record_update_parts()
        pk = f"{table}.{_q(fields[0].column)}"
        record = (
            f"rec AS ({_update_sql_pg()} AND {table}.{_col(CallRecord, 'event_count')} = %s::int "
            f"AND {_key_ok_pg()} RETURNING {pk} AS id)"
        )
    else:
        fields, prefill = _new_record_parts()
        folded = set(RECORD_FIELDS)
        select = ", ".join(
            "v.k"
            if f.name == "call_id"
            else (_existing(f, f"v.{_q(f.attname)}") if f.attname in folded else f"%s::{record_type(f)}")
            for f in fields
        )
        record = (
            f"rec AS (INSERT INTO {records} ({', '.join(_q(f.column) for f in fields)}) "  # noqa: S608
            f"SELECT {select} FROM {prefill} WHERE {_key_ok_pg()} "
            f"ON CONFLICT ({_col(CallRecord, 'contact_center')}, {_col(CallRecord, 'call_id')}) DO NOTHING "
            f"RETURNING {_q(CallRecord._meta.pk.column)} AS id)"
        )
    written = WROTE
    parts = [record, _events_cte_pg(skip_duplicates=False, where=written)]
    if with_handoffs:
        if existing:
            parts.append(f"h AS ({_handoff_sql_pg(where=written)})")
        else:
            parts.append(f"h AS ({_handoff_sql_pg(record='rec.id', also_from='rec')})")
    parts += [f"a{index} AS ({statement})" for index, statement in enumerate(also)]
    return numbered(f"WITH {', '.join(parts)} SELECT (SELECT id FROM ev), (SELECT id FROM rec)")  # noqa: S608


def _moment(value: str | None) -> datetime | None:
    """A timestamptz as json_build_array writes it (ISO 8601 with its offset)."""
    return None if value is None else datetime.fromisoformat(value)


def _stored_events(rows_json: Any) -> list[tuple[StoredEvent, str]]:
    """Events as the statements return them (`_earlier_columns`): each with its call id."""
    parse = datetime.fromisoformat
    return [
        (StoredEvent(event_id, kind, parse(occurred_at), data, event_refs, pk), call_id)
        for pk, event_id, kind, call_id, occurred_at, data, event_refs in _loaded(rows_json) or []
    ]


def _events_json(events: Sequence[EventIn], refs: dict[str, Any]) -> str:
    """The events as one JSON parameter: [id, type, call_id, occurred_at (µs), data, refs] each.

    Written as text around each event's `data_json` (validation encoded `data` once already;
    encoding it again was a tenth of a batch's CPU). Strings go through the json module's own
    escaping, so the result is what json.dumps would give, less whitespace.
    """
    quote = encode_basestring
    rows = []
    encoded: dict[int, str] = {}  # events often share one refs object (reporting.ingest.resolve_refs)
    for e in events:
        data = e.data_json if e.data_json is not None else _json(e.data)
        event_refs = refs.get(e.event_id)
        refs_text = "{}"
        if event_refs:
            refs_text = encoded.get(id(event_refs)) or encoded.setdefault(id(event_refs), _json(event_refs))
        rows.append(
            f"[{quote(e.event_id)},{quote(e.type)},{quote(e.call_id)},"
            f"{micros(e.occurred_at)},{data},{refs_text}]"
        )
    return "[" + ",".join(rows) + "]"


def _prefill_rows(prefill: Mapping[str, RecordFields] | None) -> str:
    """store_and_lock's prefill as one JSON parameter: [call_id, *RECORD_FIELDS] per call."""
    values_of = operator.attrgetter(*RECORD_FIELDS)
    rows = [[call_id, *values_of(record)] for call_id, record in (prefill or {}).items()]
    return _json(_with_micros(rows, _record_time_columns(1)))


@functools.cache
def _record_time_columns(offset: int) -> tuple[int, ...]:
    """Where RECORD_FIELDS' datetimes are in a row that starts with `offset` other values."""
    fields = [CallRecord._meta.get_field(n) for n in RECORD_FIELDS]
    return tuple(i + offset for i, f in enumerate(fields) if isinstance(f, models.DateTimeField))


def is_duplicate_event(exc: BaseException) -> bool:
    """Whether a database error is an events insert meeting an event id stored before (see
    store_and_lock's `expect_new`)."""
    cause = exc.__cause__
    diag = getattr(cause, "diag", None)
    return getattr(cause, "sqlstate", None) == "23505" and (
        getattr(diag, "constraint_name", None) == _EVENT_ID_CONSTRAINT
    )


def is_vanished_reference(exc: BaseException) -> bool:
    """Whether a database error is a foreign key naming a row deleted meanwhile: a bot, queue or
    number that `_existing()` still saw in the statement's snapshot was deleted by a transaction
    that committed before the check at commit. Going round again (a new snapshot) writes NULL."""
    return getattr(exc.__cause__, "sqlstate", None) == "23503"  # foreign_key_violation


_EVENT_ID_CONSTRAINT = next(
    c.name
    for c in CallEvent._meta.constraints
    if isinstance(c, models.UniqueConstraint) and tuple(c.fields) == ("contact_center", "event_id")
)


def _locked_columns() -> str:
    """A locked record's columns as the store statements return them (LockedRecord, in order)."""
    return ", ".join(_col(CallRecord, n) for n in _LOCKED)


def _earlier_columns() -> str:
    """A stored event's columns as the store statements return them (StoredEvent, with its pk)."""
    return ", ".join(
        _col(CallEvent, n) for n in ["id", "event_id", "type", "call_id", "occurred_at", "data", "refs"]
    )


def _key_ok_pg() -> str:
    return (
        f"(%s::uuid IS NULL OR EXISTS (SELECT 1 FROM {_q(ApiKey._meta.db_table)} "  # noqa: S608
        f"WHERE {_col(ApiKey, 'id')} = %s::uuid AND {_col(ApiKey, 'revoked_at')} IS NULL))"
    )


def _events_cte_pg(*, skip_duplicates: bool, where: str = "") -> str:
    """`ev`: the events' INSERT (parameters: center, now, events as JSON, then the key, key of the
    key check, or none when `where` is given as the condition instead)."""
    event_columns = ", ".join(
        _col(CallEvent, n)
        for n in [
            "contact_center",
            "event_id",
            "type",
            "call_id",
            "occurred_at",
            "received_at",
            "data",
            "refs",
        ]
    )
    rows = rows_from_json(
        [("e", "text"), ("t", "text"), ("c", "text"), ("o", "timestamptz"), ("d", "jsonb"), ("f", "jsonb")]
    )
    event_key = f"{_col(CallEvent, 'contact_center')}, {_col(CallEvent, 'event_id')}"
    skip = f"ON CONFLICT ({event_key}) DO NOTHING " if skip_duplicates else ""
    return (
        f"ev AS (INSERT INTO {_q(CallEvent._meta.db_table)} ({event_columns}) "  # noqa: S608
        f"SELECT %s::uuid, e, t, c, o, %s::timestamptz, d, f FROM {rows} WHERE {where or _key_ok_pg()} "
        f"{skip}RETURNING {_col(CallEvent, 'id')} AS id, {_col(CallEvent, 'event_id')} AS event_id, "
        f"{_col(CallEvent, 'call_id')} AS c)"
    )


@functools.cache
def _new_record_parts() -> tuple[list[models.Field], str]:
    """A new record's columns (all but its pk), and the derived table `v` of `_prefill_rows`."""
    fields = [f for f in CallRecord._meta.concrete_fields if not f.primary_key]
    prefill = rows_from_json(
        [("k", "text"), *[(_q(n), record_type(CallRecord._meta.get_field(n))) for n in RECORD_FIELDS]]
    )
    return fields, prefill


@functools.cache
def _store_sql_pg(*, skip_duplicates: bool) -> str:
    """store_and_lock's statement on PostgreSQL (built once per variant: it depends on the models only)."""
    event_table, record_table = _q(CallEvent._meta.db_table), _q(CallRecord._meta.db_table)
    fields, prefill = _new_record_parts()
    folded = set(RECORD_FIELDS)
    # Typed: the statement is prepared, and the server types its parameters from the SQL alone.
    # A prefilled call takes its folded values (a foreign key through _existing: the bot or queue
    # may be gone); any other call an empty record.
    select = ", ".join(
        "calls.c"
        if f.name == "call_id"
        else (
            f"CASE WHEN v.k IS NULL THEN %s::{record_type(f)} ELSE {_existing(f, f'v.{_q(f.attname)}')} END"
            if f.attname in folded
            else f"%s::{record_type(f)}"
        )
        for f in fields
    )
    updated, call_id, center = (
        _col(CallRecord, "updated"),
        _col(CallRecord, "call_id"),
        _col(CallRecord, "contact_center"),
    )
    returning, earlier_columns = _locked_columns(), _earlier_columns()
    # `old`: the records the statement's snapshot sees of the calls not starting in this request
    # (the prefill's call ids are a parameter of their own), locked FOR UPDATE in call_id order (a
    # lock only: INSERT … ON CONFLICT DO UPDATE wrote a whole new version of each, with its index
    # entries, just to lock it). A row another transaction updated meanwhile is returned as it is
    # after that commit. `new` runs after `old` is complete (its NOT IN reads all of `old`).
    # `new`: the others, inserted (a starting call's record seldom exists: no lookup first); one
    # that exists conflicts, and DO UPDATE locks it (waiting for a concurrent transaction that
    # inserted it to commit) — the rare case. `xmax = 0` in
    # RETURNING: the row was inserted by this statement; a row the ON CONFLICT branch locked (and
    # rewrote unchanged) carries this transaction's id there.
    state = f"CASE WHEN {record_table}.xmax = 0 THEN 'created' ELSE 'existing' END"
    return (
        f"WITH {_events_cte_pg(skip_duplicates=skip_duplicates)}, "  # noqa: S608
        f"old AS (SELECT {returning}, 'existing' AS state FROM {record_table} WHERE {center} = %s::uuid "
        f"AND {call_id} = ANY(ARRAY(SELECT DISTINCT c FROM ev WHERE c NOT IN "
        f"(SELECT json_array_elements_text(%s::json)))) ORDER BY {call_id} FOR UPDATE), "
        f"new AS (INSERT INTO {record_table} ({', '.join(_q(f.column) for f in fields)}) "
        f"SELECT {select} FROM (SELECT DISTINCT c FROM ev WHERE c NOT IN (SELECT {call_id} FROM old)) "
        f"AS calls LEFT JOIN {prefill} ON v.k = calls.c ORDER BY calls.c "
        f"ON CONFLICT ({center}, {call_id}) "
        f"DO UPDATE SET {updated} = {record_table}.{updated} RETURNING {returning}, {state} AS state), "
        "rec AS (SELECT * FROM old UNION ALL SELECT * FROM new) "
        "SELECT (SELECT json_agg(json_build_array(id, event_id)) FROM ev), "
        f"(SELECT json_agg(json_build_array({returning}, state)) FROM rec), "
        f"(SELECT json_agg(json_build_array({earlier_columns})) FROM {event_table} "
        f"WHERE {_col(CallEvent, 'contact_center')} = %s::uuid AND {_col(CallEvent, 'call_id')} = ANY("
        f"ARRAY(SELECT {call_id} FROM rec "
        f"WHERE state = 'existing' AND {_col(CallRecord, 'event_count')} > 0))), "
        f"{_key_ok_pg()}"
    )


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _loaded(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _record_defaults(center_id: Any, fields: list[models.Field], now: datetime) -> list[Any]:
    """Every column of a new, empty record but call_id, in `fields` order."""
    names, constants = _record_default_constants(tuple(fields))
    updated = now if _is_pg() else connection.ops.adapt_datetimefield_value(now)  # PostgreSQL takes it as is
    values = {"contact_center": pk_value(center_id), "updated": updated}
    return [values.get(name, constant) for name, constant in zip(names, constants, strict=True)]


@functools.cache
def _record_default_constants(fields: tuple[models.Field, ...]) -> tuple[list[str], list[Any]]:
    """The model's defaults, prepared once (they do not change; a request spent 0.1 ms on them)."""
    kept = [f for f in fields if f.name != "call_id"]
    constants = [
        None if f.name in ("contact_center", "updated") else f.get_db_prep_save(f.get_default(), connection)
        for f in kept
    ]
    return [f.name for f in kept], constants


def write_fold(
    center_id: Any,
    records: list[tuple[int, Assembly]],
    handoffs: list[tuple[int, Assembly]],
    *,
    updated: datetime,
) -> None:
    """The assembled records, and the handoffs of `handoffs` (one statement on PostgreSQL)."""
    if not _is_pg():
        if records:
            update_records(records, updated=updated)
        upsert_handoffs(center_id, handoffs)
        return
    handoff_sql, handoff_params = _upsert_handoffs_pg(center_id, handoffs)
    if not records:
        if handoff_sql:
            with prepared() as cursor:
                cursor.execute(numbered(handoff_sql), handoff_params)
        return
    update_sql, update_params = _update_records_pg(records, updated=updated)
    with prepared() as cursor:
        if handoff_sql:
            cursor.execute(_update_and_upsert_sql_pg(), [*update_params, *handoff_params])
        else:
            cursor.execute(numbered(update_sql), update_params)


@functools.cache
def _update_and_upsert_sql_pg() -> str:
    """write_fold's one statement for both (numbered: see voiso_byob.db.numbered)."""
    return numbered(f"WITH u AS ({_update_sql_pg()} RETURNING 1) {_handoff_sql_pg()}")


@functools.cache
def _record_update_parts() -> tuple[list[models.Field], str, str]:
    fields = [
        CallRecord._meta.pk,
        *[CallRecord._meta.get_field(n) for n in RECORD_FIELDS],
        CallRecord._meta.get_field("updated"),
    ]
    table = _q(CallRecord._meta.db_table)
    sets = ", ".join(f"{_q(f.column)} = {_existing(f, f'v.{_q(f.column)}')}" for f in fields[1:])
    return fields, table, sets


def _update_records_pg(rows: list[tuple[int, Assembly]], *, updated: datetime) -> tuple[str, list[Any]]:
    values_of = operator.attrgetter(*RECORD_FIELDS)
    values = [[record_pk, *values_of(assembly.record), micros(updated)] for record_pk, assembly in rows]
    return _update_sql_pg(), [
        _json(_with_micros(values, _record_time_columns(1))),
        _json([pk for pk, _ in rows]),
    ]


@functools.cache
def _update_sql_pg() -> str:
    fields, table, sets = _record_update_parts()
    derived = rows_from_json([(_q(f.column if i else "id"), record_type(f)) for i, f in enumerate(fields)])
    pk = f"{table}.{_q(fields[0].column)}"
    # The records named again as an array: the planner cannot see how many rows the JSON holds
    # (it guesses 100) and would hash-join against a scan of the whole table; `= ANY` probes
    # the primary key for exactly these.
    where = f"{pk} = v.{_q('id')} AND {pk} = ANY(ARRAY(SELECT json_array_elements_text(%s::json)::bigint))"
    return f"UPDATE {table} SET {sets} FROM {derived} WHERE {where}"  # noqa: S608


def update_records(rows: list[tuple[int, Assembly]], *, updated: datetime) -> None:
    """Every assembled record in UPDATE … FROM a VALUES CTE (other databases: PostgreSQL's is in
    write_fold)."""
    fields, table, sets = _record_update_parts()
    names = ["id", *[f.column for f in fields[1:]]]
    values_of = operator.attrgetter(*RECORD_FIELDS)
    values = [[record_pk, *values_of(assembly.record), updated] for record_pk, assembly in rows]
    where = f"{table}.{_q(fields[0].column)} = v.{_q('id')}"
    adapters = [_adapter(f) for f in fields]
    row = "(" + ", ".join(["%s"] * len(names)) + ")"
    step = CHUNK // 4
    with connection.cursor() as cursor:
        for start in range(0, len(values), step):
            chunk = values[start : start + step]
            sql = (
                f"WITH v ({', '.join(_q(n) for n in names)}) AS (VALUES {', '.join([row] * len(chunk))}) "  # noqa: S608
                f"UPDATE {table} SET {sets} FROM v WHERE {where}"
            )
            params = [
                adapt(value)
                for row_values in chunk
                for adapt, value in zip(adapters, row_values, strict=True)
            ]
            cursor.execute(sql, params)


@functools.cache
def _handoff_parts() -> tuple[list[str], list[models.Field], str, str, str]:
    attrs = [a for a in HANDOFF_FIELDS if a != "sequence"]
    fields = [Handoff._meta.get_field(a) for a in attrs]
    table = _q(Handoff._meta.db_table)
    record_col, sequence_col = _col(Handoff, "call_record"), _col(Handoff, "sequence")
    columns = ", ".join(
        [_col(Handoff, "contact_center"), record_col, sequence_col, *[_q(f.column) for f in fields]]
    )
    upsert = f"ON CONFLICT ({record_col}, {sequence_col}) DO UPDATE SET " + ", ".join(
        f"{_q(f.column)} = excluded.{_q(f.column)}" for f in fields
    )
    return attrs, fields, table, columns, upsert


def _upsert_handoffs_pg(center_id: Any, rows: list[tuple[int, Assembly]]) -> tuple[str, list[Any]]:
    attrs, *_ = _handoff_parts()
    values_of = operator.attrgetter(*attrs)
    values = [
        [record_pk, h.sequence, *values_of(h)] for record_pk, assembly in rows for h in assembly.handoffs
    ]
    if not values:
        return "", []
    return _handoff_sql_pg(), [pk_value(center_id), _json(_with_micros(values, _handoff_time_columns()))]


@functools.cache
def _handoff_time_columns() -> tuple[int, ...]:
    _, fields, *_ = _handoff_parts()
    return tuple(i + 2 for i, f in enumerate(fields) if isinstance(f, models.DateTimeField))


@functools.cache
def _handoff_sql_pg(*, record: str = "r", also_from: str = "", where: str = "") -> str:
    """The handoffs' upsert (parameters: center, rows as JSON); `record`: where each row's record id
    comes from (the rows' own, or a CTE's: `also_from`), `where`: a condition on writing them."""
    _, fields, table, columns, upsert = _handoff_parts()
    kinds = [("r", "bigint"), ("s", "smallint"), *[(f"c{i}", record_type(f)) for i, f in enumerate(fields)]]
    select = ", ".join(["%s::uuid", record, "s", *[_existing(f, f"c{i}") for i, f in enumerate(fields)]])
    source = rows_from_json(kinds) + (f", {also_from}" if also_from else "")
    condition = f"WHERE {where} " if where else ""
    return f"INSERT INTO {table} ({columns}) SELECT {select} FROM {source} {condition}{upsert}"  # noqa: S608


def upsert_handoffs(center_id: Any, rows: list[tuple[int, Assembly]]) -> None:
    """Every handoff of these records by (record, sequence): inserted, or updated in place (other
    databases: PostgreSQL's is in write_fold)."""
    attrs, fields, table, columns, upsert = _handoff_parts()
    values_of = operator.attrgetter(*attrs)
    values = [
        [record_pk, h.sequence, *values_of(h)] for record_pk, assembly in rows for h in assembly.handoffs
    ]
    if not values:
        return
    center = pk_value(center_id)
    adapters = [_adapter(f) for f in fields]
    row = "(%s, %s, %s, " + ", ".join(_existing(f, "%s") for f in fields) + ")"
    step = CHUNK // 4
    with connection.cursor() as cursor:
        for start in range(0, len(values), step):
            chunk = values[start : start + step]
            sql = f"INSERT INTO {table} ({columns}) VALUES {', '.join([row] * len(chunk))} {upsert}"  # noqa: S608
            params: list[Any] = []
            for record_pk, sequence, *rest in chunk:
                params += [
                    center,
                    record_pk,
                    sequence,
                    *[adapt(v) for adapt, v in zip(adapters, rest, strict=True)],
                ]
            cursor.execute(sql, params)
