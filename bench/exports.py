"""Exports of call records on PostgreSQL, served as production serves them: rows/s and peak memory.

    .venv/bin/python bench/exports.py [--records 1000000] [--small 100000] [--keep-db | --reuse-db]

1. Creates the database `voiso_bench_exports`, migrates it and loads, by COPY, two contact
   centers (Europe/Berlin): one with --records call records (default 1,000,000), one with
   --small (default 100,000), spread over 30 days; most calls reached one of 4 bots, a third
   were handed off to one of 3 queues and answered by one of 8 agents, so a row names a bot, a
   queue and an agent; every caller's number starts with '+' (each row goes through the CSV
   formula guard). A supervisor of each center is signed in; the session cookie is the client's.
2. For each export and each center: a fresh gunicorn (`voiso_byob.wsgi`, one sync worker, DEBUG
   off, `--timeout 900`), one warm-up export matching no row (a date range in the future), then
   the whole export downloaded by a client in this process (1 MiB reads, counted, dropped).
   - rows/s: data rows ÷ wall time from sending the request to the last byte;
   - memory: the worker's peak RSS (VmHWM in /proc/<pid>/status, what getrusage's ru_maxrss
     reports for the process) after the export, beside its RSS after the warm-up (baseline).
     The serving process only: PostgreSQL's own memory is not in it. A fresh worker per case,
     so each peak belongs to one export; memory that does not grow with rows shows as the same
     peak for 100 k and 1 M rows.
   The rows are checked: CSV lines counted; the XLSX's sheets read (zip, sheet XML rows counted).
3. Prints a table with the machine's load (1-minute load average) before each case; writes
   bench/results/exports.json. The database is dropped unless --keep-db.

Cases: `csv (model rows)` — the export as it was (a model instance per row, one chunk per line:
bench/export_views.py) beside `csv` — `/calls/export.csv` now (reporting.exports.calls), and
`xlsx` — `/calls/export.xlsx`.
Targets: CSV of 1 M rows ≥ 50,000 rows/s; each export's peak RSS at 1 M rows within 16 MiB of
its peak at 100 k rows (memory does not grow with rows). Exits 1 when one is missed.
Needs PostgreSQL at 127.0.0.1:5432 (BENCH_PG_URL) and Redis (BENCH_REDIS_URL, default db 4).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import (
    ADMIN_URL,
    GUNICORN,
    PYTHON,
    ROOT,
    admin_execute,
    database_url,
    free_port,
    machine,
    served_env,
    stop,
)

DB_NAME = "voiso_bench_exports"
SEED_FILE = ROOT / "bench" / "results" / "exports_seed.json"
TARGET_CSV_ROWS_PER_S = 50_000
MEMORY_SLACK_MIB = 16.0
START = datetime(2026, 3, 1, tzinfo=UTC)
DAYS = 30

CASES = [
    ("csv (model rows)", "/bench/calls-export-models.csv", "csv"),
    ("csv", "/calls/export.csv", "csv"),
    ("xlsx", "/calls/export.xlsx", "xlsx"),
]


# --- seeding (runs in a child process with Django set up) -------------------------------------


def seed(sizes: dict[str, int]) -> dict[str, Any]:
    import django

    django.setup()
    from django.conf import settings
    from django.db import connection
    from django.test import Client

    from reporting.models import CallRecord
    from tests.factories import make_center, make_member, make_queue
    from tests.reporting.factories import make_bot
    from voiso_byob.models import ContactCenter, Role

    out: dict[str, Any] = {"cookies": {}, "rows": {}, "centers": {}}
    for label, count in sizes.items():
        center = make_center(f"bench{label}")
        ContactCenter.objects.filter(pk=center.pk).update(timezone="Europe/Berlin")
        bots = [make_bot(center, f"Bot {n}") for n in range(4)]
        queues = [make_queue(center, f"Queue {n}") for n in range(3)]
        agents = []
        for n in range(8):
            member = make_member(center, Role.AGENT, email=f"agent{n}@{label}.example")
            member.user.full_name = f"Agent {n}"
            member.user.save(update_fields=["full_name"])
            agents.append(member)
        supervisor = make_member(center, Role.SUPERVISOR, email=f"sup@{label}.example")
        columns = [
            "contact_center_id",
            "call_id",
            "status",
            "direction",
            "from_number",
            "to_number",
            "virtual_agent_id",
            "queue_id",
            "answered_by_id",
            "answered_extension",
            "campaign_ref",
            "lead_ref",
            "provider_call_id",
            "started_at",
            "ended_at",
            "total_seconds",
            "bot_seconds",
            "queue_wait_seconds",
            "human_seconds",
            "end_reason",
            "hangup_by",
            "recording_url",
            "bot_outcome",
            "handoff_count",
            "event_count",
            "last_event_at",
            "updated",
        ]
        spacing = DAYS * 86_400 / count
        table = CallRecord._meta.db_table
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy,
        ):
            for i in range(count):
                started = START + timedelta(seconds=i * spacing)
                bot = bots[i % 4] if i % 10 != 9 else None
                handed = bot is not None and i % 3 == 0
                answered = agents[i % 8] if handed and i % 4 else None
                outcome = (
                    ("handed_off" if handed else "abandoned_in_bot" if i % 7 == 0 else "contained")
                    if bot
                    else ""
                )
                ended = started + timedelta(seconds=60 + i % 240)
                total = (ended - started).total_seconds()
                copy.write_row(
                    [
                        center.pk,
                        f"{i:010x}-{label}@pbx.bench.example",
                        "ended",
                        "outbound" if i % 5 == 0 else "inbound",
                        f"+1555{i % 10_000_000:07d}",
                        "+15559990000",
                        bot.pk if bot else None,
                        queues[i % 3].pk if handed else None,
                        answered.pk if answered else None,
                        f"10{i % 8:02d}" if answered else "",
                        "",
                        "",
                        "",
                        started,
                        ended,
                        total,
                        total / 2 + 0.25 if bot else None,
                        12.5 if handed else None,
                        total / 3 if answered else None,
                        "normal_clearing",
                        "caller",
                        f"https://rec.bench.example/{i}.wav" if i % 2 else "",
                        outcome,
                        1 if handed else 0,
                        6,
                        ended,
                        ended,
                    ]
                )
        client = Client()
        client.force_login(supervisor.user)
        out["cookies"][label] = client.cookies[settings.SESSION_COOKIE_NAME].value
        out["rows"][label] = count
        out["centers"][label] = center.slug
    connection.close()
    return out


# --- serving and measuring --------------------------------------------------------------------


def start_server(env: dict[str, str], port: int, log: int) -> subprocess.Popen[bytes]:
    cmd = [
        str(GUNICORN),
        "voiso_byob.wsgi:application",
        "--workers",
        "1",
        "--worker-class",
        "sync",
        "--timeout",
        "900",
        "--bind",
        f"127.0.0.1:{port}",
        "--no-control-socket",
    ]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/bench/minimal", timeout=2) as r:
                if r.status == 200:
                    return server
        except OSError:
            time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within 30 s")


def worker_pid(master: int) -> int:
    children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
    if len(children) != 1:
        raise RuntimeError(f"expected one gunicorn worker, found {children}")
    return int(children[0])


def memory_kib(pid: int) -> dict[str, int]:
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            fields[name] = int(value.split()[0])
    return fields


def download(url: str, cookie: str, sink: Any) -> tuple[int, float, float]:
    """(bytes, seconds to the first MiB read, seconds to the last byte) for one GET; body to sink."""
    request = urllib.request.Request(url, headers={"Cookie": f"sessionid={cookie}"})
    started = time.perf_counter()
    first = None
    size = 0
    with urllib.request.urlopen(request, timeout=900) as response:
        if response.status != 200:
            raise RuntimeError(f"{url}: HTTP {response.status}")
        while block := response.read(1 << 20):
            first = first or time.perf_counter()
            size += len(block)
            sink(block)
    return size, (first or time.perf_counter()) - started, time.perf_counter() - started


def xlsx_rows(path: str) -> int:
    """Data rows in every sheet of an XLSX (each sheet's header row not counted)."""
    rows = 0
    with zipfile.ZipFile(path) as book:
        sheets = [n for n in book.namelist() if n.startswith("xl/worksheets/sheet")]
        for name in sheets:
            tail = b""
            with book.open(name) as sheet:
                while block := sheet.read(1 << 20):
                    rows += (tail + block).count(b"<row ") - tail.count(b"<row ")
                    tail = block[-8:]
            rows -= 1
    return rows


def measure(base: str, path: str, kind: str, cookie: str, env: dict[str, str], log: int) -> dict[str, Any]:
    port = int(base.rsplit(":", 1)[1])
    server = start_server(env, port, log)
    try:
        pid = worker_pid(server.pid)
        # The warm-up: code paths, the session, the first connection, a plan; no rows.
        download(f"{base}{path}?date_from=2099-01-01", cookie, lambda block: None)
        before = memory_kib(pid)
        load = os.getloadavg()[0]
        if kind == "csv":
            counter = {"lines": 0}

            def sink(block: bytes) -> None:
                counter["lines"] += block.count(b"\n")

            size, first_s, total_s = download(f"{base}{path}", cookie, sink)
            rows = counter["lines"] - 1
        else:
            with tempfile.NamedTemporaryFile(suffix=".xlsx") as target:
                size, first_s, total_s = download(f"{base}{path}", cookie, target.write)
                target.flush()
                rows = xlsx_rows(target.name)
        after = memory_kib(pid)
    finally:
        stop(server)
    return {
        "rows": rows,
        "seconds": round(total_s, 2),
        "first_mib_s": round(first_s, 2),
        "rows_per_s": round(rows / total_s),
        "mib": round(size / 2**20, 1),
        "baseline_rss_mib": round(before["VmRSS"] / 1024, 1),
        "peak_rss_mib": round(after["VmHWM"] / 1024, 1),
        "load_1m": round(load, 2),
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--cases", default=",".join(name for name, _, _ in CASES), help="comma-separated")
    parser.add_argument("--keep-db", action="store_true", help="keep the database (and the seed's cookies)")
    parser.add_argument("--reuse-db", action="store_true", help="use the database a --keep-db run kept")
    parser.add_argument("--seed", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        print(json.dumps(seed(json.loads(args.seed))))
        return 0

    env = served_env(
        database_url(ADMIN_URL, DB_NAME), os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/4")
    )
    if args.reuse_db:
        seeded = json.loads(SEED_FILE.read_text())
        env["SECRET_KEY"] = seeded["secret_key"]  # the sessions were signed with it
    else:
        admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin_execute(ADMIN_URL, f'CREATE DATABASE "{DB_NAME}"')
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        started = time.monotonic()
        sizes = {"small": args.small, "big": args.records}
        result = subprocess.run(
            [str(PYTHON), str(Path(__file__)), "--seed", json.dumps(sizes)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
        )
        if result.returncode:
            sys.stderr.write(result.stderr)
            raise SystemExit("seeding failed")
        seeded = json.loads(result.stdout.strip().splitlines()[-1])
        seeded["secret_key"] = env["SECRET_KEY"]
        admin_execute(database_url(ADMIN_URL, DB_NAME), "VACUUM ANALYZE")
        print(f"seeded {sum(sizes.values()):,} call records in {time.monotonic() - started:.0f} s")
        if args.keep_db:
            SEED_FILE.parent.mkdir(exist_ok=True)
            SEED_FILE.write_text(json.dumps(seeded))

    wanted = args.cases.split(",")
    results: list[dict[str, Any]] = []
    log_fd, _log_name = tempfile.mkstemp(prefix="bench-exports-gunicorn-", suffix=".log")
    try:
        base = f"http://127.0.0.1:{free_port()}"
        for name, path, kind in CASES:
            if name not in wanted:
                continue
            for label in ("small", "big"):
                figures = measure(base, path, kind, seeded["cookies"][label], env, log_fd)
                if figures["rows"] != seeded["rows"][label]:
                    raise RuntimeError(f"{name}: {figures['rows']} rows, expected {seeded['rows'][label]}")
                results.append({"export": name, "path": path, **figures})
                print_row(results[-1])
    finally:
        os.close(log_fd)
        if not args.keep_db and not args.reuse_db:
            admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    return report(results)


HEADER = (
    f"{'export':<18} {'rows':>10} {'s':>7} {'rows/s':>8} {'1st MiB s':>10} {'MiB':>6} "
    f"{'RSS base':>9} {'RSS peak':>9} {'load':>5}"
)


def print_row(r: dict[str, Any]) -> None:
    if not getattr(print_row, "started", False):
        print("\ngunicorn, 1 sync worker, PostgreSQL; RSS in MiB of the serving worker\n" + HEADER)
        print_row.started = True  # type: ignore[attr-defined]
    print(
        f"{r['export']:<18} {r['rows']:>10,} {r['seconds']:>7} {r['rows_per_s']:>8,} "
        f"{r['first_mib_s']:>10} {r['mib']:>6} {r['baseline_rss_mib']:>9} {r['peak_rss_mib']:>9} "
        f"{r['load_1m']:>5}"
    )


def report(results: list[dict[str, Any]]) -> int:
    verdicts: list[str] = []
    by_export: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        by_export.setdefault(r["export"], []).append(r)
    for name, rows in by_export.items():
        small, big = min(rows, key=lambda r: r["rows"]), max(rows, key=lambda r: r["rows"])
        growth = big["peak_rss_mib"] - small["peak_rss_mib"]
        flat = growth <= MEMORY_SLACK_MIB
        verdicts.append(
            f"{name}: peak RSS {small['peak_rss_mib']} MiB at {small['rows']:,} rows, "
            f"{big['peak_rss_mib']} MiB at {big['rows']:,} ({growth:+.1f}) — {'flat' if flat else 'GROWS'}"
        )
        if name == "csv":
            fast = big["rows_per_s"] >= TARGET_CSV_ROWS_PER_S
            verdicts.append(
                f"csv: {big['rows_per_s']:,} rows/s at {big['rows']:,} rows "
                f"(target ≥ {TARGET_CSV_ROWS_PER_S:,}) — {'met' if fast else 'MISSED'}"
            )
    ok = all("MISSED" not in v and "GROWS" not in v for v in verdicts if not v.startswith("csv (model"))
    print("\n" + "\n".join(verdicts))
    out = ROOT / "bench" / "results" / "exports.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(),
                "machine": machine(),
                "server": "gunicorn voiso_byob.wsgi, 1 sync worker, DEBUG off",
                "memory": "worker VmHWM (peak RSS, = getrusage ru_maxrss) after the export; "
                "baseline: its VmRSS after a warm-up",
                "results": results,
                "verdicts": verdicts,
                "targets_met": ok,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out.relative_to(ROOT)}; targets {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
