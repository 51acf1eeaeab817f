"""Storing call events and keeping call records and handoffs exact: `ingest_events()`.

One event (most requests: a switch reports each as it happens) on PostgreSQL: `ingest_one` — read
the call, fold it, then write the event with the call's record and handoffs in one statement only
if the record's event count is still the one read (optimistic; another request's event in between
sends it round again); the rollups' stale marks are a CTE of that statement.

Batches, and one event of a call kept busy, or on SQLite: one transaction per request:
1. insert the new events, sorted by event id: the unique (contact center, event id) constraint
   decides what is new, even when two requests race the same ids (the second waits for the
   first; a request that meets a stored id goes round again skipping the stored ids);
2. lock the records of the calls that got new events with SELECT … FOR UPDATE ORDER BY call_id,
   and insert the missing ones (a call that starts in the request: its record folded first and
   written whole), so that concurrent requests for the same calls queue instead of deadlocking;
3. fold each call (reporting.assemble, pure) from every one of its events: PostgreSQL reads the
   earlier ones in the statement that locks, and again after the lock when the locked record
   shows that another transaction committed events meanwhile; write the records in one UPDATE
   and the handoffs in one upsert; mark the 15-minute buckets the records were and are in as
   stale, for the rollups' fold worker (reporting.rollups);
4. after commit: waiting provider reports linked, the live feed (reporting.feed →
   reporting.live) and the virtual agents' active-call counters that routing reads.
Deadlocks and serialization failures retry the whole transaction a few times.

The statements are in reporting.ingest_sql (PostgreSQL: prepared, the rows as one JSON
parameter; SQLite ≥ 3.35: multi-row VALUES, also with ON CONFLICT … RETURNING and UPDATE … FROM).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from channels.layers import get_channel_layer
from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, OperationalError, connection, transaction
from django.utils import timezone

from campaigns.services import CallEventFact, apply_call_events, is_dialer_call
from reporting import ingest_sql, live, rollups
from reporting.assemble import Assembly, FoldSettings, Number, StoredEvent, Target, assemble, refs_for
from reporting.events import (
    AgentInfo,
    EventIn,
    agent_ref_key,
    find_queues,
    find_virtual_agents,
    recent_lookups,
)
from reporting.feed import feed_messages
from reporting.models import Handoff
from reporting.provider_reports import RecordRef, attach_pending_reports_on_commit
from routing.hotpath import extension_owners
from routing.models import PhoneNumber
from routing.refer import Destination, ExtensionOwner, destination_for
from voiso_byob.cache import CACHE_DOWN, cache_unavailable
from voiso_byob.errors import DomainError
from voiso_byob.models import ContactCenter, Membership
from voiso_byob.phone import normalise_e164
from voiso_byob.sip import ReferTo, ReferToError, parse_refer_to

logger = logging.getLogger(__name__)

ATTEMPTS = 5
_RETRY_SQLSTATES = {"40001", "40P01"}  # serialization_failure, deadlock_detected


@dataclass(frozen=True, slots=True)
class IngestResult:
    accepted: int
    duplicates: int


class KeyRevoked(Exception):
    """The API key `ingest_events` was asked to confirm is revoked: nothing was stored."""


def ingest_events(
    *,
    center: ContactCenter,
    events: Sequence[EventIn],
    agents: Mapping[str, AgentInfo] | None = None,
    key_id: Any = None,
) -> IngestResult:
    """Store `events` (already validated) and re-assemble the calls they belong to.

    `agents`: the virtual agents the validation looked up, by `agent_ref_key`, to save a query.
    `key_id`: an API key to confirm still active in the statement that stores the events (raises
    KeyRevoked, having stored nothing, when it is not).
    """
    # A dialer's call moves its attempt in the same transaction as its events: the locking way.
    if len(events) == 1 and ingest_sql.prefills_records() and not is_dialer_call(events[0].call_id):
        result = ingest_one(center, events[0], dict(agents or {}), key_id)
        if result is not None:
            return result
        # The call kept moving under it: the locking way, below, waits its turn instead.
    expect_new = not duplicates_seen.recently(center.pk)
    for attempt in range(1, ATTEMPTS + 1):
        try:
            with transaction.atomic():
                return _ingest(center, events, dict(agents or {}), key_id, expect_new=expect_new)
        except IntegrityError as exc:
            if ingest_sql.is_vanished_reference(exc) and attempt < ATTEMPTS:
                continue  # a bot, queue or number deleted meanwhile: again, on a new snapshot
            if not (expect_new and ingest_sql.is_duplicate_event(exc)):
                raise
            # Rolled back; again, skipping the stored ids (and so for a while in this process:
            # a switch re-sending a backlog sends many duplicates in a row).
            duplicates_seen.note(center.pk)
            expect_new = False
        except OperationalError as exc:
            if attempt == ATTEMPTS or not _is_retryable(exc):
                raise
            logger.info("ingest: %s, retrying (attempt %d)", type(exc.__cause__ or exc).__name__, attempt)
            time.sleep(random.uniform(0.005, 0.02) * attempt)  # noqa: S311 - jitter, not security
    raise AssertionError("unreachable")


def ingest_one(
    center: ContactCenter, event: EventIn, agents: dict[str, AgentInfo], key_id: Any = None
) -> IngestResult | None:
    """One event (what most requests hold: a switch reports each as it happens) in two statements.

    `read_call` reads the call, the fold runs here, and `write_one` stores the event with the
    call's new record and handoffs in one statement, only if the call is still as it was read:
    optimistic, without a transaction of its own or a lock held across the round trip; the
    rollups' stale marks (reporting.rollups) are part of that statement. When another
    request stored an event of the call in between, the write changes nothing and this reads
    the call again; after ATTEMPTS such rounds (a call under heavy contention) it returns None
    and ingest_events takes the locking way. PostgreSQL only.
    """
    refs = resolve_refs(center, [event], agents)
    fold = FoldSettings(bot_abandon_seconds=float(settings.BOT_ABANDON_SECONDS))
    new = StoredEvent(event.event_id, event.type, event.occurred_at, event.data, refs[event.event_id])
    for attempt in range(1, ATTEMPTS + 1):
        seen = ingest_sql.read_call(center.pk, event, key_id)
        if seen.key_revoked:
            raise KeyRevoked
        if seen.duplicate:
            return IngestResult(accepted=0, duplicates=1)  # a retried request changes nothing
        assembly = assemble([*seen.events, new], fold)
        try:
            written = _write_one(center, event, refs, seen.record, assembly, key_id)
        except IntegrityError as exc:
            # Another request stored this very event meanwhile (read_call now says so), or a bot,
            # queue or number the fold names was deleted meanwhile (read again: it is gone then).
            if not (ingest_sql.is_duplicate_event(exc) or ingest_sql.is_vanished_reference(exc)):
                raise
            continue
        except OperationalError as exc:
            if not _is_retryable(exc):
                raise
            time.sleep(random.uniform(0.005, 0.02) * attempt)  # noqa: S311 - jitter, not security
            continue
        if written is None:
            continue  # the call moved on (or the key was revoked): read it again
        _one_stored(center, event, seen.record, assembly, *written)
        return IngestResult(accepted=1, duplicates=0)
    return None


def _one_stored(
    center: ContactCenter,
    event: EventIn,
    before: ingest_sql.LockedRecord | None,
    assembly: Assembly,
    event_pk: int,
    record_pk: int,
) -> None:
    """What follows ingest_one's write: as `_ingest` does for its records."""
    if before is not None and before.handoff_count > len(assembly.handoffs):  # impossible: append-only
        Handoff.objects.filter(call_record=record_pk, sequence__gt=len(assembly.handoffs)).delete()
    provider_call_id = assembly.record.provider_call_id
    if before is None or before.provider_call_id != provider_call_id:
        attach_pending_reports_on_commit([RecordRef(record_pk, center.pk, event.call_id, provider_call_id)])
    deltas = active_call_deltas(
        [(before.active_virtual_agent_id if before else None, assembly.record.active_virtual_agent_id)]
    )
    assemblies = {event.call_id: assembly}
    # Without a transaction (autocommit) this runs at once; inside a caller's, after it commits.
    transaction.on_commit(lambda: _after_commit(center.pk, [(event_pk, event)], assemblies, deltas))


def _write_one(
    center: ContactCenter,
    event: EventIn,
    refs: dict[str, dict[str, Any]],
    record: ingest_sql.LockedRecord | None,
    assembly: Assembly,
    key_id: Any,
) -> tuple[int, int] | None:
    # The rollups' stale marks go in the same statement, gated on the write (a write that finds
    # the call moved on marks nothing): no BEGIN and COMMIT around two statements.
    stale = rollups.stale_buckets(record.started_at if record else None, assembly.record.started_at)
    also = [rollups.stale_marks_pg(center.pk, stale, where=ingest_sql.WROTE)] if stale else []

    def write() -> tuple[int, int] | None:
        return ingest_sql.write_one(
            center.pk,
            event,
            refs,
            timezone.now(),
            seen=record,
            assembly=assembly,
            handoffs=event.type.startswith("handoff."),
            key_id=key_id,
            also=also,
        )

    if connection.in_atomic_block or not connection.get_autocommit():
        with transaction.atomic():  # a savepoint: a refused write must not spoil the caller's transaction
            return write()
    return write()


class DuplicatesSeen:
    """Contact centers whose events met a stored event id in the last minute, in this process.

    Ingestion first inserts a request's events as new (store_and_lock's `expect_new`: cheaper when
    they are, as nearly all are) and, when one was stored before, rolls back and stores them again
    skipping the known ids. For a while after that, a center's requests skip known ids at once.
    """

    SECONDS = 60.0

    def __init__(self) -> None:
        self._until: dict[Any, float] = {}

    def recently(self, center_id: Any) -> bool:
        until = self._until.get(center_id)
        return until is not None and until > time.monotonic()

    def note(self, center_id: Any) -> None:
        if len(self._until) > 10_000:
            self._until.clear()
        self._until[center_id] = time.monotonic() + self.SECONDS


duplicates_seen = DuplicatesSeen()


def _is_retryable(exc: OperationalError) -> bool:
    if getattr(exc.__cause__, "sqlstate", None) in _RETRY_SQLSTATES:
        return True
    return "database is locked" in str(exc)  # SQLite's busy timeout ran out


def _ingest(
    center: ContactCenter,
    events: Sequence[EventIn],
    agents: dict[str, AgentInfo],
    key_id: Any,
    *,
    expect_new: bool = False,
) -> IngestResult:
    unique: dict[str, EventIn] = {}
    for event in events:
        unique.setdefault(event.event_id, event)  # a repeated id inside one batch: the first wins
    refs = resolve_refs(center, unique.values(), agents)
    ordered = sorted(unique.values(), key=lambda e: e.event_id)
    fold = FoldSettings(bot_abandon_seconds=float(settings.BOT_ABANDON_SECONDS))
    by_call: dict[str, list[EventIn]] = {}
    for e in ordered:
        by_call.setdefault(e.call_id, []).append(e)
    # A call that starts in this request most likely has no record yet: folded now, its record is
    # written whole when the statement below creates it (see ingest_sql.store_and_lock).
    prefill = (
        {
            call_id: assemble(
                [
                    StoredEvent(e.event_id, e.type, e.occurred_at, e.data, refs[e.event_id])
                    for e in call_events
                ],
                fold,
            )
            for call_id, call_events in by_call.items()
            if any(e.type == "call.started" for e in call_events)
        }
        if ingest_sql.prefills_records()
        else {}
    )
    done = ingest_sql.store_and_lock(
        center.pk,
        ordered,
        refs,
        timezone.now(),
        key_id=key_id,
        prefill={call_id: assembly.record for call_id, assembly in prefill.items()},
        expect_new=expect_new and ingest_sql.prefills_records(),
    )
    if done.key_revoked:
        raise KeyRevoked
    inserted, locked = done.inserted, done.locked
    result = IngestResult(accepted=len(inserted), duplicates=len(events) - len(inserted))
    if not inserted:
        return result  # nothing new: a retried request changes nothing

    # A prefilled record holds the fold of all of this request's events of its call, which are
    # then all of the call's events when every one of them was new.
    new_per_call = Counter(unique[event_id].call_id for event_id in inserted)
    written = {c for c, record in locked.items() if record.prefilled and new_per_call[c] == len(by_call[c])}

    # Each call's events: the ones stored before this transaction, then ours. A record this
    # transaction created (no events folded yet) has none before: a concurrent request's events
    # for the call wait behind our lock and fold after we commit. Otherwise the events read with
    # the lock serve when they are as many as the record had folded; if not (another transaction
    # committed more while we waited for its lock), a new statement, after the locks, sees them all.
    call_ids = sorted(locked)
    earlier = done.earlier or {}
    again = [
        c
        for c in call_ids
        if locked[c].event_count
        and (done.earlier is None or len(earlier.get(c, ())) != locked[c].event_count)
    ]
    stored = ingest_sql.load_events(center.pk, again) if again else {}  # ours are among these
    for call_id in call_ids:
        if call_id not in stored and call_id not in written:
            stored[call_id] = list(earlier.get(call_id, ()))
    for event_id, pk in inserted.items():
        e = unique[event_id]
        if e.call_id not in again and e.call_id not in written:
            stored[e.call_id].append(
                StoredEvent(e.event_id, e.type, e.occurred_at, e.data, refs[event_id], pk)
            )
    assemblies = {
        call_id: prefill[call_id] if call_id in written else assemble(stored[call_id], fold)
        for call_id in call_ids
    }
    # A handoff's fields come from handoff.* events only: calls without a new one keep theirs.
    with_handoff_news = {unique[i].call_id for i in inserted if unique[i].type.startswith("handoff.")}
    ingest_sql.write_fold(
        center.pk,
        [(locked[c].id, a) for c, a in assemblies.items() if c not in written],
        [(locked[c].id, a) for c, a in assemblies.items() if c in with_handoff_news],
        updated=timezone.now(),
    )
    for call_id, assembly in assemblies.items():
        if locked[call_id].handoff_count > len(assembly.handoffs):  # impossible with append-only events
            Handoff.objects.filter(
                call_record=locked[call_id].id, sequence__gt=len(assembly.handoffs)
            ).delete()
    # A waiting provider report can only match a record that is new or got its provider call id now.
    attach_pending_reports_on_commit(
        RecordRef(locked[call_id].id, center.pk, call_id, assembly.record.provider_call_id)
        for call_id, assembly in assemblies.items()
        if locked[call_id].event_count == 0
        or locked[call_id].provider_call_id != assembly.record.provider_call_id
    )

    dialer_facts = [
        CallEventFact(e.call_id, e.type, e.occurred_at, e.data)
        for e in (unique[event_id] for event_id in inserted)
        if is_dialer_call(e.call_id)
    ]
    if dialer_facts:
        apply_call_events(center_id=center.pk, facts=dialer_facts)
    # The buckets the records were and are in, for the rollups' fold worker (reporting.rollups).
    rollups.mark_stale(
        center.pk,
        {
            bucket
            for call_id, a in assemblies.items()
            for bucket in rollups.stale_buckets(locked[call_id].started_at, a.record.started_at)
        },
    )

    deltas = active_call_deltas(
        (locked[call_id].active_virtual_agent_id, a.record.active_virtual_agent_id)
        for call_id, a in assemblies.items()
    )
    new_events = [(inserted[event_id], unique[event_id]) for event_id in sorted(inserted, key=inserted.get)]
    transaction.on_commit(lambda: _after_commit(center.pk, new_events, assemblies, deltas))
    return result


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
    queue_refs: set[str] = set()
    for e in events:
        if "virtual_agent" in e.data:
            agent_refs.add(e.data["virtual_agent"])
        if e.type == "handoff.requested":
            refer_tos.add(e.data["refer_to"])
        elif e.type == "queue.entered":
            queue_refs.add(e.data["queue"])
        elif e.type == "agent.connected":
            extensions.add(e.data["extension"])
        elif e.type == "call.started" and e.data.get("direction") == "inbound":
            dialled.add(e.data["to"])
    known = dict(agents or {})
    missing = {ref for ref in agent_refs if agent_ref_key(ref) not in known}
    if missing:
        known.update(find_virtual_agents(center, missing))
    targets = _remembered("target", center, refer_tos, resolve_targets)
    members = _remembered("member", center, extensions, _members)
    numbers = _remembered("number", center, dialled, _numbers)
    queues = find_queues(center, queue_refs) if queue_refs else {}  # validation just looked them up
    refs: dict[str, dict[str, Any]] = {}
    # Events that resolve alike share one refs object (read-only from here on: the fold reads it,
    # storage encodes it once per request).
    # Keyed by the identity of the looked-up objects (each name resolves to one object per request):
    # hashing the dataclasses themselves measured slower than the refs they save.
    shared: dict[tuple[int, int, int, int, int], dict[str, Any]] = {}
    agent_of_ref: dict[str, AgentInfo | None] = {}
    for e in events:
        data = e.data
        ref = data.get("virtual_agent")
        agent = None
        if isinstance(ref, str):
            agent = agent_of_ref.get(ref, _UNSEEN)
            if agent is _UNSEEN:
                agent = agent_of_ref[ref] = known.get(agent_ref_key(ref) or "")
        kind = e.type
        target = targets.get(data["refer_to"]) if kind == "handoff.requested" else None
        membership_id = members.get(data["extension"]) if kind == "agent.connected" else None
        number = numbers.get(data["to"]) if kind == "call.started" else None
        queue = queues.get(agent_ref_key(data["queue"]) or "") if kind == "queue.entered" else None
        key = (id(agent), id(target), id(membership_id), id(number), id(queue))
        event_refs = shared.get(key)
        if event_refs is None:
            event_refs = shared[key] = refs_for(
                agent=agent, target=target, membership_id=membership_id, number=number, queue=queue
            )
        refs[e.event_id] = event_refs
    return refs


_UNSEEN: Any = object()


def _remembered(
    kind: str,
    center: ContactCenter,
    keys: set[str],
    look_up: Callable[[ContactCenter, set[str]], dict[str, Any]],
) -> dict[str, Any]:
    """`look_up` for the keys not resolved in the last few seconds (reporting.events.RecentLookups)."""
    known, missing = recent_lookups.get(kind, center, keys)
    if missing:
        found = look_up(center, missing)
        # Refusals (a Refer-To's error) are looked up again every time: never remembered.
        recent_lookups.put(kind, center, {k: v for k, v in found.items() if not getattr(v, "error", "")})
        known.update(found)
    return known


def resolve_targets(center: ContactCenter, refer_tos: Iterable[str]) -> dict[str, Target]:
    """Each Refer-To resolved exactly as the refer API does (routing.refer), with one query in all."""
    parsed: dict[str, ReferTo] = {}
    targets: dict[str, Target] = {}
    for refer_to in refer_tos:
        try:
            parsed[refer_to] = parse_refer_to(refer_to)
        except ReferToError as exc:
            targets[refer_to] = Target(error=exc.code)
    owners, owner_ids = _extension_owners(center, {t.extension for t in parsed.values() if t.extension})
    for refer_to, target in parsed.items():
        try:
            destination: Destination = destination_for(center, target, owners.get(target.extension or ""))
        except ReferToError as exc:
            targets[refer_to] = Target(error=exc.code)
            continue
        ref = destination.number or owner_ids.get(destination.extension or "", "")
        targets[refer_to] = Target(destination.type, ref, destination.extension or "", destination.name or "")
    return targets


def _extension_owners(
    center: ContactCenter, digits: set[str]
) -> tuple[dict[str, ExtensionOwner], dict[str, str]]:
    """routing.refer's view of each extension's owner, and the owner's id (queue, membership or bot)."""
    found = extension_owners(center.pk, sorted(digits))  # the refer API's own statement's joins
    owners = {digits: owner for digits, (owner, _) in found.items()}
    return owners, {digits: owner_id for digits, (_, owner_id) in found.items() if owner_id is not None}


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
    if not deltas:
        return
    if hasattr(cache, "add_and_incr"):  # Redis (voiso_byob.cache): all counters in one round trip
        keys = {active_key(agent_id): delta for agent_id, delta in deltas.items()}
        try:
            values = cache.add_and_incr(keys, timeout=ACTIVE_KEY_SECONDS)
            # Undo only this call's own overshoot: concurrent decrements each undo theirs.
            fixes = {k: min(-d, -v) for (k, d), v in zip(keys.items(), values, strict=True) if v < 0}
            if fixes:
                cache.add_and_incr(fixes, timeout=ACTIVE_KEY_SECONDS)
        except CACHE_DOWN as exc:  # routing then counts the bots' calls in PostgreSQL (active_calls)
            cache_unavailable("bots' active-call counters not moved", exc)
        return
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
        except CACHE_DOWN as exc:  # routing then counts the bots' calls in PostgreSQL (active_calls)
            cache_unavailable("bots' active-call counters not moved", exc)


def _after_commit(
    center_id: Any,
    new_events: list[tuple[int, EventIn]],
    assemblies: dict[str, Assembly],
    deltas: dict[str, int],
) -> None:
    feed_sender.count(deltas)
    feed_sender.send(center_id, lambda: feed_messages(new_events, assemblies), count=len(new_events))


PUBLISH_TIMEOUT = 5.0  # seconds one group_send may take before the loop gives up on it
MAX_PENDING = 20_000  # messages queued while Redis is slow or down; the oldest go first beyond it
MAX_PER_SEND = 1000  # messages in one group_send
# Each round costs the sender three Redis round trips (the group send's two, the counters' one), about
# 0.3 ms of CPU on these machines: at 10 ms a worker under load spent a tenth of a single event's
# CPU on them; at 25 ms, under half that, and the Live page still hears of an event within ~50 ms.
LINGER_SECONDS = 0.025
EXIT_FLUSH_SECONDS = 1.0


class FeedSender:
    """Publishes feed messages from one long-lived event loop per process, without holding up requests.

    channels_redis keeps its connections per event loop, and `reporting.live.publish` runs each
    send on a new loop: every request paid for a new Redis connection. Here one loop per worker
    process lives in a daemon thread, so its connections are reused. A request only queues its
    messages and goes on; the loop sends what has queued up since its last send, in one group_send
    per contact center, so under load many requests share one Redis round trip (measured: waiting
    for a send of its own cost a request about a fifth of its CPU). Order is kept within a process.
    Failures are logged by the loop; with Redis down, the queue is bounded and the API unaffected.
    The in-memory layer (one process: tests, the dev server) goes through `live.publish` as is.

    Ingestion queues a way to build its messages rather than the messages: the loop builds them
    only for a contact center with a live socket in its group (`_watched`, one Redis round trip),
    instead of a group send to no one (building a batch's messages measured a tenth of its CPU).
    That loses nothing: the loop looks after the events committed, and a socket that was not in
    the group then joins before its page fetches what it missed (reporting.live.catch_up, which
    has those events).
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pid = 0
        self._lock = threading.Lock()
        # (layer, center id, the messages or a function that builds them, how many)
        self._pending: list[tuple[Any, Any, Any, int]] = []
        self._count = 0
        self._deltas: dict[str, int] = {}
        self._draining = False
        self._idle = threading.Event()
        self._idle.set()

    def send(
        self,
        center_id: Any,
        messages: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]],
        *,
        count: int | None = None,
    ) -> None:
        """Queue feed messages for a center: a list, or a function building them and their `count`."""
        size = len(messages) if count is None else count  # type: ignore[arg-type]
        if not size:
            return
        if "InMemory" in settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", ""):
            built = _built(messages)
            if built:
                live.publish(center_id, built)
            return
        try:
            layer = get_channel_layer()
        except Exception as exc:  # a broken CHANNEL_LAYERS setting must not fail a stored batch
            self._failed(size, exc)
            return
        if layer is None:
            return
        loop = self._running_loop()
        with self._lock:
            self._pending.append((layer, center_id, messages, size))
            self._count += size
            dropped = 0
            while self._count > MAX_PENDING and len(self._pending) > 1:
                dropped += self._pending[0][3]
                self._count -= self._pending.pop(0)[3]
            start = not self._draining
            self._draining = True
            self._idle.clear()
        if dropped:
            logger.warning("live feed: %d message(s) dropped, the channel layer is not keeping up", dropped)
        if start:
            loop.call_soon_threadsafe(lambda: loop.create_task(self._drain()))

    def count(self, deltas: Mapping[str, int]) -> None:
        """Move the bots' active-call counters (apply_active_deltas), in the sender's next round.

        With Redis, the counters of every request that came in while the sender lingered go in
        one round trip, off the request; routing may read a count up to a send late (it is a
        capacity hint, racing the calls themselves anyway). The in-memory layer: at once.
        """
        if not deltas:
            return
        if "InMemory" in settings.CHANNEL_LAYERS.get("default", {}).get("BACKEND", ""):
            apply_active_deltas(deltas)
            return
        loop = self._running_loop()
        with self._lock:
            for agent_id, delta in deltas.items():
                self._deltas[agent_id] = self._deltas.get(agent_id, 0) + delta
            start = not self._draining
            self._draining = True
            self._idle.clear()
        if start:
            loop.call_soon_threadsafe(lambda: loop.create_task(self._drain()))

    def flush(self, timeout: float = PUBLISH_TIMEOUT) -> bool:
        """Wait until everything queued so far was sent (or given up on); False on timeout."""
        return self._idle.wait(timeout)

    async def _drain(self) -> None:
        while True:
            # Linger a moment so that requests arriving together share a send; the live latency
            # target is 100 ms, this costs at most LINGER_SECONDS of it.
            await asyncio.sleep(LINGER_SECONDS)
            with self._lock:
                batch, self._pending, self._count = self._pending, [], 0
                deltas, self._deltas = self._deltas, {}
                if not batch and not deltas:
                    self._draining = False
                    self._idle.set()
                    return
            # Opposite moves of one bot cancel out; what is left goes in one pipeline (sync
            # redis-py, on this thread: it is ours, and a short block delays only the feed).
            apply_active_deltas({agent: delta for agent, delta in deltas.items() if delta})
            by_group: dict[tuple[int, Any], tuple[Any, list[Any]]] = {}
            for layer, center_id, messages, _ in batch:
                by_group.setdefault((id(layer), center_id), (layer, []))[1].append(messages)
            for (_, center_id), (layer, queued) in by_group.items():
                if not await _watched(layer, center_id):
                    continue
                messages = [message for item in queued for message in _built(item)]
                for start in range(0, len(messages), MAX_PER_SEND):
                    chunk = messages[start : start + MAX_PER_SEND]
                    message = {"type": live.MESSAGE_TYPE, "messages": chunk}
                    try:
                        await asyncio.wait_for(
                            layer.group_send(live.group_name(center_id), message), PUBLISH_TIMEOUT
                        )
                    except Exception as exc:  # connection, timeout, capacity: the feed degrades
                        self._failed(len(chunk), exc)

    @staticmethod
    def _failed(count: int, exc: BaseException) -> None:
        if isinstance(exc, CACHE_DOWN):
            # Redis is down: one line per outage, not one per send (pages catch up when it is back).
            cache_unavailable(f"live feed: {count} message(s) not published", exc)
            return
        # The same words as reporting.live: one thing to look for when the feed degrades.
        logger.warning("live feed: could not publish %d message(s): %s", count, type(exc).__name__)

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        # A thread does not survive fork (gunicorn workers): one loop per process, started lazily.
        if self._loop is not None and self._pid == os.getpid():
            return self._loop
        with self._lock:
            if self._loop is None or self._pid != os.getpid():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="live-feed-loop", daemon=True).start()
                # A worker that exits (restart, deploy) sends what it queued in its last moments.
                atexit.register(self.flush, EXIT_FLUSH_SECONDS)
                self._loop, self._pid = loop, os.getpid()
                self._pending, self._count, self._draining, self._deltas = [], 0, False, {}
                self._idle.set()
        return self._loop


feed_sender = FeedSender()


def _built(messages: list[dict[str, Any]] | Callable[[], list[dict[str, Any]]]) -> list[dict[str, Any]]:
    if not callable(messages):
        return messages
    try:
        return messages()
    except Exception:  # a bug here must not fail a stored, committed batch, nor stop the sender
        logger.exception("ingest: could not build live feed messages")
        return []


async def _watched(layer: Any, center_id: Any) -> bool:
    """Whether a live socket (one not expired) is in the center's group: channels_redis's own
    record of it. Any other layer, or no answer: assume one is, and send."""
    group = live.group_name(center_id)
    try:
        key = layer._group_key(group)
        connection = layer.connection(layer.consistent_hash(group))
        return bool(await connection.zcount(key, int(time.time()) - int(layer.group_expiry), "+inf"))
    except Exception:
        return True
