"""Reports over HTTP on a center holding 10 M call records: p50/p95 per report, interval and filter.

    .venv/bin/python bench/reports.py [--records 10000000] [--days 365] [--runs 20] [--workers 2]
                                      [--rebuild] [--keep-server-log] [--build-only]

1. The database `voiso_bench_reports` (kept between runs; `--rebuild` to start again) holds the demo
   center (`manage.py seed_demo`) and `--records` calls over `--days` days up to the build's day,
   made by generate_calls' bulk path (reporting/history.py: the simulator's and the dialer gateway's
   stories through the demo flows, folded as ingestion folds them, COPY), `--workers` processes each
   taking whole days. Reused when its size, seed and migrations match. The load drops the two
   tables' secondary indexes and constraints and builds them again after (what a restore does),
   then VACUUM ANALYZE, then `rebuild_rollups` (the reports read the 15-minute rollups:
   reporting/rollups.py). Each phase is timed.
2. gunicorn (2 sync workers, DEBUG off, as the README deploys) serves it; a read-scope API key asks
   `/api/v1/reports/virtual-agents/`, `/queues/` and `/campaigns/` for the last 30 days (center
   time zone), every interval (15m, hour, day, week, none), with no filter and with a bot, a queue
   and a direction filter: `--runs` timed requests each, after one untimed. p50 / p95 in ms.
3. EXPLAIN (ANALYZE, BUFFERS) of the queries of the slowest case, run in process.

Prints a table and writes bench/results/reports.json (with `uptime` before and after: the machine
is shared). Target: every case ≤ 300 ms p95. Needs PostgreSQL at 127.0.0.1:5432 and Redis.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    ADMIN_URL,
    GUNICORN,
    admin_execute,
    database_url,
    free_port,
    machine,
    served_env,
    stop,
)

DB_NAME = "voiso_bench_reports"  # --database to keep another build beside it
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/2")
SEED = 14
TARGET_P95_MS = 300.0
REPORTS = ("virtual-agents", "queues", "campaigns")
INTERVALS = ("15m", "hour", "day", "week", "none")
FILTERS = ("none", "bot", "queue", "direction")
TABLES = ("reporting_callrecord", "reporting_handoff")
ROLLUP_TABLES = ("reporting_callrollup", "reporting_handoffrollup")
RESULTS = ROOT / "bench" / "results" / "reports.json"


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def setup_django(db_url: str) -> None:
    from cryptography.fernet import Fernet

    os.environ["DATABASE_URL"] = db_url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiso_byob.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-" + Fernet.generate_key().decode())
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    os.environ.pop("REDIS_URL", None)  # the build needs no channel layer
    import django

    django.setup()


# --- 1. the database ---------------------------------------------------------------------------


def database_exists() -> bool:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        return conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone() is not None


def wanted_meta(args: argparse.Namespace) -> dict[str, Any]:
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    heads = sorted(f"{app}.{name}" for app, name in loader.graph.leaf_nodes())
    return {
        "records": args.records,
        "days": args.days,
        "distinct_days": args.distinct_days,
        "seed": SEED,
        "migrations": heads,
    }


def stored_meta() -> dict[str, Any] | None:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass('bench_reports_meta') IS NOT NULL")
        if not cursor.fetchone()[0]:
            return None
        cursor.execute("SELECT meta FROM bench_reports_meta")
        row = cursor.fetchone()
    return json.loads(row[0]) if row else None


def secondary_schema(cursor: Any) -> tuple[list[str], list[str], list[str]]:
    """(drop statements, create statements for indexes, add statements for constraints) of TABLES,
    everything but the primary keys."""
    drops, indexes, constraints = [], [], []
    for table in TABLES:
        cursor.execute(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = %s::regclass AND contype <> 'p' ORDER BY contype DESC, conname",
            [table],
        )
        for name, definition in cursor.fetchall():
            drops.append(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
            # Foreign keys and checks come back NOT VALID: the rows were made consistent, and
            # validating 10 M of them would be minutes of the build for nothing the reports read.
            is_unique = definition.startswith(("UNIQUE", "PRIMARY"))
            constraints.append(
                f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}{"" if is_unique else " NOT VALID"}'
            )
        cursor.execute(
            "SELECT i.indexname, i.indexdef FROM pg_indexes i WHERE i.tablename = %s AND NOT EXISTS "
            "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)",
            [table],
        )
        for name, definition in cursor.fetchall():
            drops.append(f'DROP INDEX "{name}"')
            indexes.append(definition)
    # Handoffs' foreign key to records goes first, and comes back last.
    return drops, indexes, constraints


_worker: dict[str, Any] = {}


def _start_worker(spec_fields: dict[str, Any]) -> None:
    """Once per worker process: the center's cast, the window's hours, one generator (its REFER
    answers are remembered across days)."""
    from django.db import connection

    from reporting import history
    from voiso_byob.models import ContactCenter

    center = ContactCenter.objects.get(slug="acme")
    spec = history.Spec(**spec_fields)
    cast = history.cast_for(center)
    hours = history.days_of(history.hours(spec, cast.zone))
    firsts, total = [], 0
    for block in hours:  # each day's first call index: the calls of the days before it
        firsts.append(total)
        total += sum(n for _, _, n in block)
    _worker.update(center=center, hours=hours, firsts=firsts, generator=history.Generator(cast, spec))
    with connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")


def _load_day(day: int) -> int:
    """A worker's task: one day's calls generated, folded and COPYed (reporting.history.bulk_write)."""
    from reporting import history

    calls = _worker["generator"].calls([_worker["hours"][day]], _worker["firsts"][day])
    # The rollups are rebuilt once after the load (the copied fortnights have none of their own).
    return history.bulk_write(_worker["center"], calls, with_rollups=False)


def copy_blocks(blocks: int, block_days: int) -> None:
    """The distinct calls (the last `block_days` days) again for each earlier block of as many days:
    every row shifted back by whole blocks (weekdays and hours kept), new ids and call ids."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT max(id) FROM reporting_callrecord")
        records_max = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(max(id), 0) FROM reporting_handoff")
        handoffs_max = cursor.fetchone()[0]
        for table, top in (("reporting_callrecord", records_max), ("reporting_handoff", handoffs_max)):
            cursor.execute(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_name = %s ORDER BY ordinal_position",
                [table],
            )
            columns = cursor.fetchall()
            for block in range(1, blocks):
                shift = f"interval '{block * block_days} days'"
                values = []
                for name, kind in columns:
                    if name == "id":
                        values.append(f"id + {block * top}")
                    elif name == "call_record_id":
                        values.append(f"call_record_id + {block * records_max}")
                    elif name == "call_id":
                        values.append(f"call_id || '~{block}'")
                    elif kind.startswith("timestamp") and name != "updated":
                        values.append(f"{name} - {shift}")
                    else:
                        values.append(name)
                names = ", ".join(name for name, _ in columns)
                cursor.execute(
                    f"INSERT INTO {table} ({names}) SELECT {', '.join(values)} FROM {table} WHERE id <= {top}"
                )
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"
            )


def build(args: argparse.Namespace, db_url: str) -> dict[str, Any]:
    from django.core.management import call_command
    from django.db import connection, connections

    from reporting import history
    from reporting.rollups import rebuild_rollups
    from voiso_byob.models import ContactCenter

    timings: dict[str, float] = {}
    t = time.monotonic()
    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    center = ContactCenter.objects.get(slug="acme")
    timings["migrate_and_seed_s"] = time.monotonic() - t
    end = datetime.combine(date.today(), datetime.min.time(), tzinfo=UTC)
    # Distinct calls over the last `--distinct-days`, copied back over the rest of the window.
    block_days = args.distinct_days or args.days
    blocks = max(1, args.days // block_days)
    distinct = round(args.records / blocks)
    spec_fields = {"count": distinct, "end": end, "days": float(block_days), "seed": SEED}
    spec = history.Spec(**spec_fields)
    hours = history.days_of(history.hours(spec, history.cast_for(center).zone))

    with connection.cursor() as cursor:
        drops, indexes, constraints = secondary_schema(cursor)
        for statement in drops:
            cursor.execute(statement)
    connections.close_all()  # the workers are forked: none may share this process's connection

    t = time.monotonic()
    tasks = list(range(len(hours)))
    written, done = 0, 0
    context = multiprocessing.get_context("fork")
    with context.Pool(args.workers, initializer=_start_worker, initargs=(spec_fields,)) as pool:
        for count in pool.imap_unordered(_load_day, tasks):
            written += count
            done += 1
            if done % 10 == 0 or done == len(tasks):
                rate = written / (time.monotonic() - t)
                print(f"  {done}/{len(tasks)} days, {written:,} records, {rate:,.0f}/s", flush=True)
    timings["generate_fold_copy_s"] = time.monotonic() - t
    timings["distinct_calls_per_s"] = written / timings["generate_fold_copy_s"]
    t = time.monotonic()
    copy_blocks(blocks, block_days)
    timings["copies_s"] = time.monotonic() - t

    t = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for statement in indexes:
            cursor.execute(statement)
    timings["indexes_s"] = time.monotonic() - t
    t = time.monotonic()
    with connection.cursor() as cursor:
        for statement in constraints:
            cursor.execute(statement)
    timings["constraints_s"] = time.monotonic() - t
    t = time.monotonic()
    with connection.cursor() as cursor:
        for table in TABLES:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    timings["vacuum_analyze_s"] = time.monotonic() - t
    t = time.monotonic()
    call_rows, handoff_rows = rebuild_rollups(center_id=center.pk)
    with connection.cursor() as cursor:
        for table in ROLLUP_TABLES:
            cursor.execute(f"VACUUM (ANALYZE) {table}")
    timings["rebuild_rollups_s"] = time.monotonic() - t
    print(f"  rollups: {call_rows:,} call rows, {handoff_rows:,} handoff rows", flush=True)
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE bench_reports_meta (meta text)")
        meta = {**wanted_meta(args), "end": end.isoformat(), "built": datetime.now(UTC).isoformat()}
        meta["timings"] = {k: round(v, 1) for k, v in timings.items()}
        meta["distinct_records"] = written
        meta["blocks"], meta["block_days"] = blocks, block_days
        meta["uptime_after_build"] = uptime()
        cursor.execute("INSERT INTO bench_reports_meta VALUES (%s)", [json.dumps(meta)])
    return meta


def sizes() -> dict[str, str]:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_size_pretty(pg_database_size(current_database())), "
            "pg_size_pretty(pg_total_relation_size('reporting_callrecord')), "
            "pg_size_pretty(pg_relation_size('reporting_callrecord')), "
            "pg_size_pretty(pg_total_relation_size('reporting_handoff')), "
            "(SELECT count(*) FROM reporting_callrecord), (SELECT count(*) FROM reporting_handoff), "
            "pg_size_pretty(pg_total_relation_size('reporting_callrollup')), "
            "pg_size_pretty(pg_total_relation_size('reporting_handoffrollup')), "
            "(SELECT count(*) FROM reporting_callrollup), (SELECT count(*) FROM reporting_handoffrollup)"
        )
        (
            database,
            records_total,
            records_heap,
            handoffs_total,
            records,
            handoffs,
            call_rollup_total,
            handoff_rollup_total,
            call_rollups,
            handoff_rollups,
        ) = cursor.fetchone()
    return {
        "database": database,
        "callrecord_with_indexes": records_total,
        "callrecord_heap": records_heap,
        "handoff_with_indexes": handoffs_total,
        "records": records,
        "handoffs": handoffs,
        "callrollup_with_indexes": call_rollup_total,
        "handoffrollup_with_indexes": handoff_rollup_total,
        "callrollup_rows": call_rollups,
        "handoffrollup_rows": handoff_rollups,
    }


# --- 2. served over HTTP ------------------------------------------------------------------------


def get(url: str, token: str, *, timeout: float = 120) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def wait_until_up(base: str, server: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            urllib.request.urlopen(f"{base}/bench/minimal", timeout=2)
            return
        except (urllib.error.URLError, ConnectionError, OSError):
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within the start-up deadline")


def cases(
    center: Any,
    last_day: date,
    *,
    reports: Any = REPORTS,
    intervals: Any = INTERVALS,
    filters_: Any = FILTERS,
) -> list[tuple[str, str, str, dict[str, Any]]]:
    """(report, interval, filter name, query) for the last 30 days."""
    from routing.models import Queue
    from virtual_agents.models import VirtualAgent

    bot = VirtualAgent.objects.for_center(center).get(name="Demo sales bot")
    queue = Queue.objects.for_center(center).get(name="Sales")
    window = {"start": (last_day - timedelta(days=29)).isoformat(), "end": last_day.isoformat()}
    filters = {
        "none": {},
        "bot": {"virtual_agent": str(bot.pk)},
        "queue": {"queue": str(queue.pk)},
        "direction": {"direction": "inbound"},
    }
    return [
        (report, interval, name, {**window, "interval": interval, **filters[name]})
        for report in reports
        for interval in intervals
        for name in filters_
    ]


def serve_and_time(
    args: argparse.Namespace, db_url: str, center: Any, last_day: date
) -> list[dict[str, Any]]:
    from voiso_byob.models import ApiKeyScope
    from voiso_byob.services import create_api_key

    _, token = create_api_key(center=center, name="bench/reports.py", scope=ApiKeyScope.READ, by="bench")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = served_env(db_url, REDIS_URL)
    log_fd, log_name = tempfile.mkstemp(prefix="bench-reports-gunicorn-", suffix=".log")
    command = [
        str(GUNICORN),
        "voiso_byob.wsgi:application",
        "--workers",
        "2",
        "--bind",
        f"127.0.0.1:{port}",
        "--timeout",
        "300",
        "--no-control-socket",
    ]
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log_fd, stderr=subprocess.STDOUT)
    results = []
    try:
        wait_until_up(base, server, time.monotonic() + 60)
        chosen = cases(
            center, last_day, reports=args.reports, intervals=args.intervals, filters_=args.filters
        )
        # Each of the 2 workers' first requests pay for imports, the database connection and its
        # type cache: warm both before any case is timed (the first case alone measured ~80 ms
        # slower without this).
        first = f"{base}/api/v1/reports/{chosen[0][0]}/?{urlencode(chosen[0][3])}"
        for _ in range(2 * 2):
            get(first, token)
        for report, interval, filter_name, query in chosen:
            url = f"{base}/api/v1/reports/{report}/?{urlencode(query)}"
            for _ in range(args.warmup):  # untimed: plans and buffers warm
                status, body = get(url, token)
                if status != 200:
                    raise RuntimeError(f"{url}: HTTP {status} {body[:300]!r}")
            samples = []
            for _ in range(args.runs):
                began = time.perf_counter()
                status, body = get(url, token)
                samples.append((time.perf_counter() - began) * 1000)
                assert status == 200, (url, status)
            samples.sort()
            answer = json.loads(body)
            result = {
                "report": report,
                "interval": interval,
                "filter": filter_name,
                "p50_ms": round(statistics.median(samples), 1),
                "p95_ms": round(samples[max(0, int(len(samples) * 0.95 + 0.5) - 1)], 1),
                "max_ms": round(samples[-1], 1),
                "series_points": len(answer.get("series", [])),
                "rows": len(answer.get("rows", [])),
                "bytes": len(body),
            }
            results.append(result)
            print(
                f"  {report:15} {interval:5} {filter_name:9} p50 {result['p50_ms']:8.1f}  "
                f"p95 {result['p95_ms']:8.1f} ms",
                flush=True,
            )
    finally:
        stop(server)
        if not args.keep_server_log:
            os.unlink(log_name)
        else:
            print(f"gunicorn log: {log_name}")
    return results


# --- 3. the plan of the slowest case ---------------------------------------------------------------


def explain(center: Any, case: dict[str, Any], last_day: date) -> dict[str, Any]:
    """The slowest case in process: its time split into SQL and Python, and EXPLAIN (ANALYZE,
    BUFFERS) of each query it runs."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reporting.reports.campaigns import campaign_report
    from reporting.reports.filters import ReportFilterForm
    from reporting.reports.queues import queue_report
    from reporting.reports.virtual_agents import virtual_agent_report

    wanted = (case["report"], case["interval"], case["filter"])
    query = next(q for r, i, f, q in cases(center, last_day) if (r, i, f) == wanted)
    run = {"virtual-agents": virtual_agent_report, "queues": queue_report, "campaigns": campaign_report}[
        case["report"]
    ]
    form = ReportFilterForm(query, center=center)
    assert form.is_valid(), form.errors
    run(form.filters())  # warm
    began = time.perf_counter()
    with CaptureQueriesContext(connection) as captured:
        run(form.filters())
    in_process_ms = (time.perf_counter() - began) * 1000
    sql_ms = sum(float(q["time"]) for q in captured.captured_queries) * 1000
    plans = []
    with connection.cursor() as cursor:
        for executed in captured.captured_queries:
            sql = executed["sql"]
            if not sql.lstrip().upper().startswith("SELECT"):
                continue
            if "$1" in sql:  # bound on the server (from_rollups._fetched_binary): no values to replay
                plans.append({"ms": round(float(executed["time"]) * 1000, 1), "sql": sql, "plan": None})
                continue
            cursor.execute(f"EXPLAIN (ANALYZE, BUFFERS) {sql}")
            plan = "\n".join(row[0] for row in cursor.fetchall())
            plans.append({"ms": round(float(executed["time"]) * 1000, 1), "sql": sql, "plan": plan})
    return {
        "in_process_ms": round(in_process_ms, 1),
        "sql_ms": round(sql_ms, 1),
        "python_ms": round(in_process_ms - sql_ms, 1),
        "queries": plans,
    }


# --- main ------------------------------------------------------------------------------------------


def main() -> int:
    global DB_NAME
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=365)
    # 20: the nearest-rank p95 of 10 requests is their slowest, which one stray pause decides.
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--workers", type=int, default=2, help="Processes generating the records.")
    parser.add_argument(
        "--distinct-days",
        type=int,
        default=14,
        help="Days of distinct calls through the bulk path, copied back over the window (0: all distinct).",
    )
    parser.add_argument("--rebuild", action="store_true", help="Drop and build the database again.")
    parser.add_argument("--build-only", action="store_true", help="Build (or check) the database, then stop.")
    parser.add_argument("--keep-server-log", action="store_true")
    parser.add_argument(
        "--warmup",
        type=int,
        default=2,
        help="Untimed requests before each case's runs (2: one per worker, for the per-process caches).",
    )

    def names(allowed: tuple[str, ...]) -> Any:
        def parse(text: str) -> tuple[str, ...]:
            chosen = tuple(name.strip() for name in text.split(",") if name.strip())
            if not chosen or set(chosen) - set(allowed):
                raise argparse.ArgumentTypeError(f"a comma-separated subset of {','.join(allowed)}")
            return chosen

        return parse

    parser.add_argument(
        "--reports", type=names(REPORTS), default=REPORTS, help="Subset, e.g. queues,campaigns."
    )
    parser.add_argument("--intervals", type=names(INTERVALS), default=INTERVALS, help="Subset, e.g. day,15m.")
    parser.add_argument("--filters", type=names(FILTERS), default=FILTERS, help="Subset, e.g. none,bot.")
    parser.add_argument("--database", default=DB_NAME, help=f"The database to build or reuse ({DB_NAME}).")
    args = parser.parse_args()
    DB_NAME = args.database

    db_url = database_url(ADMIN_URL, DB_NAME)
    fresh = args.rebuild or not database_exists()
    if fresh:
        admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin_execute(ADMIN_URL, f'CREATE DATABASE "{DB_NAME}"')
    setup_django(db_url)
    from django.db import connections

    from voiso_byob.models import ContactCenter

    up_before = uptime()
    print(f"uptime: {up_before}", flush=True)
    meta = None if fresh else stored_meta()
    wanted = wanted_meta(args)
    if meta is not None and meta.get("migrations") != wanted["migrations"]:
        # New migrations (an index for the reports, say) apply to the rows as they are. Fields added
        # since the build are empty in them: --rebuild when a report reads one.
        from django.core.management import call_command

        new = sorted(set(wanted["migrations"]) - set(meta["migrations"]))
        print(f"applying migrations since the build: {new}")
        t = time.monotonic()
        call_command("migrate", verbosity=0)
        # What autovacuum does after a migration rewrote rows (this machine's PostgreSQL runs
        # with it off): the rollups' old row versions would be scanned with the new ones.
        for table in ROLLUP_TABLES:
            admin_execute(db_url, f"VACUUM ANALYZE {table}")
        meta["migrated_after_build"] = {"to": wanted["migrations"], "seconds": round(time.monotonic() - t, 1)}
        meta["migrations"] = wanted["migrations"]
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("UPDATE bench_reports_meta SET meta = %s", [json.dumps(meta)])
    if meta is None or any(meta.get(k) != v for k, v in wanted.items()):
        if not fresh:
            print(f"{DB_NAME} holds another build ({meta and {k: meta.get(k) for k in wanted}}): rebuilding")
            connections.close_all()
            admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            admin_execute(ADMIN_URL, f'CREATE DATABASE "{DB_NAME}"')
        print(
            f"building {DB_NAME}: {args.records:,} calls over {args.days} days, {args.workers} workers",
            flush=True,
        )
        meta = build(args, db_url)
        print(f"built: {meta['timings']}", flush=True)
    else:
        print(f"reusing {DB_NAME} built {meta['built']} ({meta['timings']})", flush=True)
    held = sizes()
    print(f"holds {held}", flush=True)
    output: dict[str, Any] = {
        "machine": machine(),
        "uptime_before": up_before,
        "build": meta,
        "sizes": held,
        "target_p95_ms": TARGET_P95_MS,
    }
    if args.build_only:
        print(json.dumps(output, indent=2, default=str))
        return 0

    center = ContactCenter.objects.get(slug="acme")
    last_day = (
        (datetime.fromisoformat(meta["end"]) - timedelta(seconds=1))
        .astimezone(ZoneInfo(center.timezone))
        .date()
    )
    connections.close_all()
    results = serve_and_time(args, db_url, center, last_day)
    slowest = max(results, key=lambda r: r["p95_ms"])
    output["results"] = results
    output["slowest"] = slowest
    output["slowest_in_process"] = explain(center, slowest, last_day)
    output["uptime_after"] = uptime()

    print()
    print(
        f"{'report':15} {'interval':8} {'filter':9} {'p50 ms':>9} {'p95 ms':>9} {'points':>7}  "
        f"≤ {TARGET_P95_MS:.0f} ms p95"
    )
    for r in results:
        verdict = "yes" if r["p95_ms"] <= TARGET_P95_MS else f"no (+{r['p95_ms'] - TARGET_P95_MS:.0f})"
        print(
            f"{r['report']:15} {r['interval']:8} {r['filter']:9} {r['p50_ms']:9.1f} {r['p95_ms']:9.1f} "
            f"{r['series_points']:7}  {verdict}"
        )
    met = sum(r["p95_ms"] <= TARGET_P95_MS for r in results)
    print(f"\n{met}/{len(results)} cases within {TARGET_P95_MS:.0f} ms p95; slowest: {slowest}")
    print(f"uptime before: {up_before}\nuptime after:  {output['uptime_after']}")
    split = output["slowest_in_process"]
    print(
        f"slowest case in process: {split['in_process_ms']} ms = SQL {split['sql_ms']} ms "
        f"({len(split['queries'])} queries) + Python {split['python_ms']} ms"
    )
    for plan in sorted(split["queries"], key=lambda p: -p["ms"])[:1]:
        print(f"its slowest query ({plan['ms']} ms):\n{plan['sql'][:600]}\n{plan['plan']}")
    print(f"every query's EXPLAIN ANALYZE in {RESULTS}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(output, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
