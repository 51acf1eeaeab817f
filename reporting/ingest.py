"""Storing call events and keeping call records and handoffs exact: `ingest_events()`.

One transaction per request:
1. insert the new events, sorted by event id, with INSERT … ON CONFLICT DO NOTHING RETURNING:
   the unique (contact center, event id) constraint decides what is new, even when two
   requests race the same ids (the second waits for the first and then skips them);
2. for the calls that got new events, create missing records (insert, ignoring conflicts) and
   lock them all with SELECT … FOR UPDATE ORDER BY call_id: concurrent requests for the same
   calls take the locks in one order, so they queue instead of deadlocking;
3. only then read every stored event of those calls — a new statement, so in READ COMMITTED it
   sees the events of any transaction that held the lock before us (reading them in the same
   statement as the lock would use the older snapshot and lose that transaction's events);
4. fold each call (reporting.assemble, pure) and write the records in one UPDATE and the
   handoffs in one upsert; link waiting provider reports;
5. after commit: the live feed (reporting.feed → reporting.live.publish) and the virtual agents'
   active-call counters that routing reads (`va-active:<id>` in the cache).
Deadlocks and serialization failures retry the whole transaction a few times.

The statements are hand-written (table and column names from the models) and portable:
PostgreSQL and SQLite ≥ 3.35 both take ON CONFLICT … RETURNING and UPDATE … FROM a VALUES CTE.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import OperationalError, connection, models, transaction
from django.utils import timezone

from reporting import live
from reporting.assemble import (
    HANDOFF_FIELDS,
    RECORD_FIELDS,
    Assembly,
    FoldSettings,
    Number,
    StoredEvent,
    Target,
    assemble,
    refs_for,
)
from reporting.events import AgentInfo, EventIn, agent_ref_key, find_virtual_agents
from reporting.feed import feed_messages
from reporting.models import CallEvent, CallRecord, Handoff
from reporting.provider_reports import attach_pending_reports
from routing.models import PhoneNumber
from routing.refer import resolve_refer
from voiso_byob.errors import DomainError
from voiso_byob.models import ContactCenter, Extension, Membership
from voiso_byob.phone import normalise_e164
from voiso_byob.sip import ReferToError

logger = logging.getLogger(__name__)

ATTEMPTS = 5
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected
ROWS_PER_STATEMENT = 500  # keeps SQLite under its bound-parameter limit
# The statements below are built from the models' table and column names (never from input);
# every value is a bound parameter.


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int


def ingest_events(
    *, center: ContactCenter, events: Sequence[EventIn], agents: Mapping[str, AgentInfo] | None = None
) -> IngestResult:
    """Store `events` (already validated) and re-assemble the calls they belong to.

    `agents`: the virtual agents the validation looked up, by `agent_ref_key`, to save a query.
    """
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _ingest(center, events, dict(agents or {}))
        except OperationalError as exc:
            if attempt == ATTEMPTS or not _is_retryable(exc):
                raise
            logger.info("ingest: %s, retrying (attempt %d)", type(exc.__cause__ or exc).__name__, attempt)
            time.sleep(random.uniform(0.005, 0.02) * attempt)  # noqa: S311 - jitter, not security
    raise AssertionError("unreachable")


def _is_retryable(exc: OperationalError) -> bool:
    if getattr(exc.__cause__, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    return "database is locked" in str(exc)  # SQLite's busy timeout ran out


def _ingest(center: ContactCenter, events: Sequence[EventIn], agents: dict[str, AgentInfo]) -> IngestResult:
    unique: dict[str, EventIn] = {}
    for event in events:
        unique.setdefault(event.event_id, event)  # a repeated id inside one batch: the first wins
    refs = resolve_refs(center, unique.values(), agents)
    inserted = _insert_events(center, sorted(unique.values(), key=lambda e: e.event_id), refs)
    result = IngestResult(accepted=len(inserted), duplicates=len(events) - len(inserted))
    if not inserted:
        return result  # nothing new: a retried request changes nothing

    call_ids = sorted({unique[event_id].call_id for event_id in inserted})
    _create_missing_records(center, call_ids)
    locked = {
        row.call_id: row
        for row in CallRecord.objects.select_for_update()
        .filter(contact_center=center, call_id__in=call_ids)
        .order_by("call_id")
        .values_list(
            "id",
            "call_id",
            "active_virtual_agent_id",
            "handoff_count",
            "event_count",
            "provider_call_id",
            named=True,
        )
    }
    stored = _load_events(center, call_ids)
    fold = FoldSettings(bot_abandon_seconds=float(settings.BOT_ABANDON_SECONDS))
    assemblies = {call_id: assemble(stored[call_id], fold) for call_id in call_ids}

    _update_records([(locked[call_id].id, a) for call_id, a in assemblies.items()], updated=timezone.now())
    # A handoff's fields come from handoff.* events only: calls without a new one keep theirs.
    with_handoff_news = {unique[i].call_id for i in inserted if unique[i].type.startswith("handoff.")}
    _write_handoffs(center, [(locked[c].id, a) for c, a in assemblies.items() if c in with_handoff_news])
    for call_id, assembly in assemblies.items():
        if locked[call_id].handoff_count > len(assembly.handoffs):  # impossible with append-only events
            Handoff.objects.filter(
                call_record=locked[call_id].id, sequence__gt=len(assembly.handoffs)
            ).delete()
    # A waiting provider report can only match a record that is new or got its provider call id now.
    attach_pending_reports(
        CallRecord(
            id=locked[call_id].id,
            contact_center_id=center.pk,
            call_id=call_id,
            provider_call_id=assembly.record.provider_call_id,
        )
        for call_id, assembly in assemblies.items()
        if locked[call_id].event_count == 0
        or locked[call_id].provider_call_id != assembly.record.provider_call_id
    )

    deltas = active_call_deltas(
        (_str_or_none(locked[call_id].active_virtual_agent_id), a.record.active_virtual_agent_id)
        for call_id, a in assemblies.items()
    )
    new_events = [(inserted[event_id], unique[event_id]) for event_id in sorted(inserted, key=inserted.get)]
    transaction.on_commit(lambda: _after_commit(center.pk, new_events, assemblies, deltas))
    return result


# --- statements --------------------------------------------------------------------------


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _column(model: type[models.Model], name: str) -> str:
    return _q(model._meta.get_field(name).column)


def _pk_value(value: Any) -> Any:
    """A UUID primary/foreign key as the backend stores it (SQLite: 32 hex digits)."""
    if value is None or connection.features.has_native_uuid_field:
        return None if value is None else str(value)
    return uuid.UUID(str(value)).hex


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _insert_events(center: ContactCenter, events: list[EventIn], refs: Mapping[str, Any]) -> dict[str, int]:
    """Insert what is new; event id → pk of each row this statement inserted."""
    table = _q(CallEvent._meta.db_table)
    names = ["contact_center", "event_id", "type", "call_id", "occurred_at", "received_at", "data", "refs"]
    columns = ", ".join(_column(CallEvent, n) for n in names)
    center_id = _pk_value(center.pk)
    adapt = connection.ops.adapt_datetimefield_value
    received = adapt(timezone.now())
    conflict = (
        f"ON CONFLICT ({_column(CallEvent, 'contact_center')}, {_column(CallEvent, 'event_id')}) "
        f"DO NOTHING RETURNING {_column(CallEvent, 'id')}, {_column(CallEvent, 'event_id')}"
    )
    inserted: dict[str, int] = {}
    with connection.cursor() as cursor:
        for start in range(0, len(events), ROWS_PER_STATEMENT):
            chunk = events[start : start + ROWS_PER_STATEMENT]
            params: list[Any] = []
            for e in chunk:
                params += [center_id, e.event_id, e.type, e.call_id, adapt(e.occurred_at), received]
                params += [_json(e.data), _json(refs.get(e.event_id, {}))]
            rows = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(chunk))
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {rows} {conflict}", params)  # noqa: S608
            inserted.update((event_id, pk) for pk, event_id in cursor.fetchall())
    return inserted


def _create_missing_records(center: ContactCenter, call_ids: list[str]) -> None:
    """An empty record for each call that has none yet, in call_id order (see the module docstring)."""
    fields = [f for f in CallRecord._meta.concrete_fields if not f.primary_key]
    columns = ", ".join(_q(f.column) for f in fields)
    now = timezone.now()
    template: list[Any] = []
    call_index = 0
    for index, f in enumerate(fields):
        if f.name == "contact_center":
            template.append(_pk_value(center.pk))
        elif f.name == "call_id":
            template.append(None)
            call_index = index
        elif f.name == "updated":
            template.append(connection.ops.adapt_datetimefield_value(now))
        else:
            template.append(f.get_db_prep_save(f.get_default(), connection))
    unique = f"{_column(CallRecord, 'contact_center')}, {_column(CallRecord, 'call_id')}"
    row = "(" + ", ".join(["%s"] * len(fields)) + ")"
    table = _q(CallRecord._meta.db_table)
    with connection.cursor() as cursor:
        for start in range(0, len(call_ids), ROWS_PER_STATEMENT // 2):
            chunk = call_ids[start : start + ROWS_PER_STATEMENT // 2]
            params: list[Any] = []
            for call_id in chunk:
                values = list(template)
                values[call_index] = call_id
                params += values
            rows = ", ".join([row] * len(chunk))
            sql = f"INSERT INTO {table} ({columns}) VALUES {rows} ON CONFLICT ({unique}) DO NOTHING"  # noqa: S608
            cursor.execute(sql, params)


def _load_events(center: ContactCenter, call_ids: list[str]) -> dict[str, list[StoredEvent]]:
    stored: dict[str, list[StoredEvent]] = {call_id: [] for call_id in call_ids}
    rows = CallEvent.objects.filter(contact_center=center, call_id__in=call_ids).values_list(
        "id", "event_id", "type", "call_id", "occurred_at", "data", "refs"
    )
    for pk, event_id, kind, call_id, occurred_at, data, refs in rows:
        stored[call_id].append(StoredEvent(event_id, kind, occurred_at, data, refs, pk))
    return stored


def _adapter(field: models.Field) -> Callable[[Any], Any]:
    if isinstance(field, models.DateTimeField):
        return connection.ops.adapt_datetimefield_value
    if isinstance(field, models.ForeignKey) and isinstance(field.target_field, models.UUIDField):
        return _pk_value
    return lambda value: value


def _existing(field: models.Field, value: str) -> str:
    """SQL for a foreign key's value that is NULL when the row it names is gone.

    `refs` keep the ids an event resolved to when it was stored; the bot, queue, agent or number
    may have been deleted since (their foreign keys are SET_NULL), and a re-fold must not write
    a dangling id. One primary-key probe per column, inside the same statement.
    """
    if not isinstance(field, models.ForeignKey):
        return value
    table, pk = _q(field.related_model._meta.db_table), _q(field.related_model._meta.pk.column)
    return f"(SELECT {pk} FROM {table} WHERE {pk} = {value})"  # noqa: S608


def _update_records(rows: list[tuple[int, Assembly]], *, updated: Any) -> None:
    """All assembled records in one UPDATE … FROM (VALUES …) per chunk."""
    fields = [CallRecord._meta.get_field(name) for name in (*RECORD_FIELDS, "updated")]
    attrs = [*RECORD_FIELDS, "updated"]
    pk_field = CallRecord._meta.pk
    adapters = [_adapter(f) for f in fields]
    is_pg = connection.vendor == "postgresql"
    casts = [f"::{f.db_type(connection)}" if is_pg else "" for f in [pk_field, *fields]]
    row = "(" + ", ".join(f"%s{cast}" for cast in casts) + ")"
    names = ["id", *[f.column for f in fields]]
    table = _q(CallRecord._meta.db_table)
    columns = ", ".join(_q(n) for n in names)
    assign = (
        "SET "
        + ", ".join(f"{_q(f.column)} = {_existing(f, f'v.{_q(f.column)}')}" for f in fields)
        + f" FROM v WHERE {table}.{_q(pk_field.column)} = v.{_q('id')}"
    )
    with connection.cursor() as cursor:
        step = ROWS_PER_STATEMENT // 4
        for start in range(0, len(rows), step):
            chunk = rows[start : start + step]
            params: list[Any] = []
            for pk, assembly in chunk:
                record = assembly.record
                params.append(pk)
                for attr, adapt in zip(attrs, adapters, strict=True):
                    params.append(adapt(updated if attr == "updated" else getattr(record, attr)))
            values = ", ".join([row] * len(chunk))
            cursor.execute(f"WITH v ({columns}) AS (VALUES {values}) UPDATE {table} {assign}", params)


def _write_handoffs(center: ContactCenter, rows: list[tuple[int, Assembly]]) -> None:
    """Upsert every handoff by (record, sequence): one statement per chunk."""
    attrs = [a for a in HANDOFF_FIELDS if a != "sequence"]
    fields = [Handoff._meta.get_field(a) for a in attrs]
    adapters = [_adapter(f) for f in fields]
    names = ["contact_center_id", "call_record_id", "sequence", *[f.column for f in fields]]
    items = [(pk, h) for pk, assembly in rows for h in assembly.handoffs]
    if not items:
        return
    center_id = _pk_value(center.pk)
    row = "(%s, %s, %s, " + ", ".join(_existing(f, "%s") for f in fields) + ")"
    table = _q(Handoff._meta.db_table)
    columns = ", ".join(_q(n) for n in names)
    upsert = f"ON CONFLICT ({_q('call_record_id')}, {_q('sequence')}) DO UPDATE SET " + ", ".join(
        f"{_q(f.column)} = excluded.{_q(f.column)}" for f in fields
    )
    with connection.cursor() as cursor:
        step = ROWS_PER_STATEMENT // 4
        for start in range(0, len(items), step):
            chunk = items[start : start + step]
            params: list[Any] = []
            for record_pk, handoff in chunk:
                params += [center_id, record_pk, handoff.sequence]
                for attr, adapt in zip(attrs, adapters, strict=True):
                    value = getattr(handoff, attr)
                    params.append(
                        json.dumps(value, ensure_ascii=False) if attr == "context" else adapt(value)
                    )
            values = ", ".join([row] * len(chunk))
            cursor.execute(f"INSERT INTO {table} ({columns}) VALUES {values} {upsert}", params)  # noqa: S608


# --- what the events' names refer to ------------------------------------------------------


def resolve_refs(
    center: ContactCenter, events: Iterable[EventIn], agents: Mapping[str, AgentInfo] | None = None
) -> dict[str, dict[str, Any]]:
    """Each event's `refs` (see reporting.assemble.refs_for): one query per kind of name used."""
    events = list(events)
    refer_tos: set[str] = set()
    extensions: set[str] = set()
    dialled: set[str] = set()
    agent_refs: set[str] = set()
    for e in events:
        if "virtual_agent" in e.data:
            agent_refs.add(e.data["virtual_agent"])
        if e.type == "handoff.requested":
            refer_tos.add(e.data["refer_to"])
        elif e.type == "agent.connected":
            extensions.add(e.data["extension"])
        elif e.type == "call.started" and e.data.get("direction") == "inbound":
            dialled.add(e.data["to"])
    known = dict(agents or {})
    missing = {ref for ref in agent_refs if agent_ref_key(ref) not in known}
    if missing:
        known.update(find_virtual_agents(center, missing))
    targets = resolve_targets(center, refer_tos)
    members = _members(center, extensions)
    numbers = _numbers(center, dialled)
    refs: dict[str, dict[str, Any]] = {}
    for e in events:
        ref = e.data.get("virtual_agent")
        refs[e.event_id] = refs_for(
            agent=known.get(agent_ref_key(ref) or "") if isinstance(ref, str) else None,
            target=targets.get(e.data["refer_to"]) if e.type == "handoff.requested" else None,
            membership_id=members.get(e.data["extension"]) if e.type == "agent.connected" else None,
            number=numbers.get(e.data["to"]) if e.type == "call.started" else None,
        )
    return refs


def resolve_targets(center: ContactCenter, refer_tos: Iterable[str]) -> dict[str, Target]:
    """Each Refer-To resolved as the refer API resolves it; refusals keep their error code."""
    destinations: dict[str, Any] = {}
    targets: dict[str, Target] = {}
    for refer_to in refer_tos:
        try:
            _, destinations[refer_to] = resolve_refer(center, refer_to)
        except ReferToError as exc:
            targets[refer_to] = Target(error=exc.code)
    digits = {d.extension for d in destinations.values() if d.extension}
    owners: dict[str, str] = {}
    if digits:
        rows = Extension.objects.filter(contact_center=center, digits__in=digits).values_list(
            "digits", "queue__id", "membership__id", "virtual_agent__id"
        )
        owners = {row[0]: str(next(pk for pk in row[1:] if pk is not None)) for row in rows if any(row[1:])}
    for refer_to, d in destinations.items():
        ref = d.number or owners.get(d.extension or "", "")
        targets[refer_to] = Target(d.type, ref, d.extension or "", d.name or "", "")
    return targets


def _members(center: ContactCenter, extensions: set[str]) -> dict[str, str]:
    if not extensions:
        return {}
    rows = Membership.objects.filter(contact_center=center, extension__digits__in=extensions).values_list(
        "extension__digits", "id"
    )
    return {digits: str(pk) for digits, pk in rows}


def _numbers(center: ContactCenter, dialled: set[str]) -> dict[str, Number]:
    normalised: dict[str, str] = {}
    for text in dialled:
        try:
            normalised[text] = normalise_e164(text)
        except DomainError:
            continue  # not a number we could own: the record keeps the text, no phone number
    if not normalised:
        return {}
    rows = PhoneNumber.objects.filter(contact_center=center, number__in=set(normalised.values())).values_list(
        "number", "id", "flow_id"
    )
    by_number = {number: Number(str(pk), str(flow) if flow else None) for number, pk, flow in rows}
    return {text: by_number[e164] for text, e164 in normalised.items() if e164 in by_number}


# --- after commit: counters and the live feed ---------------------------------------------


def _str_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def active_call_deltas(changes: Iterable[tuple[str | None, str | None]]) -> dict[str, int]:
    """(active bot before, after) per record → the change of each bot's active-call count."""
    deltas: dict[str, int] = {}
    for before, after in changes:
        if before == after:
            continue
        if before is not None:
            deltas[before] = deltas.get(before, 0) - 1
        if after is not None:
            deltas[after] = deltas.get(after, 0) + 1
    return {agent: delta for agent, delta in deltas.items() if delta}


ACTIVE_KEY_SECONDS = 12 * 3600  # a counter left by calls that never reported their end heals itself


def active_key(virtual_agent_id: str) -> str:
    return f"va-active:{virtual_agent_id}"  # routing.route.active_calls reads it


def apply_active_deltas(deltas: Mapping[str, int]) -> None:
    """Move each bot's counter by its delta, never below 0. A cache outage is logged, not raised."""
    for agent_id, delta in deltas.items():
        key = active_key(agent_id)
        try:
            cache.add(key, 0, timeout=ACTIVE_KEY_SECONDS)
            value = cache.incr(key, delta)
            if value < 0:
                # Undo only this call's own overshoot: concurrent decrements each undo theirs.
                cache.incr(key, min(-delta, -value))
        except ValueError:  # the key expired between add and incr: start again from this change
            cache.add(key, max(delta, 0), timeout=ACTIVE_KEY_SECONDS)
        except Exception as exc:  # Redis down: routing then treats the bot as free (active_calls)
            logger.warning("ingest: could not update %s: %s", key, type(exc).__name__)


def _after_commit(
    center_id: Any,
    new_events: list[tuple[int, EventIn]],
    assemblies: dict[str, Assembly],
    deltas: dict[str, int],
) -> None:
    apply_active_deltas(deltas)
    try:
        messages = feed_messages(new_events, assemblies)
    except Exception:  # a bug here must not turn a stored, committed batch into a 500
        logger.exception("ingest: could not build live feed messages")
        return
    live.publish(center_id, messages)
