"""Replaying a generated 100,000-event day: twice shuffled gives exactly the records of one ordered replay.

    .venv/bin/python bench/replay.py [--events 100000] [--batch 500] [--seed 1] [--keep-db]

What it does, in one run (a few minutes):
  1. drops and recreates the PostgreSQL database `voiso_bench_replay` (BENCH_PG_URL, default
     postgres://postgres@127.0.0.1:5432/postgres, is where it connects to do that) and migrates it;
  2. in this process, with that database and Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/11,
     the live feed's channel layer): creates a contact center with two bots, two queues, five
     agents and a number (bench/events_day.py `seed_center`), and generates the day
     (`generate_day`: inbound and outbound calls, bots, handoffs to queues / agents / bots /
     unknown extensions / external numbers, failures and retries, agents, recordings);
  3. replays it in time order, in batches of --batch, through the events API's own path
     (`reporting.events.validate_events` then `reporting.ingest.ingest_events`; no HTTP), and
     snapshots every field of every call record and handoff; between batches, in every phase, it
     analyzes the tables that autovacuum would (its default thresholds: bench/harness.py), as
     this machine's PostgreSQL runs with autovacuum off;
  4. runs ANALYZE (as autovacuum would on a live database), deletes the center's events, records
     and handoffs, replays the day shuffled (batches of
     --batch), then again with another shuffle and batches of 137 (every event a duplicate);
  5. compares the two snapshots field by field, prints a table (events/s per phase), writes
     bench/results/replay.json, and exits 1 if any record or handoff differs. The database is
     dropped at the end unless --keep-db.

Target (issue #5): replaying the day twice, shuffled, leaves exactly the records and handoffs of
one ordered replay.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the project root
from bench.harness import (
    ADMIN_URL,
    PYTHON,
    ROOT,
    admin_execute,
    analyze_as_autovacuum_would,
    database_url,
    machine,
)

RESULTS = ROOT / "bench" / "results" / "replay.json"
DB_NAME = "voiso_bench_replay"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    admin_url = ADMIN_URL
    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/11")
    from cryptography.fernet import Fernet

    env = {
        "DJANGO_SETTINGS_MODULE": "voiso_byob.settings",
        "DATABASE_URL": database_url(admin_url, DB_NAME),
        "REDIS_URL": redis_url,
        "SECRET_KEY": "bench-only-" + secrets.token_urlsafe(32),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    os.environ.update(env)
    started = time.monotonic()
    admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin_execute(admin_url, f'CREATE DATABASE "{DB_NAME}"')
    try:
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=os.environ,
            check=True,
        )
        return run(args)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin_execute(admin_url, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        print(f"({time.monotonic() - started:.0f} s in all)")


def run(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from bench.events_day import differences, generate_day, replay, seed_center, shuffled, snapshot, wipe

    center = seed_center("acme")
    t = time.monotonic()
    day = generate_day(events=args.events, seed=args.seed, slug=center.slug)
    generated_s = time.monotonic() - t
    kinds = Counter(e["type"] for e in day)
    calls = len({e["call_id"] for e in day})
    print(f"generated {len(day):,} events of {calls:,} calls in {generated_s:.1f} s")
    print(f"  {dict(sorted(kinds.items()))}")

    phases: list[dict[str, Any]] = []

    from django.db import connection

    def autovacuum() -> None:
        with connection.cursor() as cursor:
            analyze_as_autovacuum_would(cursor)

    def timed(name: str, events: list[dict[str, Any]], batch: int) -> tuple[int, int]:
        print(f"{name} ...", flush=True)
        t0 = time.monotonic()
        # Between batches, what autovacuum does on a live database as the tables grow (included
        # in the time): the prepared statements' plans are made again on the new statistics.
        accepted, duplicates = replay(center, events, batch=batch, after_batch=autovacuum)
        seconds = time.monotonic() - t0
        phases.append(
            {
                "phase": name,
                "events": len(events),
                "batch": batch,
                "accepted": accepted,
                "duplicates": duplicates,
                "seconds": seconds,
                "events_per_s": len(events) / seconds,
            }
        )
        return accepted, duplicates

    failures: list[str] = []
    if timed("ordered replay", day, args.batch) != (len(day), 0):
        failures.append("the ordered replay did not accept every event once")
    t = time.monotonic()
    ordered = snapshot(center)
    snapshot_s = time.monotonic() - t
    # Statistics of a day's data, so the statements are planned for tables of that size (run
    # before the wipe: statistics of the emptied tables would plan the shuffled replay for empty
    # ones, which it fills at once).
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    wipe(center)
    if timed("shuffled replay", shuffled(day, seed=args.seed + 1), args.batch) != (len(day), 0):
        failures.append("the shuffled replay did not accept every event once")
    if timed("shuffled again (all duplicates)", shuffled(day, seed=args.seed + 2), 137) != (0, len(day)):
        failures.append("the second shuffled replay stored something")
    replayed = snapshot(center)
    diffs = differences(ordered, replayed, limit=20)
    identical = ordered == replayed
    if not identical:
        failures.append(f"{len(diffs)}+ differences, e.g. {diffs[:3]}")

    records, handoffs = ordered
    outcomes = Counter(r["bot_outcome"] or "(no bot)" for r in records.values())
    states = Counter(h["state"] for h in handoffs.values())
    print()
    columns = [("events", 8), ("batch", 6), ("accepted", 9), ("dupes", 8), ("seconds", 8), ("events/s", 9)]
    header = f"{'phase':<34} " + " ".join(f"{name:>{width}}" for name, width in columns)
    print(header)
    print("-" * len(header))
    for p in phases:
        print(
            f"{p['phase']:<34} {p['events']:>8,} {p['batch']:>6} {p['accepted']:>9,} {p['duplicates']:>8,} "
            f"{p['seconds']:>8.1f} {p['events_per_s']:>9,.0f}"
        )
    print(f"records {len(records):,}, outcomes {dict(outcomes)}")
    print(f"handoffs {len(handoffs):,}, states {dict(states)}; snapshot {snapshot_s:.1f} s")
    verdict = "PASS" if not failures else "FAIL"
    print(
        f"target: twice shuffled == one ordered replay, every field of every record and handoff → {verdict}"
    )
    for failure in failures:
        print(f"  {failure}")

    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "replay",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": machine(),
                "database": f"postgresql/{DB_NAME}",
                "events": len(day),
                "calls": calls,
                "seed": args.seed,
                "event_types": dict(kinds),
                "records": len(records),
                "handoffs": len(handoffs),
                "outcomes": dict(outcomes),
                "handoff_states": dict(states),
                "phases": phases,
                "identical": identical,
                "differences": diffs,
                "passed": not failures,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS}")
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
