"""Telephony API speed over HTTP, served the way production serves it, beside a minimal Django view.

    .venv/bin/python bench/telephony_http.py [--duration 15] [--warmup 3] [--connections 32]
                                             [--threads 2] [--workers 2] [--keep-db]

What it does, in one run (about 1.5 minutes):
  1. drops and recreates the PostgreSQL database `voiso_bench` (BENCH_PG_URL, default
     postgres://postgres@127.0.0.1:5432/postgres, is where it connects to do that), migrates it
     and seeds it in subprocesses with the same environment: `manage.py seed_demo` (contact
     center `acme`, queues Sales 4323 / Support 4400), `manage.py create_api_key acme --scope
     telephony`, and a published flow start → play → menu (1 → Sales, 2 → Support,
     invalid/timeout → hangup) attached to +442079460018;
  2. serves `voiso_byob.wsgi:application` with gunicorn, 2 sync workers (the README's production
     HTTP server and its default worker class) on 127.0.0.1:<free port>, DEBUG off,
     CONN_MAX_AGE=600, Redis cache (REDIS_URL, default redis://127.0.0.1:6379/1) and
     ROOT_URLCONF=bench.urls: the real URLs plus `POST /bench/minimal`, a plain Django view
     returning constant JSON (no auth, no database);
  3. checks each endpoint answers as expected, warms each up (3 s of wrk), then runs wrk (2 threads,
     32 connections, 15 s each, --latency, bench/wrk_post.lua) one after the other against the
     same server:
       POST /bench/minimal
       POST /api/v1/telephony/route   {"call_id": <distinct per request>, "to", "from"} → play + gather
       POST /api/v1/telephony/refer   {"call_id", "refer_to": "<sip:4323@acme.voiso.com>"} → queue Sales
       POST /bench/minimal again      (the ratio is to the mean of both minimal runs; a gap between
                                       them > 15 % is flagged: other load on the machine moved it)
     with `Authorization: Bearer <telephony key>`; every response status is counted;
  4. prints a table (req/s, ratio to minimal, p50/p99 ms, errors), writes
     bench/results/telephony_http.json, and exits 1 when route or refer sustain less than half the
     minimal view's rate, or any run had a non-2xx answer or a socket error (the figures are
     printed either way). Gunicorn is stopped, the run's menu-state keys are deleted from Redis and
     the database is dropped (unless --keep-db) in a finally block.

Target (routing issue, "Speed"): route and refer each ≥ 0.5 x the minimal view's requests/s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
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

BENCH = ROOT / "bench"
RESULTS = BENCH / "results" / "telephony_http.json"
LUA = BENCH / "wrk_post.lua"

DB_NAME = os.environ.get("BENCH_DB", "voiso_bench")  # another name when benches run side by side
NUMBER = "+442079460018"
CALLER = "+442079460999"
REFER_TO = "<sip:4323@acme.voiso.com>"
TARGET_RATIO = 0.5
WORKER_CLASS = "sync"

ENDPOINTS = [
    # (name, path, wrk mode, needs the key)
    ("minimal", "/bench/minimal", "minimal", False),
    ("route", "/api/v1/telephony/route", "route", True),
    ("refer", "/api/v1/telephony/refer", "refer", True),
]
# Timed order: the minimal view before and after the telephony endpoints; the ratio is taken to the
# mean of the two, and their difference shows how much other load on the machine moved the figures.
TIMED = ["minimal", "route", "refer", "minimal_after"]
DRIFT_WARNING = 0.15


# --- the seeding step, run as a Django subprocess ---------------------------------------------


def seed_flow() -> None:
    """`bench/telephony_http.py --seed-flow`: the menu flow, published and attached to NUMBER."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiso_byob.settings")
    import django

    django.setup()
    from routing.models import Queue
    from routing.services import create_flow, create_phone_number, publish_flow
    from voiso_byob.models import ContactCenter

    center = ContactCenter.objects.get(slug="acme")
    queues = {q.name: str(q.pk) for q in Queue.objects.for_center(center)}
    graph = {
        "nodes": {
            "start": {"type": "start", "config": {}, "next": {"next": "welcome"}},
            "welcome": {"type": "play", "config": {"text": "Welcome to Acme."}, "next": {"next": "menu"}},
            "menu": {
                "type": "menu",
                "config": {
                    "prompt": "Press 1 for sales, 2 for support.",
                    "timeout_seconds": 5,
                    "max_tries": 2,
                },
                "next": {"1": "sales", "2": "support", "invalid": "bye", "timeout": "bye"},
            },
            "sales": {"type": "route", "config": {"target": {"type": "queue", "id": queues["Sales"]}}},
            "support": {"type": "route", "config": {"target": {"type": "queue", "id": queues["Support"]}}},
            "bye": {"type": "hangup", "config": {}},
        }
    }
    flow = create_flow(center=center, by="bench", name="Bench main line", graph=graph)
    publish_flow(flow=flow, by="bench")
    create_phone_number(center=center, by="bench", number=NUMBER, label="bench", flow=flow)
    print(json.dumps({"flow": str(flow.pk), "number": NUMBER, "center": str(center.pk)}))


# --- helpers -----------------------------------------------------------------------------------


def worker_label(args: argparse.Namespace) -> str:
    if args.worker_class == "gthread":
        return f"gthread ({args.worker_threads} threads)"
    return args.worker_class


def run(cmd: list[str], env: dict[str, str], timeout: float) -> str:
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done.stdout


def recreate_database(admin_url: str) -> None:
    drop_database(admin_url)
    admin_execute(admin_url, f'CREATE DATABASE "{DB_NAME}"')


def drop_database(admin_url: str) -> None:
    admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def wait_until_up(base: str, server: subprocess.Popen[bytes], deadline: float) -> None:
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"gunicorn exited with {server.returncode}")
        try:
            status, _ = post(f"{base}/bench/minimal", {}, None)
            if status == 200:
                return
        except (urllib.error.URLError, ConnectionError, OSError):
            pass
        time.sleep(0.2)
    raise RuntimeError("gunicorn did not answer within the start-up deadline")


def wrk(
    base: str, path: str, mode: str, token: str, nonce: str, *, seconds: float, connections: int, threads: int
) -> dict[str, Any]:
    env = {
        **os.environ,
        "WRK_MODE": mode,
        "WRK_TOKEN": token,
        "WRK_TO": NUMBER,
        "WRK_REFER_TO": REFER_TO,
        "WRK_NONCE": nonce,
    }
    cmd = [
        shutil.which("wrk") or "/usr/bin/wrk",
        f"-t{threads}",
        f"-c{connections}",
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
    socket_errors = sum(result["socket_errors"].values())
    return {
        "path": path,
        "requests": result["requests"],
        "seconds": result["duration_us"] / 1e6,
        "rps": result["requests"] / (result["duration_us"] / 1e6),
        "p50_ms": result["p50_us"] / 1000,
        "p90_ms": result["p90_us"] / 1000,
        "p99_ms": result["p99_us"] / 1000,
        "max_ms": result["max_us"] / 1000,
        "mean_ms": result["mean_us"] / 1000,
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "non_2xx": non_2xx,
        "socket_errors": result["socket_errors"],
        "errors": non_2xx + socket_errors,
        "wrk_output": done.stdout.replace(match.group(0), "").strip(),
    }


def delete_menu_state(redis_url: str, nonce: str) -> int:
    """The route runs leave one menu-state key per call (TTL 1 h); remove this run's."""
    import redis

    client = redis.Redis.from_url(redis_url)
    deleted = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=f"*route-state:*:bench-{nonce}-*", count=5000):
        batch.append(key)
        if len(batch) >= 5000:
            deleted += client.unlink(*batch)
            batch = []
    if batch:
        deleted += client.unlink(*batch)
    client.close()
    return deleted


def version_of(cmd: list[str]) -> str:
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (done.stdout or done.stderr).strip().splitlines()[0]
    except Exception as exc:
        return f"unknown ({exc})"


# --- the benchmark -----------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of wrk per endpoint")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of wrk warm-up per endpoint")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--worker-class", choices=["sync", "gthread"], default=WORKER_CLASS)
    parser.add_argument("--worker-threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--keep-db", action="store_true", help="leave the voiso_bench database behind")
    parser.add_argument("--seed-flow", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_flow:
        seed_flow()
        return 0

    started = time.monotonic()
    admin_url = ADMIN_URL
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    nonce = secrets.token_hex(4)
    env = served_env(database_url(admin_url, DB_NAME), redis_url)
    server: subprocess.Popen[bytes] | None = None
    log_fd, log_name = tempfile.mkstemp(prefix="bench-gunicorn-", suffix=".log")
    log_path = Path(log_name)
    results: dict[str, dict[str, Any]] = {}
    exit_code = 1
    try:
        # 1. a fresh database, migrated and seeded through Django.
        t = time.monotonic()
        recreate_database(admin_url)
        manage = [str(PYTHON), "manage.py"]
        run([*manage, "migrate", "--noinput", "-v", "0"], env, timeout=120)
        run([*manage, "seed_demo"], env, timeout=60)
        token = run([*manage, "create_api_key", "acme", "--name", "bench", "--scope", "telephony"], env, 60)
        token = token.strip().splitlines()[-1].strip()
        seeded_out = run([str(PYTHON), str(Path(__file__)), "--seed-flow"], env, 60)
        seeded = json.loads(seeded_out.strip().splitlines()[-1])
        print(f"database {DB_NAME}: migrated and seeded in {time.monotonic() - t:.1f} s", flush=True)

        # 2. gunicorn, as the README serves production HTTP.
        gunicorn_cmd = [
            str(GUNICORN),
            "voiso_byob.wsgi:application",
            "--workers",
            str(args.workers),
            "--worker-class",
            args.worker_class,
            *(["--threads", str(args.worker_threads)] if args.worker_class == "gthread" else []),
            "--bind",
            f"127.0.0.1:{port}",
            # Gunicorn 27's control socket defaults to one path per user; the bench's server needs none.
            "--no-control-socket",
        ]
        server = subprocess.Popen(gunicorn_cmd, cwd=ROOT, env=env, stdout=log_fd, stderr=subprocess.STDOUT)
        wait_until_up(base, server, time.monotonic() + 30)

        # Each endpoint answers as expected before it is timed.
        call = {"call_id": f"bench-{nonce}-check", "to": NUMBER, "from": CALLER}
        status, body = post(f"{base}/api/v1/telephony/route", call, token)
        verbs = [step["verb"] for step in body["instructions"]] if status == 200 else body
        if verbs != ["play", "gather"]:
            raise RuntimeError(f"route answered {status}: {body}")
        status, body = post(f"{base}/api/v1/telephony/route", {**call, "digits": "1"}, token)
        if status != 200 or body.get("destination", {}).get("type") != "queue":
            raise RuntimeError(f"route with digits answered {status}: {body}")
        refer = {"call_id": call["call_id"], "refer_to": REFER_TO}
        status, body = post(f"{base}/api/v1/telephony/refer", refer, token)
        if status != 200 or body.get("destination", {}).get("type") != "queue":
            raise RuntimeError(f"refer answered {status}: {body}")

        # 3. warm-up, then the timed runs, one after the other on the same server.
        wrk_opts = {"connections": args.connections, "threads": args.threads}
        endpoints = {name: (path, mode, needs_key) for name, path, mode, needs_key in ENDPOINTS}
        load_before = os.getloadavg()
        for path, mode, needs_key in endpoints.values():
            wrk(base, path, mode, token if needs_key else "", nonce + "w", seconds=args.warmup, **wrk_opts)
        for name in TIMED:
            path, mode, needs_key = endpoints[name.removesuffix("_after")]
            print(f"wrk {name}: {args.duration:.0f} s at {args.connections} connections ...", flush=True)
            key = token if needs_key else ""
            results[name] = wrk(base, path, mode, key, nonce, seconds=args.duration, **wrk_opts)
        load_after = os.getloadavg()

        # 4. the figures.
        minimal_rps = (results["minimal"]["rps"] + results["minimal_after"]["rps"]) / 2
        drift = abs(results["minimal"]["rps"] - results["minimal_after"]["rps"]) / minimal_rps
        failures: list[str] = []
        for name, result in results.items():
            result["ratio"] = result["rps"] / minimal_rps if minimal_rps else 0.0
            if result["errors"]:
                failures.append(
                    f"{name}: {result['errors']} errors "
                    f"(statuses {result['statuses']}, socket {result['socket_errors']})"
                )
            if not name.startswith("minimal") and result["ratio"] < TARGET_RATIO:
                failures.append(f"{name}: {result['ratio']:.2f} x minimal < {TARGET_RATIO}")
        print()
        print(
            f"gunicorn {args.workers} x {worker_label(args)} workers, "
            f"wrk -t{args.threads} -c{args.connections} -d{args.duration:.0f}s, PostgreSQL + Redis, DEBUG off"
        )
        header = f"{'endpoint':<34} {'req/s':>8} {'x minimal':>10} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7}"
        print(header)
        print("-" * len(header))
        for name, result in results.items():
            label = "POST " + result["path"] + (" (after)" if name == "minimal_after" else "")
            print(
                f"{label:<34} {result['rps']:>8.0f} {result['ratio']:>10.2f} "
                f"{result['p50_ms']:>8.2f} {result['p99_ms']:>8.2f} {result['errors']:>7}"
            )
        print(
            f"ratio = req/s ÷ mean of the two minimal runs ({minimal_rps:.0f}); they differ by {drift:.0%}; "
            f"load average before/after {load_before[0]:.2f}/{load_after[0]:.2f} on {os.cpu_count()} CPUs"
        )
        if drift > DRIFT_WARNING:
            print(f"warning: the minimal view rate moved {drift:.0%} during the run (other load here)")
        verdict = "PASS" if not failures else "FAIL"
        print(f"target: route and refer ≥ {TARGET_RATIO} x minimal, no errors → {verdict}")
        for failure in failures:
            print(f"  missed: {failure}")
        exit_code = 0 if not failures else 1

        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(
            json.dumps(
                {
                    "benchmark": "telephony_http",
                    "when": datetime.now(UTC).isoformat(timespec="seconds"),
                    "machine": machine(),
                    "server": {
                        "command": " ".join([Path(gunicorn_cmd[0]).name, *gunicorn_cmd[1:]]),
                        "gunicorn": version_of([str(GUNICORN), "--version"]),
                        "workers": args.workers,
                        "worker_class": args.worker_class,
                        "worker_threads": args.worker_threads if args.worker_class == "gthread" else None,
                        "settings": {
                            k: env[k]
                            for k in ("DEBUG", "CONN_MAX_AGE", "ROOT_URLCONF", "REDIS_URL", "ALLOWED_HOSTS")
                        }
                        | {"DATABASE": f"postgresql/{DB_NAME}"},
                    },
                    "load": {
                        "tool": version_of(["wrk", "--version"]),
                        "threads": args.threads,
                        "connections": args.connections,
                        "seconds": args.duration,
                        "warmup_seconds": args.warmup,
                        "script": str(LUA.relative_to(ROOT)),
                    },
                    "seeded": seeded,
                    "minimal_rps_mean": minimal_rps,
                    "minimal_drift": drift,
                    "load_average_1m": {"before": load_before[0], "after": load_after[0]},
                    "target": {"min_ratio_to_minimal": TARGET_RATIO, "endpoints": ["route", "refer"]},
                    "results": results,
                    "passed": not failures,
                    "failures": failures,
                },
                indent=2,
            )
        )
        print(f"wrote {RESULTS} ({time.monotonic() - started:.0f} s in all)")
        return exit_code
    except Exception as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        tail = log_path.read_text(errors="replace")[-3000:]
        if tail:
            print(f"--- gunicorn log (tail) ---\n{tail}", file=sys.stderr)
        return 2
    finally:
        stop(server)
        os.close(log_fd)
        log_path.unlink(missing_ok=True)
        try:
            delete_menu_state(redis_url, nonce)
            delete_menu_state(redis_url, nonce + "w")
        except Exception as exc:
            print(f"warning: could not delete menu-state keys: {exc}", file=sys.stderr)
        if not args.keep_db:
            try:
                drop_database(admin_url)
            except Exception as exc:
                print(f"warning: could not drop {DB_NAME}: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
