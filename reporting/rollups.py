"""The reports' 15-minute rollups (`CallRollup`, `HandoffRollup`), recomputed from the records.

A record contributes to one `CallRollup` row — its key is the 15-minute UTC bucket of its start
and its bot, queue, campaign and direction — the counts of the report figures it is in, its
durations' whole-microsecond sums and one count in each duration histogram
(reporting.reports.durations); each of its handoffs adds 1 to one `HandoffRollup` row. A record
without a start is in no report and contributes nothing.

The rows of a bucket are always computed from the bucket's records, with the raw reports' own
predicates (reporting.reports.predicates) grouped by the rollup key (`_rebuild`): there is one
definition of each figure, in SQL. Ingestion does not touch the rollups: with the records it
writes, it marks the buckets they were and are in as stale (`mark_stale`, a row of
`StaleBucket`), and the fold worker (`manage.py fold_rollups`, `fold_stale`) recomputes the
marked buckets, about once a second. A late or out-of-order event that moves a call to another
bucket marks both. So the reports read figures at most a fold behind ingestion, and exact then.

Why not on the request: keeping the rollups in the ingesting transaction (each fold's before
and after contributions, upserted additively) was 14-23 % of a 500-event batch and kept
ingestion under its target (bench/README.md, "Ingestion with the rollups"); many batches of
one quarter hour are one recompute for the worker.

`rebuild_rollups()` recomputes a center's rollups entire: after a bulk load, on upgrade, and
after changing BOT_ABANDON_SECONDS or a queue's service level T (a bucket counts answered
within T against each queue's T when it was last recomputed). tests/reporting/test_rollups.py
checks that every report read from the rollups the worker keeps, and from rebuilt ones, equals
the report computed from the raw records.
"""

from __future__ import annotations

import functools
import math
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import DEFAULT_DB_ALIAS, connection, connections, transaction
from django.db.models import (
    BigIntegerField,
    Case,
    Count,
    F,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Sum,
    TextField,
    Value,
    When,
)
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Coalesce
from django.db.models.sql import UpdateQuery
from django.utils import timezone

from reporting.models import (
    CALL_ROLLUP_COUNTS,
    CALL_ROLLUP_HISTOGRAMS,
    NO_ID,
    CallRecord,
    CallRollup,
    Handoff,
    HandoffRollup,
    HandoffState,
    StaleBucket,
)
from reporting.reports import predicates as p
from reporting.reports.durations import Micros, bin_of, histogram_columns
from reporting.reports.filters import DEFAULT_CONTEXT_KEY
from reporting.reports.sql import Bucket, Seconds
from voiso_byob.models import ContactCenter

BUCKET_SECONDS = 15 * 60
CALL_KEY = ("bucket", "virtual_agent", "queue", "campaign_ref", "direction")
HANDOFF_KEY = (*CALL_KEY, "target_type", "state", "sip_status", "failure_reason", "reason")
CALL_COLUMNS = (
    *CALL_ROLLUP_COUNTS,
    *(name for prefix in CALL_ROLLUP_HISTOGRAMS for name in histogram_columns(prefix)),
)

# Marks a fold reads at most: a backlog (the worker stopped a while) is worked off in rounds.
FOLD_LIMIT = 5_000
# The fold worker's defaults (fold_stale): a bucket is recomputed 5 s after the last event that
# touched it, and at least once a minute while events keep touching it.
FOLD_SETTLE_SECONDS = 5.0
FOLD_MAX_LAG_SECONDS = 60.0
ROLLUPS_LOCK = 0x726F6C6C  # the advisory lock of the rollups' writers ("roll")


def bucket_of(moment: datetime) -> datetime:
    """The start of the 15-minute UTC bucket holding `moment`."""
    seconds = math.floor(moment.timestamp())
    return datetime.fromtimestamp(seconds - seconds % BUCKET_SECONDS, UTC)


def stale_buckets(*moments: datetime | None) -> set[datetime]:
    """The buckets of the starts a fold moved a record from and to (a record without a start is
    in none)."""
    return {bucket_of(moment) for moment in moments if moment is not None}


def mark_stale(center_id: Any, buckets: Iterable[datetime]) -> None:
    """Mark buckets for the fold worker, in the caller's transaction (with the records' writes:
    the worker sees a mark only once the records that made it are committed)."""
    marks = [StaleBucket(contact_center_id=center_id, bucket=bucket) for bucket in sorted(set(buckets))]
    if marks:
        StaleBucket.objects.bulk_create(marks)


def stale_marks_pg(center_id: Any, buckets: Iterable[datetime], *, where: str) -> tuple[str, list[Any]]:
    """`mark_stale` as a statement (SQL with %s, parameters) for another statement to run as a CTE,
    only when `where` holds (reporting.ingest_sql.write_one: one event's write). PostgreSQL."""
    return _stale_marks_sql_pg(where), [str(center_id), timezone.now(), sorted(set(buckets))]


@functools.cache
def _stale_marks_sql_pg(where: str) -> str:
    quote = connection.ops.quote_name
    table = quote(StaleBucket._meta.db_table)
    center = quote(StaleBucket._meta.get_field("contact_center").column)
    return (
        f"INSERT INTO {table} ({center}, {quote('bucket')}, {quote('marked_at')}) "  # noqa: S608
        f"SELECT %s::uuid, b, %s::timestamptz FROM unnest(%s::timestamptz[]) AS b WHERE {where}"
    )


def fold_stale(
    *,
    settle: float = 0.0,
    max_lag: float = 0.0,
    limit: int = FOLD_LIMIT,
    using: str = DEFAULT_DB_ALIAS,
) -> tuple[int, int]:
    """Recompute the buckets marked stale (of the `limit` oldest marks) from their records, then
    delete their marks read; returns (buckets recomputed, marks deleted). One transaction.

    A bucket is recomputed once its newest mark is `settle` seconds old (no event has touched it
    since) or its oldest `max_lag` seconds old (calls keep touching it): a recompute reads all of
    the bucket's records, so a quarter hour taking events every second is recomputed at most
    once per `max_lag`, not once per event. 0 and 0: every marked bucket now.

    Exact under concurrent ingestion: a mark is committed with the records that made it, so the
    recompute (later statements, later snapshots) sees at least those; a mark committed after the
    read is not deleted (by id) and its bucket is recomputed next time."""
    connection = connections[using]
    with transaction.atomic(using=using):
        _lock_rollups(connection)
        marks = list(
            StaleBucket.objects.using(using)
            .order_by("id")
            .values_list("id", "contact_center_id", "bucket", "marked_at")[:limit]
        )
        now = timezone.now()
        newest: dict[tuple[Any, datetime], datetime] = {}
        oldest: dict[tuple[Any, datetime], datetime] = {}
        for _, center_id, bucket, marked_at in marks:
            key = (center_id, bucket)
            newest[key] = max(newest.get(key, marked_at), marked_at)
            oldest.setdefault(key, marked_at)  # ids rise with time: the first read is the oldest
        ready = {
            key
            for key in newest
            if (now - newest[key]).total_seconds() >= settle or (now - oldest[key]).total_seconds() >= max_lag
        }
        if not ready:
            return 0, 0
        by_center: dict[Any, set[datetime]] = defaultdict(set)
        for center_id, bucket in ready:
            by_center[center_id].add(bucket)
        for center_id, buckets in by_center.items():
            _rebuild(center_id, connection, buckets=buckets)
        done = [pk for pk, center_id, bucket, _ in marks if (center_id, bucket) in ready]
        StaleBucket.objects.using(using).filter(id__in=done).delete()
    return len(ready), len(done)


def fold_all_stale(*, using: str = DEFAULT_DB_ALIAS) -> int:
    """Every marked bucket recomputed now (in rounds of `fold_stale`'s limit); returns the buckets
    recomputed."""
    total = 0
    while True:
        folded, marks = fold_stale(using=using)
        total += folded
        if marks < FOLD_LIMIT:
            return total


def recompute_buckets(center_id: Any, buckets: Iterable[datetime], *, using: str = DEFAULT_DB_ALIAS) -> None:
    """Recompute a center's rollup rows of `buckets` now, in the caller's transaction if any
    (reporting.history's bulk load: its records are in the reports as soon as they are written)."""
    buckets = set(buckets)
    if not buckets:
        return
    connection = connections[using]
    with transaction.atomic(using=using):
        _lock_rollups(connection)
        _rebuild(center_id, connection, buckets=buckets)


def _lock_rollups(connection: Any) -> None:
    """One writer of the rollups at a time (fold workers, rebuilds, bulk loads): two recomputes of
    one bucket would each delete its rows and insert them again, and the second insert would
    meet the first's rows. Held until the transaction ends. SQLite has one writer anyway."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ROLLUPS_LOCK])


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
    # Set from the handoff rollups after (_handoff_counts): 0 here.
    sums.update({name: "0" for name in _HANDOFF_COUNTS})
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


def rebuild_rollups(*, center_id: Any, using: str = DEFAULT_DB_ALIAS) -> tuple[int, int]:
    """A center's rollups recomputed from its records and handoffs, in one transaction of the
    database `using`; returns the rows written."""
    connection = connections[using]
    with transaction.atomic(using=using):
        _lock_rollups(connection)
        _rebuild(center_id, connection)
        return (
            CallRollup.objects.using(using).filter(contact_center_id=center_id).count(),
            HandoffRollup.objects.using(using).filter(contact_center_id=center_id).count(),
        )


def rebuild_every_center(*, using: str = DEFAULT_DB_ALIAS) -> None:
    """`rebuild_rollups` for each center holding calls (the migrations that change the rollups)."""
    # order_by(): the model's ordering would join its columns to the DISTINCT (a row per record).
    centers = CallRecord.objects.using(using).order_by().values_list("contact_center_id", flat=True)
    for center_id in centers.distinct():
        rebuild_rollups(center_id=center_id, using=using)


def _ranges(buckets: Iterable[datetime]) -> list[tuple[datetime, datetime]]:
    """The 15-minute `buckets` as ranges of consecutive ones (a day of them is one range, which
    the records' (center, start) index reads in one sweep)."""
    ranges: list[list[datetime]] = []
    step = timedelta(seconds=BUCKET_SECONDS)
    for bucket in sorted(buckets):
        if ranges and ranges[-1][1] == bucket:
            ranges[-1][1] = bucket + step
        else:
            ranges.append([bucket, bucket + step])
    return [(low, high) for low, high in ranges]


def _in_ranges(ranges: Sequence[tuple[datetime, datetime]] | None, field: str) -> Q:
    """`field` (a start) within one of `ranges`; None: any start."""
    if ranges is None:
        return Q(**{f"{field}__isnull": False})
    q = Q()
    for low, high in ranges:
        q |= Q(**{f"{field}__gte": low, f"{field}__lt": high})
    return q


def _rebuild(center_id: Any, connection: Any, *, buckets: Iterable[datetime] | None = None) -> None:
    """Delete a center's rollup rows (of `buckets` only, when given) and insert them again from
    the records of those buckets. Under _lock_rollups."""
    using = connection.alias
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            # One big GROUP BY: JIT compiling its ~170 aggregates costs seconds, and with the
            # default work_mem the groups spill to disk.
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '256MB'")
    rows, ranges = Q(), None
    if buckets is not None:
        buckets = list(buckets)
        rows, ranges = Q(bucket__in=buckets), _ranges(buckets)
    CallRollup.objects.using(using).filter(rows, contact_center_id=center_id).delete()
    HandoffRollup.objects.using(using).filter(rows, contact_center_id=center_id).delete()
    values = [center_id, *(moment for bounds in ranges or () for moment in bounds)]
    with connection.cursor() as cursor:
        for sql, params in _compiled(connection, None if ranges is None else len(ranges)).filled(values):
            cursor.execute(sql, params)


class _Compiled:
    """The rebuild's statements for a center and a number of ranges, compiled once per process.

    Why: Django compiling the records' ~170 aggregates (a 35-branch CASE per duration) took ~15 ms
    per statement, most of a one-bucket fold (measured on the 10 M bench database), and the fold
    worker recompiled them for each center each second. They are compiled with stand-in values
    (a center id and range bounds no real call has); `filled` puts the real ones in their places.
    """

    def __init__(self, connection: Any, ranges: int | None) -> None:
        stand_ins: list[Any] = [_STAND_IN_CENTER]
        bounds = None
        if ranges is not None:
            moments = [_STAND_IN_MOMENT + timedelta(days=index) for index in range(2 * ranges)]
            bounds = list(zip(moments[::2], moments[1::2], strict=True))
            stand_ins += moments
        self.connection = connection
        self.statements = _statements(connection, _STAND_IN_CENTER, bounds)
        self.slots: list[list[tuple[int, int]]] = []
        adapted = self._adapted(stand_ins)
        for _, params in self.statements:
            slots = [
                (i, k) for i, param in enumerate(params) for k, value in enumerate(adapted) if param == value
            ]
            found = {k for _, k in slots}
            if found != set(range(len(adapted))):  # would silently rebuild the wrong rows
                raise AssertionError("a rebuild statement lost a stand-in value")
            self.slots.append(slots)

    def _adapted(self, values: Sequence[Any]) -> list[Any]:
        """The values as the compiled statements hold them (the first a center id, then starts)."""
        center = ContactCenter._meta.pk.get_db_prep_value(values[0], self.connection)
        started = CallRecord._meta.get_field("started_at")
        return [center, *(started.get_db_prep_value(v, self.connection) for v in values[1:])]

    def filled(self, values: Sequence[Any]) -> list[tuple[str, list[Any]]]:
        adapted = self._adapted(values)
        out = []
        for (sql, params), slots in zip(self.statements, self.slots, strict=True):
            params = list(params)
            for index, k in slots:
                params[index] = adapted[k]
            out.append((sql, params))
        return out


_STAND_IN_CENTER = uuid.UUID("5ca1ab1e-0000-4000-8000-000000000000")
_STAND_IN_MOMENT = datetime(1901, 1, 1, tzinfo=UTC)
_COMPILED: dict[tuple[str, str, int | None], _Compiled] = {}


def _compiled(connection: Any, ranges: int | None) -> _Compiled:
    key = (connection.alias, connection.vendor, ranges)
    if key not in _COMPILED:
        if len(_COMPILED) > 64:
            _COMPILED.clear()
        _COMPILED[key] = _Compiled(connection, ranges)
    return _COMPILED[key]


def _statements(
    connection: Any, center_id: Any, ranges: Sequence[tuple[datetime, datetime]] | None
) -> list[tuple[str, list[Any]]]:
    """The rebuild's two INSERT … SELECT statements (SQL, parameters): the call rollups' and the
    handoff rollups' rows of the center's records that started in `ranges` (None: all)."""
    using = connection.alias
    # Each record's columns computed once in a derived table (OFFSET 0: PostgreSQL would otherwise
    # pull it up and evaluate every CASE again in each of the ~170 sums), then summed per key.
    records = (
        _keyed(
            CallRecord.objects.using(using).filter(
                _in_ranges(ranges, "started_at"), contact_center_id=center_id
            )
        )
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
    calls = (
        f"INSERT INTO {quote(CallRollup._meta.db_table)} ({names}) "  # noqa: S608
        f"SELECT {key}, {', '.join(_summed_per_key())} FROM ({inner} {fence}) per_record GROUP BY {key} "
        # In time order, as ingestion writes them: a report's month of rows then sits on few
        # pages (hashed, a month of handoff rows was spread over 6,193 pages for 28,606 rows).
        f"ORDER BY {key}"
    )
    handoffs = (
        _keyed(
            # By the record's center (a handoff's is its record's): the records come from their
            # (center, start) index, each one's handoffs by its id. With the handoff's own center
            # too, a planner without fresh statistics ANDed in the handoffs' center index per
            # record (12 s for a day of 24,000 records, against 0.3 s).
            Handoff.objects.using(using).filter(
                _in_ranges(ranges, "call_record__started_at"), call_record__contact_center_id=center_id
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
    columns = ("contact_center", *HANDOFF_KEY, "n")
    handoff_names = ", ".join(quote(HandoffRollup._meta.get_field(name).column) for name in columns)
    handoff_sql, handoff_params = handoffs.query.get_compiler(using).as_sql()
    counts_sql, counts_params = _handoff_counts(connection, center_id, ranges)
    return [
        (calls, list(params)),
        (
            f"INSERT INTO {quote(HandoffRollup._meta.db_table)} ({handoff_names}) {handoff_sql}",
            list(handoff_params),
        ),
        (counts_sql, list(counts_params)),
    ]


# The call rollups' handoff counts (the virtual agents' series per bucket), summed from the handoff
# rollups of the same key once those are written: counting each record's handoffs by state in
# the records' query (a subquery per record) made a rebuild of 10 M records take over 13 minutes.
_HANDOFF_COUNTS = {
    "handoffs": Q(),
    "handoffs_completed": Q(state=HandoffState.COMPLETED),
    "handoffs_failed": Q(state=HandoffState.FAILED),
}


def _handoff_counts(
    connection: Any, center_id: Any, ranges: Sequence[tuple[datetime, datetime]] | None
) -> tuple[str, Sequence[Any]]:
    """The UPDATE (SQL, parameters) setting the call rollups' handoff counts in `ranges` (None:
    all) from the handoff rollups: every handoff's record has a call rollup row of its key."""
    rows = CallRollup.objects.using(connection.alias).filter(
        _in_ranges(ranges, "bucket"), contact_center_id=center_id
    )
    same_key = HandoffRollup.objects.filter(
        **{name: OuterRef(name) for name in ("contact_center", *CALL_KEY)}
    ).order_by()
    update = rows.query.chain(UpdateQuery)
    update.add_update_values(
        {
            name: Coalesce(
                Subquery(same_key.filter(q).values("contact_center").annotate(n=Sum("n")).values("n")),
                Value(0),
            )
            for name, q in _HANDOFF_COUNTS.items()
        }
    )
    return update.get_compiler(connection.alias).as_sql()


def _context_value() -> Any:
    return KeyTextTransform(DEFAULT_CONTEXT_KEY, "context")
