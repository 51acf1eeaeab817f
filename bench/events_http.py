"""Events API speed over HTTP, served as production serves it, beside what any event store must do.

    .venv/bin/python bench/events_http.py [--duration 15] [--single-rounds 3] [--warmup 3] [--connections 32]
                                          [--threads 2] [--workers 2] [--batches 80] [--batch 500]
                                          [--clients 4] [--rounds 3] [--keep-db]

What it does, in one run (about two minutes):
  1. drops and recreates the PostgreSQL database `voiso_bench_events` (BENCH_PG_URL, default
     postgres://postgres@127.0.0.1:5432/postgres, is where it connects to do that), migrates it and
     seeds it in a subprocess: contact center `acme` with two bots (7001, 7002), queues Sales 4323 /
     Support 4400, five agents and a number (bench/events_day.py `seed_center`), and a telephony key;
  2. serves `voiso_byob.wsgi:application` with gunicorn, 2 sync workers, DEBUG off, CONN_MAX_AGE=600,
     with the reports' rollup fold worker (`manage.py fold_rollups`) beside it, as production runs it,
     Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/11: cache, API keys, live feed) and
     ROOT_URLCONF=bench.urls: the real URLs plus `POST /bench/events-minimal` (bench/events_views.py):
     one indexed SELECT for the API key and one INSERT of the raw event, nothing else;
  3. after a warm-up of each view, ANALYZE (as autovacuum would on a live database); then single
     events: wrk (2 threads, 32 connections, bench/events_wrk.lua) posts one event per request —
     1000 calls per wrk thread in flight, each going started → bot → REFER → 202 → NOTIFY 200 → ended
     one step per 1000 requests (a call's events seconds apart, as a switch sends them) — to the
     minimal view and to /api/v1/telephony/events in --single-rounds interleaved rounds (3, 5 s of
     each view per round, the order alternating; each round goes on with the view's calls where
     the last one stopped); rates over all rounds, per-round ratios printed, a spread > 15 % between
     the minimal view's rounds flagged;
  4. batches, after VACUUM ANALYZE and a warm-up of both (16 batches each, not measured): --rounds
     rounds (3), each of the same PostgreSQL taking a generated day's events (--batches x --batch,
     in time order) by COPY into a copy of the events table (its indexes, checks and foreign key),
     one transaction per batch, on one connection (the raw rate); then --clients keep-alive HTTP
     clients posting another such day, as batches of --batch, to /api/v1/telephony/events, with
     call records and handoffs assembled. Each rate is over all rounds (events / total seconds);
     the per-round ratios are printed too;
  5. prints a table (req/s or events/s, ratio, p50/p99 ms, errors), writes bench/results/events_http.json,
     checks the assembled records, and exits 1 when a target is missed or any request failed.

Targets (issue #5): single-event posts ≥ 0.5 x the minimal view's rate; batches of 500 ≥ 40 % of
the COPY rate of the same events, measured in the same run.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the project root
from bench.harness import (
    ADMIN_URL,
    GUNICORN,
    PYTHON,
    ROOT,
    admin_execute,
    database_url,
    free_port,
    machine,
    post,
    served_env,
    stop,
)

RESULTS = ROOT / "bench" / "results" / "events_http.json"
LUA = ROOT / "bench" / "events_wrk.lua"
DB_NAME = os.environ.get("BENCH_DB", "voiso_bench_events")  # another name when benches run side by side
SINGLE_TARGET = 0.5
BATCH_TARGET = 0.4
DRIFT_WARNING = 0.15
COPY_TABLE = "bench_copy_events"
WARMUP_BATCHES = 16


def seed() -> None:
    """`bench/events_http.py --seed`: the contact center and a telephony key, as JSON on stdout."""
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from bench.events_day import seed_center
    from voiso_byob.models import ApiKeyScope
    from voiso_byob.services import create_api_key

    center = seed_center("acme")
    _, token = create_api_key(center=center, name="bench", scope=ApiKeyScope.TELEPHONY, by="bench")
    print(json.dumps({"center": str(center.pk), "token": token}))


def _drained(db_url: str, timeout: float = 120.0) -> float:
    """Seconds until the fold worker has recomputed every bucket ingestion marked stale."""
    import psycopg

    began = time.monotonic()
    with psycopg.connect(db_url, autocommit=True) as conn:
        while conn.execute("SELECT EXISTS (SELECT 1 FROM reporting_stalebucket)").fetchone()[0]:
            if time.monotonic() - began > timeout:
                raise RuntimeError(f"the fold worker left buckets stale after {timeout:.0f} s")
            time.sleep(0.1)
    return time.monotonic() - began


def wait_until_up(base: str, server: subprocess.Popen[bytes], token: str, deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            if post(f"{base}/bench/minimal", {}, token)[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within the start-up deadline")


def wrk(
    base: str, path: str, token: str, nonce: str, args: argparse.Namespace, seconds: float, offset: int = 0
) -> dict[str, Any]:
    """One wrk run; `offset`: go on with the calls of an earlier run with this nonce (its next_offset)."""
    env = {
        **os.environ,
        "WRK_TOKEN": token,
        "WRK_NONCE": nonce,
        "WRK_SLUG": "acme",
        "WRK_OFFSET": str(offset),
    }
    cmd = [
        shutil.which("wrk") or "/usr/bin/wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{int(seconds)}s",
        "--timeout",
        "5s",
        "--latency",
        "-s",
        str(LUA),
        f"{base}{path}",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=seconds + 30)
    match = re.search(r"^BENCH_RESULT (\{.*\})$", done.stdout, re.M)
    if done.returncode != 0 or match is None:
        raise RuntimeError(f"wrk failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    result = json.loads(match.group(1))
    statuses = {int(k): v for k, v in result["statuses"].items()}
    non_2xx = sum(n for status, n in statuses.items() if not 200 <= status < 300)
    seconds_run = result["duration_us"] / 1e6
    return {
        "path": path,
        "requests": result["requests"],
        "seconds": seconds_run,
        "rate": result["requests"] / seconds_run,
        "p50_ms": result["p50_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": non_2xx + sum(result["socket_errors"].values()),
        "next_offset": result["next_offset"],
    }


def _combined_wrk(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """wrk rounds of one view as one run: requests over seconds; the rounds' median p50, worst p99."""
    statuses: dict[str, int] = {}
    for r in rounds:
        for status, n in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + n
    requests, seconds = sum(r["requests"] for r in rounds), sum(r["seconds"] for r in rounds)
    return {
        "path": rounds[0]["path"],
        "requests": requests,
        "seconds": seconds,
        "rate": requests / seconds,
        "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        "p99_ms": max(r["p99_ms"] for r in rounds),
        "statuses": statuses,
        "errors": sum(r["errors"] for r in rounds),
    }


def copy_rate(db_url: str, center_id: str, batches: list[list[dict[str, Any]]]) -> dict[str, Any]:
    """The raw rate: COPY of the same events into a copy of the events table, one transaction per batch.

    The copy has what the events table has: columns, defaults, checks and indexes (LIKE … INCLUDING
    ALL), and its foreign key to the contact center, which LIKE leaves out (every stored event is
    checked against it at commit, by COPY as by the events API).
    """
    import psycopg

    columns = "contact_center_id, event_id, type, call_id, occurred_at, received_at, data, refs"
    latencies: list[float] = []
    with psycopg.connect(db_url) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {COPY_TABLE}")
        conn.execute(f"CREATE TABLE {COPY_TABLE} (LIKE reporting_callevent INCLUDING ALL)")
        foreign_keys = conn.execute(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'reporting_callevent'::regclass AND contype = 'f'"
        ).fetchall()
        for (definition,) in foreign_keys:
            conn.execute(f"ALTER TABLE {COPY_TABLE} ADD {definition}")
        conn.commit()
        started = time.perf_counter()
        for batch in batches:
            t = time.perf_counter()
            now = datetime.now(UTC)
            with conn.cursor() as cursor, cursor.copy(f"COPY {COPY_TABLE} ({columns}) FROM STDIN") as copy:
                for e in batch:
                    copy.write_row(
                        (
                            center_id,
                            e["id"],
                            e["type"],
                            e["call_id"],
                            e["occurred_at"],
                            now,
                            json.dumps(e["data"]),
                            "{}",
                        )
                    )
            conn.commit()
            latencies.append(time.perf_counter() - t)
        seconds = time.perf_counter() - started
        conn.execute(f"DROP TABLE {COPY_TABLE}")
        conn.commit()
    events = sum(len(b) for b in batches)
    return {"events": events, "seconds": seconds, "rate": events / seconds, **_percentiles(latencies)}


def _percentiles(latencies: list[float]) -> dict[str, float]:
    ordered = sorted(latencies)
    return {
        "p50_ms": statistics.median(ordered) * 1000,
        "p99_ms": ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))] * 1000,
    }


def post_batches(host: str, port: int, token: str, bodies: list[bytes], clients: int) -> dict[str, Any]:
    """`clients` keep-alive connections post the bodies (each once, in order of a shared queue)."""
    lock = threading.Lock()
    queue = list(reversed(bodies))
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    accepted = [0]
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}

    def client() -> None:
        conn = http.client.HTTPConnection(host, port, timeout=60)
        try:
            while True:
                with lock:
                    if not queue:
                        return
                    body = queue.pop()
                t = time.perf_counter()
                conn.request("POST", "/api/v1/telephony/events", body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                elapsed = time.perf_counter() - t
                with lock:
                    latencies.append(elapsed)
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                    if response.status == 202:
                        accepted[0] += json.loads(payload)["accepted"]
        finally:
            conn.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.perf_counter() - started
    return {
        "requests": len(bodies),
        "events": accepted[0],
        "seconds": seconds,
        "rate": accepted[0] / seconds,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "errors": sum(n for status, n in statuses.items() if status != 202),
        **_percentiles(latencies),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of each view in all")
    parser.add_argument("--single-rounds", type=int, default=3)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batches", type=int, default=80)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed()
        return 0

    started = time.monotonic()
    admin_url = ADMIN_URL
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    nonce = secrets.token_hex(4)
    env = served_env(database_url(admin_url, DB_NAME), redis_url)
    server: subprocess.Popen[bytes] | None = None
    folder: subprocess.Popen[bytes] | None = None
    log_fd, log_name = tempfile.mkstemp(prefix="bench-events-gunicorn-", suffix=".log")
    log_path = Path(log_name)
    try:
        admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        admin_execute(admin_url, f'CREATE DATABASE "{DB_NAME}"')
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        seeded = json.loads(
            subprocess.run(
                [str(PYTHON), str(Path(__file__)), "--seed"],
                cwd=ROOT,
                env=env,
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        token, center_id = seeded["token"], seeded["center"]

        cmd = [
            str(GUNICORN),
            "voiso_byob.wsgi:application",
            "--workers",
            str(args.workers),
            "--worker-class",
            "sync",
            "--bind",
            f"127.0.0.1:{port}",
            "--no-control-socket",
        ]
        server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log_fd, stderr=subprocess.STDOUT)
        # The reports' rollups are recomputed by the fold worker production runs beside the
        # servers (reporting/rollups.py): its work competes for the same cores, so it runs here too.
        folder = subprocess.Popen(
            [str(PYTHON), "manage.py", "fold_rollups"],
            cwd=ROOT,
            env=env,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
        )
        wait_until_up(base, server, token, time.monotonic() + 30)
        probe = {
            "id": f"probe-{nonce}",
            "type": "call.started",
            "call_id": f"probe-{nonce}",
            "occurred_at": "2026-05-01T09:00:00Z",
            "data": {"direction": "inbound", "from": "+1", "to": "+2"},
        }
        for path in ("/api/v1/telephony/events", "/bench/events-minimal"):
            status, body = post(f"{base}{path}", {**probe, "id": f"{probe['id']}{path}"}, token)
            if status != 202:
                raise RuntimeError(f"{path} answered {status}: {body}")

        # Single events: minimal, events, minimal again.
        load_before = os.getloadavg()
        for path in ("/bench/events-minimal", "/api/v1/telephony/events"):
            wrk(base, path, token, nonce + "w", args, args.warmup)
        # What autovacuum does on a live database within its first minute (and again as tables
        # grow): without statistics, the workers' prepared plans for the still-empty tables of a
        # fresh database scan them whole, and keep doing so as they fill up during the run.
        admin_execute(env["DATABASE_URL"], "ANALYZE")
        # Interleaved rounds, the order alternating, each view's calls going on from round to round
        # (WRK_OFFSET): one 15 s run after another was at the mercy of whatever else the machine's
        # host did meanwhile (the minimal view alone moved 25-45 % between its two runs).
        views = {"minimal": "/bench/events-minimal", "events": "/api/v1/telephony/events"}
        single_rounds: list[dict[str, dict[str, Any]]] = []
        offsets = dict.fromkeys(views, 0)
        for round_ in range(args.single_rounds):
            order = list(views) if round_ % 2 == 0 else list(reversed(views))
            results: dict[str, dict[str, Any]] = {}
            for name in order:
                seconds = args.duration / args.single_rounds
                print(
                    f"round {round_ + 1}: wrk {name}, {seconds:.0f} s at {args.connections} connections ..."
                )
                results[name] = wrk(
                    base, views[name], token, f"{nonce}{name[:3]}", args, seconds, offsets[name]
                )
                offsets[name] = results[name]["next_offset"]
            single_rounds.append(results)
        single = {name: _combined_wrk([r[name] for r in single_rounds]) for name in views}

        # Batches: COPY (raw), then the events API with everything assembled. First what autovacuum
        # does on a live database after a burst of updates (the single events rewrote each call's
        # record five times): reclaim the dead row versions, so the batches do not work around
        # them. This machine's PostgreSQL runs with autovacuum off; a deployment has it on.
        admin_execute(env["DATABASE_URL"], "VACUUM ANALYZE")
        sys.path.insert(0, str(ROOT))
        from bench.events_day import generate_day

        # Rounds of COPY then the API, each with days of its own, interleaved: a phase a second or
        # two long is at the mercy of a checkpoint or a burst of other work landing in it (single
        # rounds measured 36 % and 44 % in two runs of the same code); the rates are over all rounds.
        copy_rounds: list[dict[str, Any]] = []
        drains: list[float] = []
        api_rounds: list[dict[str, Any]] = []
        call_ids: set[str] = set()
        # A warm-up of each, not measured, as the single-event runs have: the workers' first
        # batches measured slower than their later ones (ratios rose from round to round).
        warm_day = generate_day(
            events=WARMUP_BATCHES * args.batch, seed=int(nonce, 16) % 100_000 + 99, slug="acme"
        )
        warm = [warm_day[i : i + args.batch] for i in range(0, len(warm_day), args.batch)]
        copy_rate(env["DATABASE_URL"], center_id, warm)
        post_batches(
            "127.0.0.1", port, token, [json.dumps({"events": b}).encode() for b in warm], args.clients
        )
        _drained(env["DATABASE_URL"])
        for round_ in range(args.rounds):
            day_seed = (int(nonce, 16) + round_ * 7919) % 100_000
            raw_day = generate_day(events=args.batches * args.batch, seed=day_seed, slug="acme")
            day = generate_day(events=args.batches * args.batch, seed=day_seed + 50_000, slug="acme")
            call_ids |= {e["call_id"] for e in day}
            raw = [raw_day[i : i + args.batch] for i in range(0, len(raw_day), args.batch)]
            bodies = [
                json.dumps({"events": day[i : i + args.batch]}).encode()
                for i in range(0, len(day), args.batch)
            ]
            print(
                f"round {round_ + 1}: COPY {len(raw_day):,} events in {len(raw)} transactions ...", flush=True
            )
            copy_rounds.append(copy_rate(env["DATABASE_URL"], center_id, raw))
            print(
                f"round {round_ + 1}: POST {len(bodies)} x {args.batch} events ({args.clients} clients) ...",
                flush=True,
            )
            api_rounds.append(post_batches("127.0.0.1", port, token, bodies, args.clients))
            # The fold worker recomputes the round's buckets once they settle (5 s after their last
            # event): wait for it, so its work does not land in the next round's COPY.
            drains.append(_drained(env["DATABASE_URL"]))
        copy = _combined(copy_rounds)
        batched = _combined(api_rounds)
        load_after = os.getloadavg()
        assembled = _assembled(env["DATABASE_URL"], center_id, call_ids)

        minimal_rate = single["minimal"]["rate"]
        minimal_rates = [r["minimal"]["rate"] for r in single_rounds]
        drift = (max(minimal_rates) - min(minimal_rates)) / minimal_rate
        single_ratio = single["events"]["rate"] / minimal_rate
        batch_ratio = batched["rate"] / copy["rate"]
        failures = []
        if single_ratio < SINGLE_TARGET:
            failures.append(f"single events: {single_ratio:.2f} x minimal < {SINGLE_TARGET}")
        if batch_ratio < BATCH_TARGET:
            failures.append(f"batches: {batch_ratio:.0%} of COPY < {BATCH_TARGET:.0%}")
        for name, result in [*single.items(), ("batches", batched)]:
            if result["errors"]:
                failures.append(f"{name}: {result['errors']} failed requests ({result['statuses']})")
        if assembled["records"] != assembled["calls"] or not assembled["handoffs"]:
            failures.append(f"records not assembled as expected: {assembled}")

        print()
        print(f"gunicorn {args.workers} x sync workers, PostgreSQL + Redis, DEBUG off")
        header = f"{'run':<46} {'rate':>9} {'ratio':>7} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        print(header)
        print("-" * len(header))
        rows = [
            ("POST /bench/events-minimal (req/s)", single["minimal"], 1.0),
            ("POST /telephony/events, 1 event (req/s)", single["events"], single_ratio),
            (f"COPY, {args.batch} per transaction (events/s)", {**copy, "errors": 0}, 1.0),
            (f"POST /telephony/events, {args.batch} per request (events/s)", batched, batch_ratio),
        ]
        for label, result, ratio in rows:
            print(
                f"{label:<46} {result['rate']:>9,.0f} {ratio:>7.2f} {result['p50_ms']:>8.1f} "
                f"{result['p99_ms']:>8.1f} {result['errors']:>7}"
            )
        print(
            f"single: {args.single_rounds} interleaved rounds, {args.duration:.0f} s of each view in all "
            f"(wrk -t{args.threads} -c{args.connections}); per round: "
            + ", ".join(f"{r['events']['rate'] / r['minimal']['rate']:.2f}" for r in single_rounds)
        )
        print(
            f"batches: {args.rounds} rounds of COPY then the API ({args.batches} x {args.batch} events "
            "each, days of their own); per round: "
            + ", ".join(f"{a['rate'] / c['rate']:.0%}" for c, a in zip(copy_rounds, api_rounds, strict=True))
        )
        print(f"batches: {args.clients} HTTP clients vs COPY on one connection; assembled: {assembled}")
        print(
            "rollups: the fold worker had recomputed each round's buckets "
            + ", ".join(f"{d:.1f}" for d in drains)
            + " s after its last batch (5 s of settling included)"
        )
        print(f"load average before/after {load_before[0]:.2f}/{load_after[0]:.2f} on {os.cpu_count()} CPUs")
        if drift > DRIFT_WARNING:
            print(f"warning: the minimal view's rate moved {drift:.0%} between rounds (other load here)")
        verdict = "PASS" if not failures else "FAIL"
        print(
            f"targets: single ≥ {SINGLE_TARGET} x minimal, batches ≥ {BATCH_TARGET:.0%} of COPY → {verdict}"
        )
        for failure in failures:
            print(f"  missed: {failure}")

        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "benchmark": "events_http",
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": machine(),
                    "server": {
                        "gunicorn_workers": args.workers,
                        "worker_class": "sync",
                        "database": f"postgresql/{DB_NAME}",
                    },
                    "load": {
                        "threads": args.threads,
                        "connections": args.connections,
                        "seconds": args.duration,
                        "single_rounds": args.single_rounds,
                        "batch": args.batch,
                        "batches": args.batches,
                        "rounds": args.rounds,
                        "clients": args.clients,
                    },
                    "single": single,
                    "single_rounds": single_rounds,
                    "minimal_drift": drift,
                    "single_ratio": single_ratio,
                    "copy": copy,
                    "batches": batched,
                    "copy_rounds": copy_rounds,
                    "batch_rounds": api_rounds,
                    "batch_ratio_to_copy": batch_ratio,
                    "fold_drained_after_s": drains,
                    "assembled": assembled,
                    "load_average_1m": {"before": load_before[0], "after": load_after[0]},
                    "targets": {"single_ratio": SINGLE_TARGET, "batch_ratio_to_copy": BATCH_TARGET},
                    "passed": not failures,
                    "failures": failures,
                },
                indent=2,
            )
        )
        print(f"wrote {RESULTS} ({time.monotonic() - started:.0f} s in all)")
        return 0 if not failures else 1
    except Exception as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        tail = log_path.read_text(errors="replace")[-3000:]
        if tail:
            print(f"--- gunicorn log (tail) ---\n{tail}", file=sys.stderr)
        return 2
    finally:
        stop(folder)
        stop(server)
        os.close(log_fd)
        log_path.unlink(missing_ok=True)
        if not args.keep_db:
            try:
                admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            except Exception as exc:
                print(f"warning: could not drop {DB_NAME}: {exc}", file=sys.stderr)


def _combined(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Rounds as one: events over the total time, the median of the rounds' p50s, the worst p99."""
    events = sum(r["events"] for r in rounds)
    seconds = sum(r["seconds"] for r in rounds)
    combined: dict[str, Any] = {
        "events": events,
        "seconds": seconds,
        "rate": events / seconds,
        "p50_ms": statistics.median(r["p50_ms"] for r in rounds),
        "p99_ms": max(r["p99_ms"] for r in rounds),
    }
    if all("errors" in r for r in rounds):
        combined["errors"] = sum(r["errors"] for r in rounds)
        combined["statuses"] = {
            status: sum(r["statuses"].get(status, 0) for r in rounds)
            for status in sorted({s for r in rounds for s in r["statuses"]})
        }
    return combined


def _assembled(db_url: str, center_id: str, call_ids: set[str]) -> dict[str, int]:
    """How many of the day's calls have a record, and how many handoffs those records have."""
    import psycopg

    with psycopg.connect(db_url) as conn:
        records, handoffs = conn.execute(
            "SELECT count(DISTINCT r.id), count(h.id) FROM reporting_callrecord r "
            "LEFT JOIN reporting_handoff h ON h.call_record_id = r.id "
            "WHERE r.contact_center_id = %s AND r.call_id = ANY(%s)",
            [center_id, list(call_ids)],
        ).fetchone()
    return {"calls": len(call_ids), "records": records, "handoffs": handoffs}


if __name__ == "__main__":
    sys.exit(main())
