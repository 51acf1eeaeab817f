"""The three SQL pieces the reports need that Django lacks, on PostgreSQL and SQLite alike.

- `Bucket(field, interval, zone)`: the start of the field's bucket (15m, hour, day, week) in an IANA
  zone, as an instant. Exact across DST: 15 minutes and an hour are cut off the *instant* by the
  local minutes past the bucket's start (so the repeated hour of a fall-back night is two buckets,
  and +05:30 / +05:45 zones group on their own hours), a day and a week start at local midnight
  (Monday for a week), so a 23- or 25-hour day is one bucket. One known gap: a zone whose DST
  shift is not a whole number of buckets (Lord Howe's 30 minutes, for hourly buckets, two nights a
  year) gets one hour bucket that starts 30 minutes early and overlaps its neighbour; SQL and Python
  agree on it, so the figures stay consistent.
- `Seconds(end, start)`: end - start in seconds.
- Durations (means in whole microseconds, binned discrete percentiles): reporting.reports.durations.

SQLite gets `voiso_bucket`, `voiso_seconds_between`, `voiso_micros_between` and
`voiso_percentile_disc` on every new connection (reporting.apps), written in Python: the same
code the tests check.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_right
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from django.db import connections, router, transaction
from django.db.models import DateTimeField, Expression, F, FloatField, Func, IntegerField

from reporting.reports import durations

QUARTER_SECONDS = 15 * 60

INTERVALS = ("15m", "hour", "day", "week")


def bucket_start(moment: datetime, interval: str, zone: ZoneInfo) -> datetime:
    """The start of the bucket holding `moment` (aware), as an aware datetime in `zone`."""
    local = moment.astimezone(zone)
    if interval in ("15m", "hour"):
        minutes = local.minute % 15 if interval == "15m" else local.minute
        past = timedelta(minutes=minutes, seconds=local.second, microseconds=local.microsecond)
        # Subtracted from the instant, not the wall clock: exact on a fall-back night.
        return (moment.astimezone(UTC) - past).astimezone(zone)
    day = local.date()
    if interval == "week":
        day -= timedelta(days=day.weekday())
    elif interval != "day":
        raise ValueError(f"unknown interval {interval!r}")
    return datetime.combine(day, time.min, tzinfo=zone)


def next_bucket(start: datetime, interval: str, zone: ZoneInfo) -> datetime:
    """The start of the bucket after the one that starts at `start`."""
    if interval in ("15m", "hour"):
        step = timedelta(minutes=15 if interval == "15m" else 60)
        after = start.astimezone(UTC)
        candidate = after + step
        while True:
            # Compared in UTC: aware datetimes sharing a tzinfo compare by wall clock, which a
            # fall-back night repeats. A zone whose offset moves by 30 minutes (Lord Howe) may
            # need one more step.
            found = bucket_start(candidate, interval, zone)
            if found.astimezone(UTC) > after:
                return found
            candidate += step
    days = 7 if interval == "week" else 1
    return datetime.combine(start.astimezone(zone).date() + timedelta(days=days), time.min, tzinfo=zone)


@functools.lru_cache(maxsize=32)
def bucket_starts(first: datetime, end: datetime, interval: str, zone: ZoneInfo) -> tuple[datetime, ...]:
    """Every bucket start from the bucket of `first` up to (not including) `end`: the zero-filled axis.
    Kept for the next report of the same window (a report draws two series on one axis)."""
    if interval == "15m":
        quarters = _quarter_hours(first, end, zone)
        if quarters is not None:
            return quarters
    return tuple(_walked(first, end, interval, zone))


@functools.lru_cache(maxsize=32)
def bucket_axis(
    first: datetime, end: datetime, interval: str, zone: ZoneInfo
) -> tuple[tuple[datetime, datetime], ...]:
    """`bucket_starts` with each start's UTC instant beside it: the key the reports' grouped
    figures are found by (converting 2,880 starts again for each series was 5% of a report)."""
    return tuple((start, start.astimezone(UTC)) for start in bucket_starts(first, end, interval, zone))


def _quarter_hours(first: datetime, end: datetime, zone: ZoneInfo) -> tuple[datetime, ...] | None:
    """The 15-minute axis of a zone whose offsets are whole quarter hours: every 15 minutes of UTC
    (what `_walked` gives, ~30 times faster); None when a moment's offset is not."""
    start = bucket_start(first, "15m", zone).astimezone(UTC)
    stop = end.astimezone(UTC)
    count = max(0, math.ceil((stop - start) / timedelta(minutes=15)))
    starts = tuple((start + timedelta(minutes=15 * index)).astimezone(zone) for index in range(count))
    if any(moment.minute % 15 or moment.second or moment.microsecond for moment in starts):
        return None
    return starts


def _walked(first: datetime, end: datetime, interval: str, zone: ZoneInfo) -> list[datetime]:
    starts = []
    current = bucket_start(first, interval, zone)
    while current.astimezone(UTC) < end.astimezone(UTC):
        starts.append(current)
        current = next_bucket(current, interval, zone)
    return starts


_PG_LOCAL = "(%(expr)s AT TIME ZONE %(zone)s)"
_PG_BUCKET = {
    "15m": (
        "(%(expr)s - (" + _PG_LOCAL + " - (date_trunc('hour', " + _PG_LOCAL + ") + "
        "floor(extract(minute FROM " + _PG_LOCAL + ") / 15) * interval '15 minutes')))"
    ),
    "hour": "(%(expr)s - (" + _PG_LOCAL + " - date_trunc('hour', " + _PG_LOCAL + ")))",
    "day": "(date_trunc('day', " + _PG_LOCAL + ") AT TIME ZONE %(zone)s)",
    "week": "(date_trunc('week', " + _PG_LOCAL + ") AT TIME ZONE %(zone)s)",
}


class Bucket(Func):
    """The bucket start of a datetime column in a zone (see the module docstring)."""

    output_field = DateTimeField()

    def __init__(self, expression: str | Expression, interval: str, zone: ZoneInfo) -> None:
        if interval not in INTERVALS:
            raise ValueError(f"unknown interval {interval!r}")
        self.interval, self.zone = interval, zone
        expr = F(expression) if isinstance(expression, str) else expression
        super().__init__(expr)

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError(f"Bucket is not written for {connection.vendor}")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        template = _PG_BUCKET[self.interval]
        # Each %(expr)s / %(zone)s becomes a placeholder: the params repeat in order of appearance.
        ordered: list[Any] = []
        pieces = template.replace("%(expr)s", "\x00E\x00").replace("%(zone)s", "\x00Z\x00").split("\x00")
        out = []
        for piece in pieces:
            if piece == "E":
                out.append(sql)
                ordered.extend(params)
            elif piece == "Z":
                out.append("%s")
                ordered.append(self.zone.key)
            else:
                out.append(piece)
        return "".join(out), ordered

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"voiso_bucket({sql}, %s, %s)", [*params, self.interval, self.zone.key]


class UtcQuarterHour(Func):
    """The start of a datetime column's 15-minute bucket in UTC. In a zone whose offset is a whole
    number of quarter hours it is `Bucket(field, "15m", zone)` at a fraction of the cost (no zone
    conversion per row: 152 against 49 ms over a month of a 10 M-call center's dialled records)."""

    output_field = DateTimeField()

    def __init__(self, expression: str) -> None:
        super().__init__(F(expression))

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError(f"UtcQuarterHour is not written for {connection.vendor}")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"date_bin('15 minutes', {sql}, TIMESTAMPTZ '2000-01-01 00:00:00+00')", params

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        return f"voiso_bucket({sql}, '15m', 'UTC')", params


class BucketOfQuarterHour(Func):
    """The epoch seconds of a datetime column's report bucket (of `interval` in `zone`), found by
    its UTC quarter hour in a table of the window's quarter hours. PostgreSQL only, and only where
    the zone's offset is a whole number of quarter hours in the window (as the rollups need: a
    local hour, day or week is then a run of whole UTC quarter hours).

    Why: converting each record to the zone and truncating (`Epoch(Bucket(…))`) was most of the
    campaigns report's distinct-lead count by hour on a 10 M-call center (bench/reports.py); the
    quarter hour needs no zone, and the table lookup is integer arithmetic. Records must start
    inside the window."""

    output_field = IntegerField()

    def __init__(
        self, expression: str, first: datetime, end: datetime, interval: str, zone: ZoneInfo
    ) -> None:
        super().__init__(F(expression))
        axis = bucket_axis(first, end, interval, zone)
        bucket_utcs = [utc for _, utc in axis]
        self.first = math.floor(first.timestamp()) // QUARTER_SECONDS * QUARTER_SECONDS
        quarters = range(self.first, math.ceil(end.timestamp()), QUARTER_SECONDS)
        epochs = [math.floor(utc.timestamp()) for utc in bucket_utcs]
        self.table = [epochs[bisect_right(epochs, quarter) - 1] for quarter in quarters]

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError(f"BucketOfQuarterHour is not written for {connection.vendor}")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        sql, params = compiler.compile(self.source_expressions[0])
        quarter = (
            f"EXTRACT(EPOCH FROM date_bin('15 minutes', {sql}, TIMESTAMPTZ '2000-01-01 00:00:00+00'))::bigint"
        )
        return (
            f"(%s::bigint[])[({quarter} - %s) / {QUARTER_SECONDS} + 1]",
            [self.table, *params, self.first],
        )


class Seconds(Func):
    """end - start in seconds."""

    output_field = FloatField()

    def __init__(self, end: str, start: str) -> None:
        super().__init__(F(end), F(start))

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError(f"Seconds is not written for {connection.vendor}")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return super().as_sql(
            compiler, connection, template="EXTRACT(EPOCH FROM (%(expressions)s))", arg_joiner=" - "
        )

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        # Not julianday(): its float days lose microseconds, and binned durations compare exactly.
        return super().as_sql(compiler, connection, function="voiso_seconds_between")


# --- SQLite: the same functions, in Python ---------------------------------------------------


def _sqlite_bucket(value: str | None, interval: str, zone: str) -> str | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # Django stores UTC, naive, on SQLite
    start = bucket_start(moment, interval, ZoneInfo(zone)).astimezone(UTC)
    return start.replace(tzinfo=None).isoformat(sep=" ")


class Epoch(Func):
    """A datetime as whole seconds since 1970 (UTC)."""

    output_field = IntegerField()

    def as_sql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        raise NotImplementedError(f"Epoch is not written for {connection.vendor}")

    def as_postgresql(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return super().as_sql(compiler, connection, template="EXTRACT(EPOCH FROM %(expressions)s)::bigint")

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return super().as_sql(compiler, connection, function="voiso_epoch")


def _sqlite_epoch(value: str | None) -> int | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(value)
    return math.floor((moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp())


@contextmanager
def without_jit() -> Iterator[None]:
    """A report's queries on PostgreSQL without JIT compilation (and with 64 MB for each sort and hash),
    in one read transaction: on the raw
    records at 10 M calls JIT cost 2.7-3.9 s per query, more than the work it sped up
    (bench/README.md), and a report's queries are not long enough to win it back."""
    from reporting.models import CallRecord

    alias = router.db_for_read(CallRecord)
    if connections[alias].vendor != "postgresql":
        yield
        return
    with transaction.atomic(using=alias):
        with connections[alias].cursor() as cursor:
            # And sorts and hashes in memory: the campaigns' distinct leads spilled to disk at 4 MB
            # (a month of a 10 M-call center's dialled records sorts in ~15 MB).
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '64MB'")
        yield


def register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    """connection_created receiver: the reports' functions on each new SQLite connection."""
    if connection.vendor != "sqlite":
        return
    connection.connection.create_function("voiso_bucket", 3, _sqlite_bucket, deterministic=True)
    connection.connection.create_function("voiso_epoch", 1, _sqlite_epoch, deterministic=True)
    connection.connection.create_function(
        "voiso_micros_between", 2, durations.sqlite_micros_between, deterministic=True
    )
    connection.connection.create_function(
        "voiso_seconds_between", 2, durations.sqlite_seconds_between, deterministic=True
    )
    connection.connection.create_aggregate("voiso_percentile_disc", 2, durations.SqlitePercentileDisc)
