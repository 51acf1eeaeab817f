"""Dialer workers on PostgreSQL: claims per second with several workers, and one tick's decision.

    .venv/bin/python bench/dialer.py [--workers 4] [--claim-leads 200000] [--campaigns 50]
                                     [--tick-leads 1000000] [--keep-db]

What it does, in one run:
  1. drops and recreates the PostgreSQL database `voiso_bench_dialer` (BENCH_PG_URL is where it
     connects to do that) and migrates it;
  2. claim rate: 8 campaigns with one bot each (capacity larger than their leads), --claim-leads
     leads in all (New York numbers, inside the window at the benchmark's fixed moment); --workers
     processes each run `Dialer.tick()` with a gateway that places nothing, until every lead is
     claimed; leads claimed per second over the wall time, and the double claims (a lead with more
     than one attempt, an attempt originated twice) counted from the database;
  3. tick decision: --campaigns campaigns holding --tick-leads leads between them (COPY), then
     `Dialer.tick()` timed in this process: with every bot full (the decision alone: capacity and
     the campaigns' state) and with one free slot per campaign (the decision and a claim each);
     median / p90 / max ms over 20 ticks each;
  4. prints a table, writes bench/results/dialer.json, exits 1 when a target is missed. The
     database is dropped at the end unless --keep-db.

Targets (issue #13): 4 workers claim at least 5,000 leads/s together with zero double claims;
with 50 active campaigns holding 1 M leads, one tick's decision ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the project root
from bench.harness import ADMIN_URL, PYTHON, ROOT, admin_execute, database_url, machine

RESULTS = ROOT / "bench" / "results" / "dialer.json"
DB_NAME = "voiso_bench_dialer"
# A Wednesday, 10:00 in New York: every lead's window is open.
NOW = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)
CLAIM_TARGET = 5_000.0
TICK_TARGET_MS = 50.0


class NullGateway:
    def originate(self, origination: Any) -> None:
        pass

    def close(self) -> None:
        pass


def _setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def seed(campaigns: int, leads: int, capacity: int) -> list[str]:
    """Campaigns with a bot each, and their leads by COPY (bench data: valid New York numbers)."""
    from django.db import connection

    from campaigns.models import Campaign, CampaignStatus
    from virtual_agents import services as va
    from virtual_agents.models import VirtualAgent
    from voiso_byob.models import ContactCenter
    from voiso_byob.services import create_contact_center

    center = ContactCenter.objects.filter(slug="dialer").first() or create_contact_center(
        slug="dialer",
        name="Dialer",
        admin_email="admin@dialer.example",
        admin_password=None,
        by="bench",
        byob_enabled=True,
    )
    integration = va.create_integration(
        center=center, provider="generic_sip", label=f"Bots {time.monotonic()}", credentials=None, by="bench"
    )
    ids = []
    per = leads // campaigns
    for n in range(campaigns):
        bot = va.create_virtual_agent(
            integration=integration,
            by="bench",
            name=f"Bot {n} {time.monotonic()}",
            sip_uri=f"sip:bot{n}@10.0.0.5",
            connect=True,
        )
        VirtualAgent.objects.filter(pk=bot.pk).update(max_concurrent_calls=capacity)
        campaign = Campaign.objects.create(
            contact_center=center,
            name=f"Campaign {n} {time.monotonic()}",
            status=CampaignStatus.ACTIVE,
            calling_hours=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00", "end": "21:00"}],
            max_attempts=3,
        )
        campaign.virtual_agents.set([bot])
        ids.append(str(campaign.pk))
        with (
            connection.cursor() as cursor,
            cursor.copy(
                "COPY campaigns_lead (id, contact_center_id, campaign_id, phone, name, source, priority, "
                "is_active, context, timezones, status, attempts, next_attempt_at, last_outcome, created) "
                "FROM STDIN"
            ) as copy,
        ):
            import uuid

            for i in range(per):
                # 212 + an exchange 200-999 + a line: distinct numbers, all valid New York numbers.
                index = n * per + i
                phone = f"+1212{200 + index // 10_000 % 800:03d}{index % 10_000:04d}"
                copy.write_row(
                    (
                        uuid.uuid4(),
                        center.pk,
                        campaign.pk,
                        phone,
                        "",
                        "bench",
                        500,
                        True,
                        "{}",
                        '["America/New_York"]',
                        "new",
                        0,
                        NOW.replace(hour=0),
                        "",
                        NOW.replace(hour=0),
                    )
                )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE campaigns_lead")
    return ids


def _claim_worker(env: dict[str, str], deadline: float, counts: Any, index: int) -> None:
    _setup_django(env)
    from campaigns.dialer import Dialer

    dialer = Dialer(gateway=NullGateway(), now=lambda: NOW, busy_calls=lambda _: 0)
    claimed = 0
    idle = 0
    while time.monotonic() < deadline and idle < 3:
        result = dialer.tick()
        claimed += result.originated
        idle = idle + 1 if result.originated == 0 else 0
    counts[index] = claimed


def claim_phase(env: dict[str, str], workers: int, leads: int) -> dict[str, Any]:
    from django.db import connection

    seed(8, leads, capacity=leads)
    ctx = multiprocessing.get_context("spawn")
    counts = ctx.Array("q", workers)
    start = time.monotonic()
    procs = [ctx.Process(target=_claim_worker, args=(env, start + 300, counts, i)) for i in range(workers)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join()
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(originated_at) FROM campaigns_callattempt")
        cursor.execute("SELECT count(*), count(DISTINCT lead_id) FROM campaigns_callattempt")
        attempts, distinct_leads = cursor.fetchone()
        cursor.execute("SELECT count(*) FROM campaigns_lead WHERE attempts > 1")
        (twice,) = cursor.fetchone()
    # Wall time to the last claim: the workers' idle ticks at the end are not claiming.
    seconds = time.monotonic() - start
    return {
        "workers": workers,
        "leads": leads,
        "claimed": attempts,
        "per_worker": list(counts),
        "double_claims": (attempts - distinct_leads) + twice,
        "seconds": seconds,
        "leads_per_s": attempts / seconds,
    }


def tick_phase(campaigns: int, leads: int) -> dict[str, Any]:
    from campaigns.dialer import Dialer
    from campaigns.models import Campaign
    from virtual_agents.models import VirtualAgent

    t = time.monotonic()
    ids = seed(campaigns, leads, capacity=1)
    seeded_s = time.monotonic() - t
    bots = VirtualAgent.objects.filter(campaigns__in=ids)
    busy = {str(pk): 1 for pk in bots.values_list("pk", flat=True)}
    timings: dict[str, list[float]] = {"full": [], "one_free_each": []}
    for name, busy_calls in (("full", lambda bot: busy.get(bot, 0)), ("one_free_each", lambda bot: 0)):
        dialer = Dialer(gateway=NullGateway(), now=lambda: NOW, busy_calls=busy_calls)
        for _ in range(20):
            t0 = time.perf_counter()
            dialer.tick()
            timings[name].append((time.perf_counter() - t0) * 1000)
            # Each free slot was taken by a claim: end those calls so the next tick has one again.
            from campaigns.models import CallAttempt

            CallAttempt.objects.filter(ended_at__isnull=True).update(ended_at=NOW, outcome="completed")
    assert Campaign.objects.filter(pk__in=ids).count() == campaigns
    return {
        "campaigns": campaigns,
        "leads": leads,
        "seed_seconds": seeded_s,
        **{
            name: {
                "median_ms": statistics.median(values),
                "p90_ms": statistics.quantiles(values, n=10)[-1],
                "max_ms": max(values),
            }
            for name, values in timings.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--claim-leads", type=int, default=200_000)
    parser.add_argument("--campaigns", type=int, default=50)
    parser.add_argument("--tick-leads", type=int, default=1_000_000)
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    env = {
        "DJANGO_SETTINGS_MODULE": "voiso_byob.settings",
        "DATABASE_URL": database_url(ADMIN_URL, DB_NAME),
        "REDIS_URL": "",
        "SECRET_KEY": "bench-only-" + secrets.token_urlsafe(32),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PYTHONPATH": str(ROOT),
    }
    admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin_execute(ADMIN_URL, f'CREATE DATABASE "{DB_NAME}"')
    started = time.monotonic()
    try:
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
        )
        _setup_django(env)
        print(f"claim: {args.workers} workers, {args.claim_leads:,} leads in 8 campaigns ...", flush=True)
        claim = claim_phase(env, args.workers, args.claim_leads)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE campaigns_callattempt, campaigns_lead CASCADE")
        print(f"tick: {args.campaigns} campaigns, {args.tick_leads:,} leads ...", flush=True)
        tick = tick_phase(args.campaigns, args.tick_leads)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')

    rows = [
        ("claims/s, all workers", f"{claim['leads_per_s']:,.0f}", f">= {CLAIM_TARGET:,.0f}"),
        ("double claims", str(claim["double_claims"]), "0"),
        ("claims per worker", ", ".join(f"{n:,}" for n in claim["per_worker"]), ""),
        (
            "tick, bots full: median / p90 ms",
            f"{tick['full']['median_ms']:.1f} / {tick['full']['p90_ms']:.1f}",
            f"<= {TICK_TARGET_MS:.0f}",
        ),
        (
            "tick, 1 free slot each: median / p90 ms",
            f"{tick['one_free_each']['median_ms']:.1f} / {tick['one_free_each']['p90_ms']:.1f}",
            f"<= {TICK_TARGET_MS:.0f}",
        ),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"\n{'measure'.ljust(width)}  {'result':>22}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>22}  {target}")
    met = (
        claim["leads_per_s"] >= CLAIM_TARGET
        and claim["double_claims"] == 0
        and tick["full"]["median_ms"] <= TICK_TARGET_MS
        and tick["one_free_each"]["median_ms"] <= TICK_TARGET_MS
    )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps({"machine": machine(), "claim": claim, "tick": tick, "targets_met": met}, indent=2)
    )
    print(f"\nwritten {RESULTS.relative_to(ROOT)} ({time.monotonic() - started:.0f} s in all)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
