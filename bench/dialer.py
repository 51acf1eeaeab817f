"""Dialer workers on PostgreSQL: claims per second with several workers, and one tick's decision.

    .venv/bin/python bench/dialer.py [--workers 4] [--claim-leads 200000] [--campaigns 50]
                                     [--tick-leads 1000000] [--rounds 1] [--baseline REV]
                                     [--db voiso_bench_dialer] [--keep-db]

What it does, in one run:
  1. drops and recreates the PostgreSQL database --db (BENCH_PG_URL is where it connects to do
     that) and migrates it;
  2. claim rate: 8 campaigns with one bot each (capacity larger than their leads), --claim-leads
     leads in all (New York numbers, inside the window at the benchmark's fixed moment), seeded
     once into a template database that each run copies; --workers processes set Django up, wait
     for one another, then each runs `Dialer.tick()` with a gateway that places nothing until no
     due lead is left (a tick that finds every bot held by the others waits 10 ms, as run_dialer
     waits for its next tick). Leads claimed per second from the common start to the last claim,
     and the double claims (a lead with more than one attempt, more attempts than leads) counted
     from the database; also the rate over the whole run from before the processes start (start-up
     and the last idle ticks included: how this bench measured until the tick was batched);
  3. tick decision: --campaigns campaigns holding --tick-leads leads between them (COPY), then
     `Dialer.tick()` timed in this process 20 times: with every bot full (the decision alone: which
     campaigns have free slots) and with one free slot per campaign (the decision and a claim in
     each: locks, claim-time checks, the attempts written and committed, marked dialled). The
     gateway places nothing, so a tick's time is its decision: everything before the calls go out;
  4. with --baseline REV, the same phases also run campaigns/dialer.py and campaigns/claims.py as
     they were at git revision REV (loaded from git beside the current ones), interleaved with the
     current code — claim runs alternate, ticks alternate in blocks of five — so both meet the same
     machine; --rounds repeats the claim runs;
  5. prints a table, writes bench/results/dialer.json, exits 1 when a target is missed. The
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
import types
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


def dialer_class(baseline: str | None) -> type:
    """The current Dialer, or the one of campaigns/dialer.py and campaigns/claims.py at git `baseline`.

    The old modules are loaded under other names beside the current ones (the old dialer made to
    import the old claims); the rest of the code is today's.
    """
    if baseline is None:
        from campaigns.dialer import Dialer

        return Dialer
    name = f"baseline_dialer_{baseline}"
    if name not in sys.modules:
        for path, module_name in (
            ("campaigns/claims.py", f"baseline_claims_{baseline}"),
            ("campaigns/dialer.py", name),
        ):
            source = subprocess.run(
                ["git", "show", f"{baseline}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
            ).stdout.replace("from campaigns.claims import", f"from baseline_claims_{baseline} import")
            module = types.ModuleType(module_name)
            sys.modules[module_name] = module
            exec(compile(source, f"{baseline}:{path}", "exec"), module.__dict__)
    return sys.modules[name].Dialer


def _claim_worker(
    env: dict[str, str],
    baseline: str | None,
    ready: Any,
    go: Any,
    counts: Any,
    last: Any,
    cpu: Any,
    index: int,
) -> None:
    _setup_django(env)
    from campaigns.models import Lead

    dialer = dialer_class(baseline)(gateway=NullGateway(), now=lambda: NOW, busy_calls=lambda _: 0)
    backend = _backend_cpu_seconds()
    ready.release()
    go.wait()
    started = time.process_time()
    try:
        _claim_until_done(dialer, counts, last, index, Lead)
    finally:
        after = _backend_cpu_seconds()
        cpu[2 * index] = time.process_time() - started
        cpu[2 * index + 1] = after - backend if after is not None and backend is not None else 0.0


def _claim_until_done(dialer: Any, counts: Any, last: Any, index: int, lead_model: Any) -> None:
    deadline = time.monotonic() + 300
    claimed = 0
    while time.monotonic() < deadline:
        result = dialer.tick()
        if result.originated:
            claimed += result.originated
            last[index] = time.monotonic()
        elif lead_model.objects.due(NOW).exists():
            time.sleep(0.01)  # every bot with due leads is held by another worker this moment
        else:
            break
    counts[index] = claimed


def claim_run(
    env: dict[str, str], template: str, db_url: str, workers: int, baseline: str | None
) -> dict[str, Any]:
    """One claim run on a fresh copy of the template database."""
    import psycopg

    db_name = env["DATABASE_URL"].rsplit("/", 1)[1]
    admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    admin_execute(ADMIN_URL, f'CREATE DATABASE "{db_name}" TEMPLATE "{template}"')
    ctx = multiprocessing.get_context("spawn")
    counts, last, cpu = ctx.Array("q", workers), ctx.Array("d", workers), ctx.Array("d", 2 * workers)
    ready, go = ctx.Semaphore(0), ctx.Event()
    launched = time.monotonic()
    procs = [
        ctx.Process(target=_claim_worker, args=(env, baseline, ready, go, counts, last, cpu, i))
        for i in range(workers)
    ]
    for proc in procs:
        proc.start()
    for _ in procs:
        ready.acquire()
    start = time.monotonic()
    go.set()
    for proc in procs:
        proc.join()
    ended = time.monotonic()
    with psycopg.connect(db_url) as conn:
        attempts, distinct_leads = conn.execute(
            "SELECT count(*), count(DISTINCT lead_id) FROM campaigns_callattempt"
        ).fetchone()
        (twice,) = conn.execute("SELECT count(*) FROM campaigns_lead WHERE attempts > 1").fetchone()
        (leads,) = conn.execute("SELECT count(*) FROM campaigns_lead").fetchone()
    seconds = max(last) - start
    return {
        "code": baseline or "current",
        "workers": workers,
        "leads": leads,
        "claimed": attempts,
        "per_worker": list(counts),
        "double_claims": (attempts - distinct_leads) + twice,
        "seconds": seconds,
        "leads_per_s": attempts / seconds,
        "with_startup_seconds": ended - launched,
        "with_startup_leads_per_s": attempts / (ended - launched),
        # CPU per claim, the workers' and their backends': what a claim costs whatever else runs.
        "worker_cpu_us_per_claim": sum(cpu[0::2]) * 1e6 / attempts,
        "backend_cpu_us_per_claim": sum(cpu[1::2]) * 1e6 / attempts,
        "load": os.getloadavg(),
    }


def claim_phase(
    env: dict[str, str], workers: int, leads: int, rounds: int, baseline: str | None
) -> list[dict[str, Any]]:
    from django.db import connections

    template = env["DATABASE_URL"].rsplit("/", 1)[1]
    seed(8, leads, capacity=leads)
    with connections["default"].cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    connections.close_all()
    run_env = {**env, "DATABASE_URL": env["DATABASE_URL"] + "_claim"}
    runs = []
    try:
        for _ in range(rounds):
            for code in ([baseline] if baseline else []) + [None]:
                run = claim_run(run_env, template, run_env["DATABASE_URL"], workers, code)
                print(
                    f"  {run['code']}: {run['leads_per_s']:,.0f} claims/s, {run['double_claims']} double, "
                    f"per worker {run['per_worker']}, CPU per claim {run['worker_cpu_us_per_claim']:.0f} + "
                    f"{run['backend_cpu_us_per_claim']:.0f} us (worker + backend), load {run['load'][0]:.2f}",
                    flush=True,
                )
                runs.append(run)
    finally:
        admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{template}_claim" WITH (FORCE)')
    return runs


def _range(values: list[float]) -> list[float]:
    return [values[0]] if len(values) == 1 else [min(values), max(values)]


def _summary(values: list[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(values),
        "p90_ms": statistics.quantiles(values, n=10)[-1],
        "min_ms": min(values),
        "max_ms": max(values),
    }


def _backend_cpu_seconds() -> float | None:
    """CPU time of this process's PostgreSQL backend so far (None unless the server is on this host)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tick_phase(campaigns: int, leads: int, baseline: str | None) -> dict[str, Any]:
    from campaigns.models import CallAttempt, Campaign
    from virtual_agents.models import VirtualAgent

    t = time.monotonic()
    ids = seed(campaigns, leads, capacity=1)
    seeded_s = time.monotonic() - t
    bots = VirtualAgent.objects.filter(campaigns__in=ids)
    busy = {str(pk): 1 for pk in bots.values_list("pk", flat=True)}
    codes = ([baseline] if baseline else []) + [None]
    timings: dict[str, dict[str, list[float]]] = {
        code or "current": {"full": [], "one_free_each": []} for code in codes
    }
    # CPU time of the ticks, this process's and its backend's: what a tick costs whatever else the
    # machine runs (the wall times above wait for the other processes too). /proc ticks are 10 ms:
    # summed over all of a code's ticks, then divided.
    cpu: dict[str, dict[str, list[float]]] = {
        code or "current": {"full": [0.0, 0.0], "one_free_each": [0.0, 0.0]} for code in codes
    }
    for name, busy_calls in (("full", lambda bot: busy.get(bot, 0)), ("one_free_each", lambda bot: 0)):
        dialers = {
            code or "current": dialer_class(code)(
                gateway=NullGateway(), now=lambda: NOW, busy_calls=busy_calls
            )
            for code in codes
        }
        for _block in range(4):
            for code, dialer in dialers.items():
                for _ in range(5):
                    backend = _backend_cpu_seconds()
                    c0, t0 = time.process_time(), time.perf_counter()
                    dialer.tick()
                    timings[code][name].append((time.perf_counter() - t0) * 1000)
                    cpu[code][name][0] += time.process_time() - c0
                    after = _backend_cpu_seconds()
                    cpu[code][name][1] += (
                        after - backend if after is not None and backend is not None else 0.0
                    )
                    # Each free slot was taken by a claim: end those calls so the next tick has one again.
                    CallAttempt.objects.filter(ended_at__isnull=True).update(
                        ended_at=NOW, outcome="completed"
                    )
    assert Campaign.objects.filter(pk__in=ids).count() == campaigns
    return {
        "campaigns": campaigns,
        "leads": leads,
        "seed_seconds": seeded_s,
        "load": os.getloadavg(),
        **{
            code: {
                name: {
                    **_summary(values),
                    "ms": values,
                    "worker_cpu_ms_per_tick": cpu[code][name][0] * 1000 / len(values),
                    "backend_cpu_ms_per_tick": cpu[code][name][1] * 1000 / len(values),
                }
                for name, values in by_name.items()
            }
            for code, by_name in timings.items()
        },
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--claim-leads", type=int, default=200_000)
    parser.add_argument("--campaigns", type=int, default=50)
    parser.add_argument("--tick-leads", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=1, help="claim runs of each code")
    parser.add_argument("--baseline", help="also run the dialer of this git revision, side by side")
    parser.add_argument("--db", default=DB_NAME, help="scratch database (dropped and made again)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    db_name = args.db
    env = {
        "DJANGO_SETTINGS_MODULE": "voiso_byob.settings",
        "DATABASE_URL": database_url(ADMIN_URL, db_name),
        "REDIS_URL": "",
        "SECRET_KEY": "bench-only-" + secrets.token_urlsafe(32),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PYTHONPATH": str(ROOT),
    }
    if args.baseline:  # a name like "main" would move: pin the commit it names now
        args.baseline = subprocess.run(
            ["git", "rev-parse", "--short", args.baseline],
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    admin_execute(ADMIN_URL, f'CREATE DATABASE "{db_name}"')
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
        claims = claim_phase(env, args.workers, args.claim_leads, args.rounds, args.baseline)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("TRUNCATE campaigns_callattempt, campaigns_lead CASCADE")
        print(f"tick: {args.campaigns} campaigns, {args.tick_leads:,} leads ...", flush=True)
        tick = tick_phase(args.campaigns, args.tick_leads, args.baseline)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')

    rows = []
    for code in ([args.baseline] if args.baseline else []) + ["current"]:
        runs = [run for run in claims if run["code"] == code]
        rates = [run["leads_per_s"] for run in runs]
        label = "" if not args.baseline else f" [{code}]"
        rows += [
            (
                f"claims/s, all workers{label}",
                " - ".join(f"{r:,.0f}" for r in _range(rates)),
                f">= {CLAIM_TARGET:,.0f}",
            ),
            (
                f"  with start-up{label}",
                " - ".join(f"{r:,.0f}" for r in _range([run["with_startup_leads_per_s"] for run in runs])),
                "",
            ),
            (
                f"  CPU per claim, worker + backend us{label}",
                " | ".join(
                    f"{run['worker_cpu_us_per_claim']:.0f} + {run['backend_cpu_us_per_claim']:.0f}"
                    for run in runs
                ),
                "",
            ),
            (f"double claims{label}", str(sum(run["double_claims"] for run in runs)), "0"),
            (
                f"claims per worker{label}",
                " | ".join(", ".join(f"{n:,}" for n in run["per_worker"]) for run in runs),
                "",
            ),
        ]
        for name, title in (("full", "bots full"), ("one_free_each", "1 free slot each")):
            figures = tick[code][name]
            rows.append(
                (
                    f"tick, {title}: median / p90 ms{label}",
                    f"{figures['median_ms']:.1f} / {figures['p90_ms']:.1f}",
                    f"<= {TICK_TARGET_MS:.0f}",
                )
            )
            rows.append(
                (
                    f"  its CPU, worker + backend ms{label}",
                    f"{figures['worker_cpu_ms_per_tick']:.1f} + {figures['backend_cpu_ms_per_tick']:.1f}",
                    "",
                )
            )
    width = max(len(row[0]) for row in rows)
    print(f"\n{'measure'.ljust(width)}  {'result':>24}  target")
    for name, value, target in rows:
        print(f"{name.ljust(width)}  {value:>24}  {target}")
    current = [run for run in claims if run["code"] == "current"]
    met = (
        min(run["leads_per_s"] for run in current) >= CLAIM_TARGET
        and all(run["double_claims"] == 0 for run in claims)
        and tick["current"]["full"]["median_ms"] <= TICK_TARGET_MS
        and tick["current"]["one_free_each"]["median_ms"] <= TICK_TARGET_MS
    )
    uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    print(f"\nuptime at the end: {uptime}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": machine(),
                "uptime": uptime,
                "baseline": args.baseline,
                "claims": claims,
                "tick": tick,
                "targets_met": met,
            },
            indent=2,
        )
    )
    print(f"written {RESULTS.relative_to(ROOT)} ({time.monotonic() - started:.0f} s in all)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
