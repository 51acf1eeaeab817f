"""A lead file of a million rows imported the browser's way, beside PostgreSQL's COPY of the same leads.

    .venv/bin/python bench/lead_import.py [--rows 1000000] [--workers 1] [--keep-db] [--profile FILE]

What it does, in one run:
  1. drops and recreates the PostgreSQL database `voiso_bench_leads` (BENCH_PG_URL is where it
     connects to do that) and migrates it; one contact center (default region US), one draft
     campaign, and a center-wide do-not-call list holding about 1 % of the file's numbers;
  2. writes a CSV of --rows rows (seeded, so every run imports the same file): columns Number, Name,
     Source, Priority, X-Customer-Id, X-Plan; numbers of twelve countries, about half in E.164,
     the rest written with spaces or, for North America, in national format ("(415) 555-0123");
     about 2 % unreadable, 0.3 % premium rate, 2 % repeated, 1 % on the do-not-call list, 0.1 %
     with a bad priority;
  3. ours: a fresh process does what the browser path does — `start_lead_import` streams the file
     into stored chunks (the upload request), then `process_lead_imports` imports them chunk by
     chunk (what each dialer worker does every tick) until none is left; with --workers N, N
     processes share the chunks as N dialer workers would. Timed end to end, upload included;
     peak memory is each process's high-water resident set (VmHWM in /proc/self/status, the
     kernel's own figure), beside its resident set before the import began;
  4. COPY: the leads our import created are exported (COPY TO), the leads table is emptied
     (TRUNCATE) and they are loaded again with COPY FROM in one transaction — the same rows,
     normalised, into the same table with its indexes, checks and foreign keys;
  5. prints a table (rows/s both ways and their ratio: the leads each way put in the table per
     second), writes bench/results/lead_import.json, exits 1 when the target is missed. The
     database and the file are removed at the end unless --keep-db.

Target (issue #13): at least 0.3 times COPY's rate, in one run; peak memory stated (and not growing
with the file: compare --rows 100000).
"""

from __future__ import annotations

import argparse
import csv
import json
import multiprocessing
import os
import random
import secrets
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the project root
from bench.harness import ADMIN_URL, PYTHON, ROOT, admin_execute, database_url, machine

RESULTS = ROOT / "bench" / "results" / "lead_import.json"
DB_NAME = "voiso_bench_leads"
TARGET = 0.3
LEAD_COLUMNS = (
    "id, contact_center_id, campaign_id, phone, name, source, priority, is_active, context, "
    "timezones, status, attempts, next_attempt_at, last_outcome, created"
)

# (country calling code, national-number prefixes, national-number length, share of rows).
# North American prefixes are area codes followed by an exchange that starts 2-9.
COUNTRIES: list[tuple[str, list[str], int, float]] = [
    ("1", ["212", "213", "305", "312", "404", "415", "512", "617", "702", "713", "718", "917"], 10, 0.40),
    ("1", ["416", "604", "514", "403"], 10, 0.05),  # Canada
    ("44", ["7400", "7500", "7700", "7800", "7900", "20794", "16149"], 10, 0.12),
    ("49", ["1511", "1521", "1601", "1701", "1761"], 11, 0.07),
    ("33", ["61", "62", "71", "14"], 9, 0.07),
    ("61", ["41", "42", "43", "29"], 9, 0.06),
    ("52", ["55", "33", "81"], 10, 0.05),
    ("55", ["119", "219"], 11, 0.05),
    ("91", ["98", "99", "97"], 10, 0.04),
    ("34", ["61", "62", "91"], 9, 0.04),
    ("39", ["32", "33", "34"], 10, 0.03),
    ("31", ["61", "62"], 9, 0.02),
]
UNREADABLE = [
    "n/a",
    "12345",
    "+1 555",
    "+999 1234567",
    "call back",
    "000",
    "+44 20 79",
    "tel:",
    "1-800-FLOWERS",
]
FIRST = ["Ada", "Ben", "Chloé", "Dmitri", "Emma", "Farid", "Grace", "Hiro", "Inès", "João", "Kai", "Lena"]
LAST = ["Smith", "García", "Müller", "Dubois", "Rossi", "Kowalski", "Tanaka", "Silva", "O'Brien", "Nguyen"]
SOURCES = ["crm-export", "webinar", "renewals-q3", "partner list", ""]
PLANS = ["gold", "silver", "bronze", ""]


def _setup_django(env: dict[str, str]) -> None:
    os.environ.update(env)
    import django

    django.setup()


def _write_number(cc: str, national: str, rng: random.Random) -> str:
    """The number as people write it: E.164, spaced international, or (+1) national format."""
    style = rng.random()
    if style < 0.55:
        return f"+{cc}{national}"
    if cc == "1" and style < 0.85:
        area, exchange, line = national[:3], national[3:6], national[6:]
        return rng.choice(
            [f"({area}) {exchange}-{line}", f"{area}-{exchange}-{line}", f"{area}.{exchange}.{line}"]
        )
    cut = len(national) // 2
    return f"+{cc} {national[:cut]} {national[cut:]}"


def write_csv(path: Path, rows: int, seed: int = 13) -> dict[str, Any]:
    """The file, and the E.164 numbers to put on the do-not-call list first."""
    rng = random.Random(seed)
    weights = [share for *_, share in COUNTRIES]
    counters: dict[tuple[str, str], int] = {}
    recent: list[str] = []
    dnc: list[str] = []
    kinds = dict.fromkeys(("number", "unreadable", "premium", "repeat", "dnc", "bad_priority"), 0)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Number", "Name", "Source", "Priority", "X-Customer-Id", "X-Plan"])
        for index in range(rows):
            roll = rng.random()
            if roll < 0.02:
                number, kind = rng.choice(UNREADABLE), "unreadable"
            elif roll < 0.023:
                number, kind = f"+1900{rng.randint(200, 999)}{rng.randint(0, 9999):04d}", "premium"
            elif roll < 0.043 and recent:
                number, kind = rng.choice(recent), "repeat"
            else:
                cc, prefixes, length, _ = rng.choices(COUNTRIES, weights)[0]
                prefix = rng.choice(prefixes)
                rest = length - len(prefix)
                # Distinct numbers: a counter per prefix, spread over the range by an odd multiplier.
                count = counters.get((cc, prefix), 0)
                counters[(cc, prefix)] = count + 1
                tail = f"{count * 7_919 % 10**rest:0{rest}d}"
                if cc == "1":
                    tail = str(2 + count % 8) + tail[1:]  # an exchange starts 2-9
                national = prefix + tail
                number, kind = _write_number(cc, national, rng), "number"
                if rng.random() < 0.01:
                    dnc.append(f"+{cc}{national}")
                    kind = "dnc"
                if len(recent) < 5_000:
                    recent.append(number)
                elif rng.random() < 0.05:
                    recent[rng.randrange(len(recent))] = number
            kinds[kind] += 1
            priority = str(rng.randint(1, 1000)) if rng.random() < 0.7 else ""
            if rng.random() < 0.001:
                priority, kinds["bad_priority"] = "high", kinds["bad_priority"] + 1
            writer.writerow(
                [
                    number,
                    f"{rng.choice(FIRST)} {rng.choice(LAST)}",
                    rng.choice(SOURCES),
                    priority,
                    f"C{index:07d}",
                    rng.choice(PLANS),
                ]
            )
    return {"dnc": dnc, "kinds": kinds, "bytes": path.stat().st_size}


def seed_database(dnc: list[str]) -> tuple[str, str]:
    """The center, its draft campaign and its do-not-call list (by COPY: not what is measured)."""
    import uuid

    from django.db import connection
    from django.utils import timezone

    from campaigns.services import create_campaign
    from virtual_agents import services as va
    from voiso_byob.services import create_contact_center

    center = create_contact_center(
        slug="leads",
        name="Leads",
        admin_email="admin@leads.example",
        admin_password=None,
        by="bench",
        byob_enabled=True,
    )
    integration = va.create_integration(
        center=center, provider="generic_sip", label="Bots", credentials=None, by="bench"
    )
    bot = va.create_virtual_agent(
        integration=integration, by="bench", name="Bot", sip_uri="sip:bot@10.0.0.5", connect=True
    )
    campaign = create_campaign(center=center, by="bench", name="Import", virtual_agents=[bot])
    now = timezone.now()
    with (
        connection.cursor() as cursor,
        cursor.copy(
            "COPY campaigns_donotcall (id, contact_center_id, phone, reason, created) FROM STDIN"
        ) as copy,
    ):
        for phone in dict.fromkeys(dnc):
            copy.write_row((uuid.uuid4(), center.pk, phone, "bench", now))
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
    return str(center.pk), str(campaign.pk)


def _memory() -> dict[str, int]:
    """This process's resident set now and its high-water mark, in KiB (/proc/self/status)."""
    status = Path("/proc/self/status").read_text().splitlines()
    values = {
        line.split(":")[0]: int(line.split()[1]) for line in status if line.startswith(("VmRSS", "VmHWM"))
    }
    return {"rss_kib": values["VmRSS"], "peak_kib": values["VmHWM"]}


def _upload(env: dict[str, str], path: str, campaign_id: str, profile: str, out: Any) -> None:
    _setup_django(env)
    from campaigns.lead_imports import start_lead_import
    from campaigns.models import Campaign

    campaign = Campaign.objects.get(pk=campaign_id)
    before = _memory()
    started = time.perf_counter()
    with open(path, "rb") as upload:
        lead_import = start_lead_import(campaign=campaign, upload=upload, filename="leads.csv", by="bench")
    out.put(
        {
            "seconds": time.perf_counter() - started,
            "import": str(lead_import.pk),
            "before": before,
            **_memory(),
        }
    )


def _work(env: dict[str, str], profile: str, out: Any) -> None:
    _setup_django(env)
    from campaigns.lead_imports import process_lead_imports

    before = _memory()
    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    chunks = 0
    began, started, cpu = time.time(), time.perf_counter(), time.process_time()
    # What each run_dialer worker does after its tick, here with no call to place: import until
    # the tick's second is up, again and again.
    while taken := process_lead_imports(limit_chunks=1_000, until=time.monotonic() + 1.0):
        chunks += taken
    seconds, cpu = time.perf_counter() - started, time.process_time() - cpu
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(profile)
    out.put(
        {
            "seconds": seconds,
            "began": began,
            "ended": began + seconds,
            "cpu_seconds": cpu,
            "chunks": chunks,
            "before": before,
            **_memory(),
        }
    )


def ours(env: dict[str, str], path: Path, campaign_id: str, workers: int, profile: str) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    upload = ctx.Process(target=_upload, args=(env, str(path), campaign_id, "", out))
    upload.start()
    uploaded = out.get()
    upload.join()
    procs = [ctx.Process(target=_work, args=(env, profile if n == 0 else "", out)) for n in range(workers)]
    for proc in procs:
        proc.start()
    worked = [out.get() for _ in procs]
    for proc in procs:
        proc.join()
    # From the upload's start to the last chunk's end: the processes' own start-up is not the import's.
    seconds = (
        uploaded["seconds"] + max(item["ended"] for item in worked) - min(item["began"] for item in worked)
    )

    from django.db.models import Count

    from campaigns.models import LeadImport

    lead_import = LeadImport.objects.get(pk=uploaded["import"])
    reasons = dict(lead_import.rejects.order_by().values_list("reason").annotate(n=Count("*")))
    return {
        "seconds": seconds,
        "upload_seconds": uploaded["seconds"],
        "import_seconds": max(item["seconds"] for item in worked),
        "worker_cpu_seconds": sum(item["cpu_seconds"] for item in worked),
        "status": lead_import.status,
        "rows": lead_import.rows,
        "created": lead_import.created_leads,
        "rejected": lead_import.rejected,
        "duplicates": lead_import.duplicates,
        "reject_reasons": reasons,
        "upload_process": uploaded,
        "workers": worked,
        "peak_rss_mib": max(item["peak_kib"] for item in [uploaded, *worked]) / 1024,
        "rss_before_mib": max(item["before"]["rss_kib"] for item in [uploaded, *worked]) / 1024,
    }


def copy_same_leads(db_url: str, campaign_id: str, scratch: Path) -> dict[str, Any]:
    import psycopg

    dump = scratch / "leads.copy"
    with psycopg.connect(db_url) as conn, conn.cursor() as cursor, dump.open("wb") as out:
        query = f"COPY (SELECT {LEAD_COLUMNS} FROM campaigns_lead WHERE campaign_id = %s) TO STDOUT"
        with cursor.copy(query, [campaign_id]) as copy:
            for block in copy:
                out.write(block)
    with psycopg.connect(db_url, autocommit=True) as conn:
        conn.execute("TRUNCATE campaigns_lead CASCADE")
        conn.execute("CHECKPOINT")
    with psycopg.connect(db_url) as conn:
        started = time.perf_counter()
        with conn.cursor() as cursor, dump.open("rb") as source:
            with cursor.copy(f"COPY campaigns_lead ({LEAD_COLUMNS}) FROM STDIN") as copy:
                while block := source.read(1 << 20):
                    copy.write(block)
            rows = cursor.rowcount
        conn.commit()
        seconds = time.perf_counter() - started
    dump.unlink()
    return {"rows": rows, "seconds": seconds, "rows_per_s": rows / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=1, help="processes importing the chunks")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--profile", default="", help="cProfile the first worker into this file")
    args = parser.parse_args()

    from cryptography.fernet import Fernet

    db_url = database_url(ADMIN_URL, DB_NAME)
    env = {
        "DJANGO_SETTINGS_MODULE": "voiso_byob.settings",
        "DATABASE_URL": db_url,
        "REDIS_URL": "",
        "SECRET_KEY": "bench-only-" + secrets.token_urlsafe(32),
        "DEBUG": "false",
        "ALLOWED_HOSTS": "127.0.0.1",
        "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "PYTHONPATH": str(ROOT),
    }
    load = os.getloadavg()
    admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
    admin_execute(ADMIN_URL, f'CREATE DATABASE "{DB_NAME}"')
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="lead_import_"))
    path = scratch / "leads.csv"
    try:
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env={**os.environ, **env},
            check=True,
        )
        _setup_django(env)
        print(f"writing {args.rows:,} rows ...", flush=True)
        made = write_csv(path, args.rows)
        _, campaign_id = seed_database(made["dnc"])
        print(f"ours: upload, then {args.workers} worker(s) importing the chunks ...", flush=True)
        mine = ours(env, path, campaign_id, args.workers, args.profile)
        print("COPY of the same leads ...", flush=True)
        copied = copy_same_leads(db_url, campaign_id, scratch)
    finally:
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
            path.unlink(missing_ok=True)
            scratch.rmdir()

    assert copied["rows"] == mine["created"], (copied["rows"], mine["created"])
    leads_per_s = mine["created"] / mine["seconds"]
    ratio = leads_per_s / copied["rows_per_s"]
    rows = [
        ("file rows / leads created", f"{mine['rows']:,} / {mine['created']:,}", ""),
        ("rejected / duplicates", f"{mine['rejected']:,} / {mine['duplicates']:,}", ""),
        ("COPY: leads/s", f"{copied['rows_per_s']:,.0f}", f"{copied['seconds']:.1f} s"),
        ("ours: leads/s (file rows/s)", f"{leads_per_s:,.0f} ({mine['rows'] / mine['seconds']:,.0f})",
         f"{mine['seconds']:.1f} s, upload {mine['upload_seconds']:.1f} s"),
        ("ours / COPY", f"{ratio:.2f}", f">= {TARGET}"),
        ("ours: workers' CPU µs per file row", f"{mine['worker_cpu_seconds'] / mine['rows'] * 1e6:,.0f}",
         "process time"),
        ("peak RSS, MiB (before)", f"{mine['peak_rss_mib']:.0f} ({mine['rss_before_mib']:.0f})", "VmHWM"),
    ]  # fmt: skip
    width = max(len(row[0]) for row in rows)
    print(f"\n{'measure'.ljust(width)}  {'result':>24}  note")
    for name, value, note in rows:
        print(f"{name.ljust(width)}  {value:>24}  {note}")
    met = ratio >= TARGET and mine["status"] == "done"
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": {**machine(), "loadavg_at_start": load, "loadavg_at_end": os.getloadavg()},
                "file": {"rows": args.rows, "bytes": made["bytes"], "kinds": made["kinds"]},
                "ours": mine,
                "copy": copied,
                "ratio": ratio,
                "target": TARGET,
                "target_met": met,
            },
            indent=2,
            default=str,
        )
    )
    print(f"\nload average {load[0]:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print(f"written {RESULTS.relative_to(ROOT)} ({time.monotonic() - started:.0f} s in all)")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
