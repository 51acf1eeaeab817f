"""The three reports read from the 15-minute rollups (reporting.rollups) instead of the records.

Why: on the raw records a 30-day report of a center holding 10 M calls took 13-49 s (each figure
set a scan of ~800,000 records; bench/README.md). The rollups hold a few dozen rows per
15-minute bucket, so the same report sums ~30,000 narrow rows. Measured with bench/reports.py
(figures in bench/README.md).

Exactness: each rollup row sums the contributions of its records (counts, whole-microsecond sums,
one count per duration bin), so any grouping of rows gives the figures of the union of their
records, and a local hour, day or week of a zone whose offsets are whole quarter hours (+05:30,
+05:45, DST) is a union of whole 15-minute UTC buckets. `can_answer` sends every other case
(a zone with another offset at the window's ends, REPORTS_FROM_ROLLUPS off) to the raw path, as
it does a context header other than X-Reason for the handoffs' context breakdown, and the
campaigns' `leads` (a distinct count: it does not add up) is read from the records.
tests/reporting/test_rollups.py checks every report x interval x filter against the raw path.
"""

from __future__ import annotations

import functools
import itertools
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from operator import itemgetter
from typing import Any

from django.conf import settings
from django.db import connections
from django.db.models import Count, QuerySet, Sum

from reporting.models import NO_ID, CallRollup, HandoffRollup, HandoffState
from reporting.reports import aggregate, campaigns, queues, virtual_agents
from reporting.reports.durations import BINS, histogram_columns, p50_p90_of_counts
from reporting.reports.filters import DEFAULT_CONTEXT_KEY, ReportFilters, cohort
from reporting.reports.predicates import DIALLED
from reporting.reports.sql import Bucket, BucketOfQuarterHour, Epoch, UtcQuarterHour, bucket_axis, without_jit
from routing.models import Queue
from virtual_agents.models import VirtualAgent

QUARTER_HOUR = 15 * 60

Sums = Sequence[int]  # in the order of the columns summed


def can_answer(filters: ReportFilters) -> bool:
    """Whether the rollups hold this report exactly: the window's ends fall on 15-minute UTC
    boundaries (the zone's offset there is a whole number of quarter hours)."""
    if not settings.REPORTS_FROM_ROLLUPS:
        return False
    return all(_on_quarter(moment) for moment in filters.window)


def read(filters: ReportFilters, rollups: Callable[..., Any], raw: Callable[..., Any], **kwargs: Any) -> Any:
    """A report from the rollups (`rollups`) when they can answer it, else from the records
    (`raw`), in one read transaction without JIT (reporting.reports.sql.without_jit)."""
    with without_jit():
        return (rollups if can_answer(filters) else raw)(filters, **kwargs)


def _on_quarter(moment: datetime) -> bool:
    offset = moment.utcoffset()
    return offset is not None and offset.total_seconds() % QUARTER_HOUR == 0


def _rollups(model: type[Any], filters: ReportFilters) -> QuerySet[Any]:
    """The rollup rows of the report's cohort (reporting.reports.filters.cohort_q, on the keys)."""
    start, end = filters.window
    rows = model.objects.filter(contact_center=filters.center, bucket__gte=start, bucket__lt=end)
    if filters.virtual_agents:
        rows = rows.filter(virtual_agent__in=filters.virtual_agents)
    if filters.queues:
        rows = rows.filter(queue__in=filters.queues)
    if filters.campaigns:
        rows = rows.filter(campaign_ref__in=[str(pk) for pk in filters.campaigns])
    if filters.direction:
        rows = rows.filter(direction=filters.direction)
    return rows


def _summed(
    rows: QuerySet[Any], columns: Sequence[str], by: Sequence[str], **expressions: Any
) -> list[tuple[tuple[Any, ...], Sums]]:
    """(group, the sums of `columns` in their order) per group of `by` (names, or names of
    `expressions`). Read with a plain cursor: the ORM's per-value converters cost more than the
    query for a month of 15-minute groups (~3,000 groups x ~80 sums)."""
    named = {f"s{index}": Sum(column) for index, column in enumerate(columns)}
    grouped = rows.order_by()
    if expressions:
        grouped = grouped.annotate(**expressions)
    query = grouped.values(*by).annotate(**named).values_list(*by, *named).query
    sql, params = query.get_compiler(grouped.db).as_sql()  # the replica's, when reading from it
    connection = connections[grouped.db]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched = cursor.fetchall()
    width = len(by)
    convert = _group_converters(connection, by)
    if not any(convert):
        return [(row[:width], list(map(int, row[width:]))) for row in fetched]  # numeric sums of bigint
    return [
        (
            tuple(value if to is None else to(value) for value, to in zip(row[:width], convert, strict=True)),
            list(map(int, row[width:])),
        )
        for row in fetched
    ]


def _group_converters(connection: Any, by: Sequence[str]) -> list[Callable[[Any], Any] | None]:
    """Buckets are grouped as epoch seconds (parsing thousands of timestamptz values cost more than
    the query); PostgreSQL's driver gives UUIDs, SQLite text."""
    kinds: dict[str, Callable[[Any], Any]] = {"r_bucket": _from_epoch}
    if connection.vendor != "postgresql":
        kinds.update(virtual_agent=_uuid, queue=_uuid)
    return [kinds.get(name) for name in by]


@functools.lru_cache(maxsize=16384)
def _from_epoch(value: int) -> datetime:
    # Cached: a month of 15-minute buckets is read several times per report (calls, handoffs).
    return datetime.fromtimestamp(int(value), UTC)


def _uuid(value: Any) -> uuid.UUID:
    return value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))


def _summed_sets(
    rows: QuerySet[Any], columns: Sequence[str], sets: Sequence[Sequence[str]], **expressions: Any
) -> list[list[tuple[tuple[Any, ...], Sums]]]:
    """`_summed` for several groupings of the same rows, one list per grouping of `sets`.

    On PostgreSQL in one scan (GROUP BY GROUPING SETS): summing ~80 columns of a month of rollup rows
    twice, per bot and per bucket, was half of a report's SQL time (bench/reports.py at 10 M records).
    Each grouping's groups come ordered by their first sum, largest first, then by their keys in the
    database's collation (what the breakdowns' top-N needs). Elsewhere one `_summed` per grouping."""
    connection = connections[rows.db]
    if connection.vendor != "postgresql":
        return [
            _ordered(_summed(rows, columns, by, **{n: e for n, e in expressions.items() if n in by}))
            for by in sets
        ]
    keys = list(dict.fromkeys(name for by in sets for name in by))
    # Selected in the order asked (values_list, Django 5.2), which the aliases below follow; summed
    # `columns` may be annotations of `rows` (the handoffs' per-state counts).
    fields = [name for name in keys if name not in expressions]
    annotated = [name for name in keys if name in expressions]
    base = rows.order_by()
    if annotated:
        base = base.annotate(**{name: expressions[name] for name in annotated})
    sql, params = base.values_list(*fields, *columns, *annotated).query.get_compiler(base.db).as_sql()
    key_alias = {name: f"k{index}" for index, name in enumerate(keys)}
    aliases = [key_alias[n] for n in fields] + [f"c{i}" for i in range(len(columns))]
    aliases += [key_alias[n] for n in annotated]
    all_keys = ", ".join(key_alias[name] for name in keys)
    groupings = ", ".join("(" + ", ".join(key_alias[name] for name in by) + ")" for by in sets)
    # bigint, not numeric (a bigint column's SUM): read as ints, no Decimal to convert.
    sums = ", ".join(f"SUM(c{i})::bigint" for i in range(len(columns)))
    # Only Django's compiled SQL (values passed as params) and this function's own aliases.
    statement = (
        f"SELECT GROUPING({all_keys}), {all_keys}, {sums} FROM ({sql}) AS rows ({', '.join(aliases)}) "  # noqa: S608
        f"GROUP BY GROUPING SETS ({groupings}) ORDER BY 1, {len(keys) + 2} DESC, {all_keys}"
    )
    fetched = _fetched_binary(connection, statement, params)
    # GROUPING(): one bit per key, the first key's the highest, set when the key is not grouped.
    masks = {
        sum(1 << (len(keys) - 1 - index) for index, name in enumerate(keys) if name not in by): position
        for position, by in enumerate(sets)
    }
    width = 1 + len(keys)
    convert = _group_converters(connection, keys)
    out: list[list[tuple[tuple[Any, ...], Sums]]] = [[] for _ in sets]
    # The rows come one grouping after another (ORDER BY 1): each read by one comprehension with
    # its own key reader (a loop asking each row its grouping took 4.4 against 2.3 ms for the
    # calls' 2,883 rows of a month by 15 minutes at 10 M records, timeit).
    for mask, grouping in itertools.groupby(fetched, key=itemgetter(0)):
        position = masks[mask]
        key = _key_reader([(1 + keys.index(name), convert[keys.index(name)]) for name in sets[position]])
        out[position] = [(key(row), row[width:]) for row in grouping]
    return out


def _fetched_binary(connection: Any, statement: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    """The rows of `statement` on PostgreSQL, sent by the server in binary: a month of 15-minute
    sums is ~2,900 rows x 81 bigints, which psycopg parsed from text in 17.7 ms against 6.9 from
    binary (median of 8, the bench's 10 M-record center). Django's cursors bind parameters on the
    client, which psycopg allows only with text results: this one binds them on the server (as
    voiso_byob.db.prepared_cursor does), still through Django's cursor wrapper (tests count it,
    DEBUG logs it). So psycopg prepares it on a kept connection's PREPARE_THRESHOLD-th run, as it
    does the hot paths' statements (settings)."""
    import psycopg

    connection.ensure_connection()
    raw = psycopg.Cursor(connection.connection)
    raw.format = psycopg.pq.Format.BINARY
    with connection._prepare_cursor(raw) as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall()


def _key_reader(
    picks: list[tuple[int, Callable[[Any], Any] | None]],
) -> Callable[[Sequence[Any]], tuple[Any, ...]]:
    """A row's group: the columns at `picks`, each through its converter (None: as read)."""
    if len(picks) == 1:
        ((at, to),) = picks
        return (lambda row: (row[at],)) if to is None else (lambda row: (to(row[at]),))
    if not any(to for _, to in picks):
        return itemgetter(*(at for at, _ in picks))  # a tuple, for two columns or more
    return lambda row: tuple([row[at] if to is None else to(row[at]) for at, to in picks])


def _ordered(groups: list[tuple[tuple[Any, ...], Sums]]) -> list[tuple[tuple[Any, ...], Sums]]:
    """`_summed_sets`' order on SQLite (whose collation of the keys is code point order)."""
    return sorted(groups, key=lambda item: (-item[1][0], *((k is None, k) for k in item[0])))


def _add(into: list[int], sums: Sums) -> None:
    for index, value in enumerate(sums):
        into[index] += value


def _merged(
    groups: Iterable[tuple[Any, Sums]], key: Callable[[Any], Any], width: int
) -> dict[Any, list[int]]:
    out: dict[Any, list[int]] = {}
    for group, sums in groups:
        _add(out.setdefault(key(group), [0] * width), sums)
    return out


def _total(groups: Iterable[tuple[Any, Sums]], width: int) -> list[int]:
    out = [0] * width
    for _, sums in groups:
        _add(out, sums)
    return out


def _with_series(
    rows: QuerySet[Any], columns: Sequence[str], by: Sequence[str], filters: ReportFilters
) -> tuple[list[tuple[tuple[Any, ...], Sums]], dict[datetime, Sums]]:
    """The sums per group of `by` and per bucket of the report's interval (none for "none")."""
    if filters.interval == "none":
        return _summed(rows, columns, by), {}
    groups, buckets = _summed_sets(rows, columns, [by, ["r_bucket"]], r_bucket=_bucket_epoch(filters))
    return groups, {group[0]: sums for group, sums in buckets}


def _bucket_epoch(filters: ReportFilters) -> Epoch:
    """The report's bucket of a rollup row, as epoch seconds. By 15 minutes it is the row's own
    bucket: the local quarter hour is the UTC one (can_answer)."""
    if filters.interval == "15m":
        return Epoch("bucket")
    return Epoch(Bucket("bucket", filters.interval, filters.tz))


def _known(model: type[Any], ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    wanted = {pk for pk in ids if pk != NO_ID}
    return set(model.objects.filter(pk__in=wanted).values_list("pk", flat=True)) if wanted else set()


class _Family:
    """How one report reads its figures off summed CallRollup columns (`columns`, in that order)."""

    def __init__(
        self,
        counts: dict[str, str],
        durations: Sequence[str],
        derive: Callable[[dict[str, Any]], dict[str, Any]],
    ) -> None:
        self.counts = counts  # figure name -> rollup column
        self.durations = durations
        self.derive = derive
        self.columns = [
            *counts.values(),
            *(f"{prefix}_{part}" for prefix in durations for part in ("n", "us")),
            *(name for prefix in durations for name in histogram_columns(prefix)),
        ]
        self.width = len(self.columns)
        at = {column: index for index, column in enumerate(self.columns)}
        self._counts = [(figure, at[column]) for figure, column in counts.items()]
        # The figures' names and their sums' places, spelled once: values() runs for each bucket.
        self._durations = []
        for prefix in durations:
            bins_at = at[histogram_columns(prefix)[0]]
            names = [f"{prefix}_{part}" for part in ("n", "us", "p50", "p90")]
            places = (at[f"{prefix}_n"], at[f"{prefix}_us"], slice(bins_at, bins_at + BINS))
            self._durations.append((*names, *places))
        self._empty = self.values([0] * self.width)

    def values(self, sums: Sums | None) -> dict[str, Any]:
        """The figures as the raw path's aggregates give them, before `derive`."""
        if sums is None:
            return dict(self._empty)
        out: dict[str, Any] = {figure: sums[index] for figure, index in self._counts}
        for n_name, us_name, p50_name, p90_name, n_at, us_at, bins in self._durations:
            count = sums[n_at]
            out[n_name] = count
            out[us_name] = sums[us_at] if count else None
            out[p50_name], out[p90_name] = p50_p90_of_counts(sums[bins])
        return out

    def derived(self, sums: Sums | None) -> dict[str, Any]:
        return self.derive(self.values(sums))

    def series(self, buckets: dict[datetime, Sums], filters: ReportFilters) -> list[dict[str, Any]]:
        """`aggregate.zero_filled` of the derived figures, each point built once in place (no
        dict of found values, no copies of them): `buckets` by their UTC start."""
        series = []
        for bucket, utc in _axis(filters):
            point = self.derived(buckets.get(utc))
            point["bucket"] = bucket
            series.append(point)
        return series


def _axis(filters: ReportFilters) -> tuple[tuple[datetime, datetime], ...]:
    """Each bucket of the report's window (none for "none"): its start in the report's zone and
    its UTC start, by which the summed rollups are found."""
    if filters.interval == "none":
        return ()
    start, end = filters.window
    return bucket_axis(start, end, filters.interval, filters.tz)


BOTS = _Family(
    {
        "calls": "calls",
        "contained": "contained",
        "handed_off": "handed_off",
        "abandoned_in_bot": "abandoned_in_bot",
        "in_progress": "in_bot",
        # Also read from the handoff rollups for the rows and totals (by target, per bot); the
        # series takes them from here: grouping the handoff rows by bucket as well was a third of
        # their query (47 against 24 ms for a month by 15 minutes at 10 M records).
        "handoffs_requested": "handoffs",
        "handoffs_completed": "handoffs_completed",
        "handoffs_failed": "handoffs_failed",
    },
    ("bot_time", "time_to_handoff"),
    virtual_agents._derive_calls,
)
QUEUES = _Family(
    {
        "offered": "offered",
        "answered": "answered",
        "abandoned": "abandoned",
        "waiting": "waiting",
        "answered_within_service_level": "answered_within_service_level",
    },
    ("wait", "handle_time"),
    queues._derive,
)
CAMPAIGNS = _Family(
    {
        "attempts": "attempts",
        "connects": "connects",
        "completed": "completed",
        "busy": "busy",
        "no_answer": "no_answer",
        "machine": "machine",
        "failed": "failed",
        "in_progress": "ringing",
        "dropped": "dropped",
        "handoffs": "attempts_handed_off",
    },
    (),
    campaigns._derive,
)


def _known_or_none(known: set[uuid.UUID]) -> Callable[[tuple[Any, ...]], uuid.UUID | None]:
    """A row's key as the raw path groups it: a bot or queue since deleted (or none) is None."""
    return lambda group: group[0] if group[0] in known else None


# --- virtual agents ---------------------------------------------------------------------------

_HANDOFF_STATES = {"handoffs_completed": HandoffState.COMPLETED, "handoffs_failed": HandoffState.FAILED}


def _handoff_values(by_state: dict[str, int], by_target: dict[str, int] | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {"handoffs_requested": sum(by_state.values())}
    for name, state in _HANDOFF_STATES.items():
        values[name] = by_state.get(state, 0)
    if by_target is not None:
        for name, value in virtual_agents.TARGET_NAMES.items():
            values[f"to_{name}"] = by_target.get(value, 0)
    return values


def virtual_agent_report(filters: ReportFilters, *, context_key: str = DEFAULT_CONTEXT_KEY) -> dict[str, Any]:
    calls = _rollups(CallRollup, filters)
    handoffs = _rollups(HandoffRollup, filters)

    per_bot_groups, buckets = _with_series(calls, BOTS.columns, ["virtual_agent"], filters)
    by_handoff = _handoff_groupings(handoffs)
    handoff_groups = [(group, sums[0]) for group, sums in by_handoff["bot"] if sums[0]]
    known = _known(
        VirtualAgent, [group[0] for group, _ in per_bot_groups] + [group[0] for group, _ in handoff_groups]
    )
    bot_key = _known_or_none(known)

    total = BOTS.derived(_total(per_bot_groups, BOTS.width))
    per_bot = [
        {"key": key, **BOTS.derived(sums)}
        for key, sums in _merged(per_bot_groups, bot_key, BOTS.width).items()
    ]

    by_state: dict[str, int] = defaultdict(int)
    by_target: dict[str, int] = defaultdict(int)
    bot_states: dict[Any, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for (bot, target_type, state), n in handoff_groups:
        by_state[state] += n
        by_target[target_type] += n
        bot_states[bot_key((bot,))][state] += n
    handoff_totals = virtual_agents._derive_handoffs(_handoff_values(by_state, by_target))
    per_bot_handoffs = [
        {"key": key, **virtual_agents._derive_handoffs(_handoff_values(states))}
        for key, states in bot_states.items()
    ]

    if context_key == DEFAULT_CONTEXT_KEY:
        by_context = _by_reason(by_handoff["reason"])
    else:  # the rollups keep X-Reason only: another header is read from the handoffs
        by_context = virtual_agents._by_context(virtual_agents.handoffs_of(filters), context_key)

    return virtual_agents.assemble_report(
        filters,
        total=total,
        handoff_totals=handoff_totals,
        failures=_failures(by_handoff["failure"]),
        by_context=by_context,
        per_bot=per_bot,
        per_bot_handoffs=per_bot_handoffs,
        series=_series(buckets, filters),
    )


_HANDOFF_GROUPINGS = {
    "bot": ["virtual_agent", "target_type", "state"],
    "reason": ["reason"],
    "failure": ["state", "failure_reason", "sip_status"],
}


def _handoff_groupings(handoffs: QuerySet[Any]) -> dict[str, list[tuple[tuple[Any, ...], Sums]]]:
    """The handoff rollups' counts by each of _HANDOFF_GROUPINGS, in one scan."""
    found = _summed_sets(handoffs, ["n"], list(_HANDOFF_GROUPINGS.values()))
    return dict(zip(_HANDOFF_GROUPINGS, found, strict=True))


def _series(buckets: dict[datetime, Sums], filters: ReportFilters) -> list[dict[str, Any]]:
    """The points of virtual_agents.assemble_report's series: each bucket's call and handoff
    figures in one dict (both from the call rollups). Two zero-filled series (their found figures
    copied into each point), merged point by point after, took 62 ms median (35 min) for a month
    by 15 minutes at 10 M records; this 29 (23) (timeit, the bench's rollup sums)."""
    series = BOTS.series(buckets, filters)
    for point in series:
        virtual_agents._derive_handoffs(point)
    return series


def _failures(groups: list[tuple[tuple[Any, ...], Sums]]) -> list[dict[str, Any]]:
    """As virtual_agents._failures orders and cuts them (_summed_sets' order: count, then keys)."""
    failed = [
        (reason, sip_status, sums[0])
        for (state, reason, sip_status), sums in groups
        if state == HandoffState.FAILED and sums[0] > 0
    ]
    return [
        {"reason": reason, "sip_status": sip_status or None, "count": count}
        for reason, sip_status, count in failed[: virtual_agents.BREAKDOWN_LIMIT]
    ]


def _by_reason(groups: list[tuple[tuple[Any, ...], Sums]]) -> dict[str, Any]:
    values = [{"value": reason, "count": sums[0]} for (reason,), sums in groups if sums[0] > 0]
    return {"key": DEFAULT_CONTEXT_KEY, "values": values[: virtual_agents.BREAKDOWN_LIMIT]}


# --- queues -----------------------------------------------------------------------------------


def queue_report(filters: ReportFilters) -> dict[str, Any]:
    calls = _rollups(CallRollup, filters).filter(offered__gt=0)
    groups, buckets = _with_series(calls, QUEUES.columns, ["queue"], filters)
    queue_key = _known_or_none(_known(Queue, [group[0] for group, _ in groups]))
    total = QUEUES.derived(_total(groups, QUEUES.width))
    grouped = [
        {"key": key, **QUEUES.derived(sums)}
        for key, sums in _merged(groups, queue_key, QUEUES.width).items()
        if sums[0]  # offered
    ]
    series = QUEUES.series(buckets, filters)
    return queues.assemble_report(filters, total=total, grouped=grouped, series=series)


# --- campaigns --------------------------------------------------------------------------------


def _record_bucket(filters: ReportFilters) -> Bucket | UtcQuarterHour:
    """A record's report bucket; by 15 minutes the UTC quarter hour is the local one (can_answer)."""
    if filters.interval == "15m":
        return UtcQuarterHour("started_at")
    return Bucket("started_at", filters.interval, filters.tz)


def campaign_report(filters: ReportFilters) -> dict[str, Any]:
    calls = _rollups(CallRollup, filters).filter(attempts__gt=0)
    groups, sums_by_bucket = _with_series(calls, CAMPAIGNS.columns, ["campaign_ref"], filters)
    # Leads are a distinct count, which sums of buckets cannot give: read from the records.
    total_leads, row_leads, bucket_leads = _distinct_leads(filters)
    total_sums = _total(groups, CAMPAIGNS.width)
    total = CAMPAIGNS.derive({**CAMPAIGNS.values(total_sums), "leads": total_leads})
    grouped = [
        {"key": ref, **CAMPAIGNS.derive({**CAMPAIGNS.values(sums), "leads": row_leads.get(ref, 0)})}
        for (ref,), sums in groups
        if sums[0]  # attempts
    ]
    series = []
    if filters.interval != "none":
        found = {
            bucket: {**CAMPAIGNS.values(sums_by_bucket.get(bucket)), "leads": bucket_leads.get(bucket, 0)}
            for bucket in set(sums_by_bucket) | set(bucket_leads)
        }
        series = aggregate.zero_filled(
            filters, found, {**CAMPAIGNS.values(None), "leads": 0}, CAMPAIGNS.derive
        )
    return campaigns.assemble_report(filters, total=total, grouped=grouped, series=series)


def _distinct_leads(filters: ReportFilters) -> tuple[int, dict[str, int], dict[datetime, int]]:
    """The dialled records' distinct leads: in total, per campaign, per bucket (UTC start; none for
    "none"). On PostgreSQL in one scan: the distinct (lead, campaign) and (lead, bucket) pairs by
    hashing (GROUPING SETS), then counted; three COUNT(DISTINCT) queries, each a sort of the same
    records, took 180 against 120 ms for a month of a 10 M-call center (bench/reports.py)."""
    dialled = cohort(filters).filter(DIALLED).order_by()
    by_bucket = filters.interval != "none"
    connection = connections[dialled.db]
    if connection.vendor != "postgresql":
        leads = Count("lead_ref", distinct=True)
        total = dialled.aggregate(n=leads)["n"]
        per_row = dict(dialled.values("campaign_ref").annotate(n=leads).values_list("campaign_ref", "n"))
        per_bucket = {}
        if by_bucket:
            grouped = dialled.annotate(b=_record_bucket(filters)).values("b").annotate(n=leads)
            per_bucket = {row["b"].astimezone(UTC): row["n"] for row in grouped}
        return total, per_row, per_bucket
    if by_bucket:
        start, end = filters.window
        bucket = (
            Epoch(_record_bucket(filters))
            if filters.interval == "15m"
            else BucketOfQuarterHour("started_at", start, end, filters.interval, filters.tz)
        )
        pairs = dialled.annotate(b=bucket).values_list("lead_ref", "campaign_ref", "b")
        names, grouping = "lead, campaign, bucket", "GROUPING(campaign, bucket)"
        sets = "(lead), (lead, campaign), (lead, bucket)"
    else:
        pairs = dialled.values_list("lead_ref", "campaign_ref")
        names, grouping = "lead, campaign", "GROUPING(campaign) * 2 + 1"  # as if bucket were there
        sets = "(lead), (lead, campaign)"
    bucket = "bucket" if by_bucket else "NULL::bigint"
    sql, params = pairs.query.get_compiler(dialled.db).as_sql()
    # Only Django's compiled SQL (values passed as params) and this function's own names.
    statement = (
        "SELECT grouping_set, campaign, bucket, count(*) FROM ("  # noqa: S608
        f"SELECT {grouping} AS grouping_set, campaign, {bucket} AS bucket FROM ({sql}) AS dialled ({names}) "
        f"GROUP BY GROUPING SETS ({sets})) AS pairs GROUP BY grouping_set, campaign, bucket"
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        fetched = cursor.fetchall()
    # GROUPING(campaign, bucket): 3 neither (the leads), 1 by campaign, 2 by bucket.
    total, per_row, per_bucket = 0, {}, {}
    for grouping_set, campaign, bucket_epoch, n in fetched:
        if grouping_set == 3:
            total = n
        elif grouping_set == 1:
            per_row[campaign] = n
        else:
            per_bucket[_from_epoch(bucket_epoch)] = n
    return total, per_row, per_bucket
