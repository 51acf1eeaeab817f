"""The dialer through the simulator gateway with 200 bot slots: never above capacity, and how full.

    .venv/bin/python bench/dialer_capacity.py [--seconds 90] [--time-scale 0.5] [--workers 2] [--keep-db]

What it does, in one run:
  1. drops and recreates the PostgreSQL database `voiso_bench_dialer_cap` (BENCH_PG_URL is where it
     connects to do that), migrates it and seeds one contact center with four bots of 50 slots
     each (200 in all) and one active campaign of 20,000 New York leads (enough to stay busy);
  2. serves the events API with gunicorn (2 sync workers, PostgreSQL and Redis as production runs
     them) and starts --workers `manage.py run_dialer --gateway simulator` processes against it, the
     calls' lengths multiplied by --time-scale (the simulator's last-digit stories: a bot call
     lasts 45-100 s, busy 2 s, no answer 25 s, machine 6 s, failed 0.5 s, all scaled);
  3. every 0.2 s for --seconds, counts the dials in progress (claimed, not yet ended) from the
     database: the calls holding a bot slot or ringing toward one;
  4. prints the maximum (must never exceed 200) and the mean share of capacity over the samples
     after the first 10 s (the first tick fills the slots; due leads remain throughout), writes
     bench/results/dialer_capacity.json, exits 1 when a target is missed.

Target (issue #13): concurrent calls never above capacity, and at least 95 % of it while due leads
remain.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
from pathlib import Path

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

RESULTS = ROOT / "bench" / "results" / "dialer_capacity.json"
DB_NAME = "voiso_bench_dialer_cap"
SLOTS = 200
TARGET_SHARE = 0.95
WARM_UP_S = 10.0

SEED = """
import django, sys
django.setup()
from datetime import time
from campaigns.models import DialerPolicy, Lead
from campaigns.services import create_campaign, start_campaign
from virtual_agents import services as va
from voiso_byob.services import create_contact_center
center = create_contact_center(slug="capbench", name="Cap", admin_email="a@cap.example",
                               admin_password=None, by="bench", byob_enabled=True)
# The benchmark runs at any hour: the center's window and the campaign's hours span the day.
DialerPolicy.objects.create(contact_center=center, legal_start=time(0, 0), legal_end=time(23, 59, 59))
integration = va.create_integration(
    center=center, provider="generic_sip", label="Bots", credentials=None, by="bench"
)
bots = [va.create_virtual_agent(integration=integration, by="bench", name=f"Bot {n}",
        sip_uri=f"sip:bot{n}@10.0.0.5", max_concurrent_calls=50, connect=True) for n in range(4)]
days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
campaign = create_campaign(center=center, by="bench", name="Capacity", virtual_agents=bots,
                           calling_hours=[{"days": days, "start": "00:00", "end": "23:59"}])
Lead.objects.bulk_create(
    [Lead(contact_center=center, campaign=campaign, phone=f"+1212{200 + n // 10000:03d}{n % 10000:04d}",
          timezones=["America/New_York"]) for n in range(20000)], batch_size=2000)
start_campaign(campaign=campaign, by="bench")
print("seeded")
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0)
    parser.add_argument("--time-scale", type=float, default=0.5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    db_url = database_url(ADMIN_URL, DB_NAME)
    env = served_env(db_url, os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13"))
    env["ROOT_URLCONF"] = "voiso_byob.urls"
    admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin_execute(ADMIN_URL, f'CREATE DATABASE "{DB_NAME}"')
    started = time.monotonic()
    server = None
    dialers: list[subprocess.Popen[bytes]] = []
    log_fd, log_name = tempfile.mkstemp(prefix="bench-dialer-cap-", suffix=".log")
    samples: list[tuple[float, int]] = []
    try:
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True
        )
        subprocess.run([str(PYTHON), "-c", SEED], cwd=ROOT, env=env, check=True)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = subprocess.Popen(
            [
                str(GUNICORN),
                "voiso_byob.wsgi:application",
                "--workers",
                "2",
                "--bind",
                f"127.0.0.1:{port}",
                "--no-control-socket",
            ],
            cwd=ROOT,
            env=env,
            stdout=log_fd,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, _ = post(f"{base}/api/v1/telephony/events", {}, "not-a-key")
                if status == 401:
                    break
            except (urllib.error.URLError, ConnectionError, OSError):
                time.sleep(0.2)
        dialers = [
            subprocess.Popen(
                [
                    str(PYTHON),
                    "manage.py",
                    "run_dialer",
                    "--gateway",
                    "simulator",
                    "--url",
                    base,
                    "--time-scale",
                    str(args.time_scale),
                ],
                cwd=ROOT,
                env=env,
                stdout=log_fd,
                stderr=subprocess.STDOUT,
            )
            for _ in range(args.workers)
        ]
        import psycopg

        with psycopg.connect(db_url, autocommit=True) as conn:
            t0 = time.monotonic()
            while (now := time.monotonic() - t0) < args.seconds:
                (open_dials,) = conn.execute(
                    "SELECT count(*) FROM campaigns_callattempt WHERE ended_at IS NULL"
                ).fetchone()
                samples.append((now, open_dials))
                time.sleep(0.2)
            (due,) = conn.execute(
                "SELECT count(*) FROM campaigns_lead WHERE status IN ('new', 'retry')"
            ).fetchone()
            (dialled,) = conn.execute("SELECT count(*) FROM campaigns_callattempt").fetchone()
    finally:
        for proc in dialers:
            proc.terminate()
        for proc in dialers:
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
        stop(server)
        os.close(log_fd)
        if not args.keep_db:
            admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')

    steady = [count for at, count in samples if at >= WARM_UP_S]
    peak = max(count for _, count in samples)
    share = statistics.mean(steady) / SLOTS
    low = min(steady) / SLOTS
    met = peak <= SLOTS and share >= TARGET_SHARE and due > 0
    rows = [
        ("dials in progress, max", f"{peak}", f"<= {SLOTS}"),
        ("share of capacity, mean after 10 s", f"{share:.1%}", f">= {TARGET_SHARE:.0%}"),
        ("share of capacity, lowest sample", f"{low:.1%}", ""),
        ("calls placed", f"{dialled:,}", ""),
        ("due leads left at the end", f"{due:,}", "> 0"),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"\n{'measure'.ljust(width)}  {'result':>10}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>10}  {target}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": machine(),
                "seconds": args.seconds,
                "time_scale": args.time_scale,
                "workers": args.workers,
                "slots": SLOTS,
                "peak": peak,
                "mean_share": share,
                "lowest_share": low,
                "dialled": dialled,
                "due_left": due,
                "targets_met": met,
                "log": log_name,
            },
            indent=2,
        )
    )
    print(
        f"\nwritten {RESULTS.relative_to(ROOT)} ({time.monotonic() - started:.0f} s in all; log {log_name})"
    )
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
