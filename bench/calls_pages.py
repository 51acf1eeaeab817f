"""Calls browser reads on PostgreSQL: keyset pages at any depth, filters, and the streamed CSV export.

    .venv/bin/python bench/calls_pages.py [--records N] [--runs R]

Creates the database `voiso_bench_calls` (dropped at the end), migrates it, and loads N call
records (default 200,000) into one contact center, 1 % of them without a start (call.started
not received), a few hundred per second of a day, plus as many in a second center. Then times,
median and p95 over R runs each (default 30), the page the calls list and the API run:
  - the first page; a page 90 % deep (keyset: costs the same as the first); the first page
    of records without a start; direction + handed-off filters; a day's range in the
    center's timezone; "number contains" (unindexed LIKE);
and streams the whole CSV export once (rows/s, Python peak memory while streaming versus
reading the same rows into a list). Prints the plan of the deep page's query, a table, and
writes bench/results/calls_pages.json. Needs PostgreSQL at 127.0.0.1:5432.
Targets: every page ≤ 50 ms median; the deep page within twice the first; export memory flat.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DB_NAME = "voiso_bench_calls"
ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
TARGET_PAGE_MS = 50.0


def _admin_sql(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def setup_django() -> None:
    os.environ["DATABASE_URL"] = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiso_byob.settings")
    from cryptography.fernet import Fernet

    os.environ.setdefault("SECRET_KEY", "bench-only-" + Fernet.generate_key().decode())
    os.environ.setdefault("FIELD_ENCRYPTION_KEYS", Fernet.generate_key().decode())
    import django

    django.setup()


def seed(records: int) -> dict[str, Any]:
    from reporting.models import BotOutcome, CallRecord, CallStatus, Direction
    from tests.factories import make_center
    from voiso_byob.models import ContactCenter

    centers = [make_center("benchacme"), make_center("benchother")]
    ContactCenter.objects.filter(pk=centers[0].pk).update(timezone="Europe/Berlin")
    day = datetime(2025, 3, 14, tzinfo=UTC)
    spacing = 86_400 / records
    for center in centers:
        batch: list[CallRecord] = []
        for i in range(records):
            started = day + timedelta(seconds=i * spacing)
            dated = i % 100 != 0
            handed = i % 3 == 0
            batch.append(
                CallRecord(
                    contact_center=center,
                    call_id=f"{i:08x}@pbx.bench",
                    status=CallStatus.ENDED,
                    direction=Direction.OUTBOUND if i % 5 == 0 else Direction.INBOUND,
                    from_number=f"+1555{i % 10_000_000:07d}",
                    to_number="+15559990000",
                    started_at=started if dated else None,
                    ended_at=started + timedelta(seconds=95),
                    total_seconds=95.0 if dated else None,
                    end_reason="hangup",
                    bot_outcome=BotOutcome.HANDED_OFF if handed else BotOutcome.CONTAINED,
                    handoff_count=1 if handed else 0,
                    event_count=4,
                    last_event_at=started + timedelta(seconds=95),
                )
            )
            if len(batch) == 5_000:
                CallRecord.objects.bulk_create(batch)
                batch = []
        CallRecord.objects.bulk_create(batch)
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE reporting_callrecord")
    return {"center": ContactCenter.objects.get(slug="benchacme")}


def timed(fn: Callable[[], Any], runs: int) -> dict[str, float]:
    fn()  # warm the plan and the buffers
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return {
        "median_ms": round(statistics.median(samples), 2),
        "p95_ms": round(samples[int(len(samples) * 0.95) - 1], 2),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()

    _admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME}")
    _admin_sql(f"CREATE DATABASE {DB_NAME}")
    try:
        setup_django()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        started = time.perf_counter()
        center = seed(args.records)["center"]
        seed_s = time.perf_counter() - started
        return run(center, args, seed_s)
    finally:
        from django.db import connections

        connections.close_all()
        _admin_sql(f"DROP DATABASE IF EXISTS {DB_NAME}")


def run(center: Any, args: argparse.Namespace, seed_s: float) -> int:
    from django.db import connection
    from django.db.models import Q

    from reporting.exports.calls import CALL_COLUMNS, call_rows, csv_call_rows
    from reporting.exports.formats import csv_chunks
    from reporting.models import CallRecord
    from reporting.queries import CallFilters, Cursor, filtered_calls, keyset_page

    def listed(filters: CallFilters) -> Any:
        return filtered_calls(center, filters).select_related("virtual_agent", "queue", "answered_by__user")

    everything = CallFilters()
    dated = (
        CallRecord.objects.for_center(center).filter(started_at__isnull=False).order_by("-started_at", "-id")
    )
    deep_row = dated[int(args.records * 0.9)]
    last_dated = dated.reverse().first()
    deep, undated = Cursor.of(deep_row), Cursor.of(last_dated)

    cases: dict[str, Callable[[], Any]] = {
        "first page": lambda: keyset_page(listed(everything), after=None),
        "page 90 % deep": lambda: keyset_page(listed(everything), after=deep),
        "first page without a start": lambda: keyset_page(listed(everything), after=undated),
        "outbound, handed off": lambda: keyset_page(
            listed(CallFilters(direction="outbound", is_handed_off=True)), after=None
        ),
        "one day (Europe/Berlin)": lambda: keyset_page(
            listed(CallFilters(date_from=date(2025, 3, 14), date_to=date(2025, 3, 14))), after=deep
        ),
        # Unindexed LIKE '%…%': no match is the worst case, a scan of the center's rows.
        "number contains (no match)": lambda: keyset_page(listed(CallFilters(number="+1999")), after=None),
    }
    results: dict[str, Any] = {}
    for name, fn in cases.items():
        page = fn()
        results[name] = {**timed(fn, args.runs), "rows": len(page.records)}

    deep_query = (
        listed(everything)
        .filter(started_at__isnull=False, started_at__lte=deep.started_at)
        .order_by("-started_at", "-id")
    )
    deep_query = deep_query.filter(Q(started_at__lt=deep.started_at) | Q(id__lt=deep.id))[:51]
    plan = deep_query.explain(analyze=True)

    # The export, streamed as the view streams it: once for speed, once under tracemalloc
    # (which slows Python several times) for its peak memory, versus the rows held in a list.
    def stream() -> tuple[int, int]:
        size = rows = 0
        zone = ZoneInfo(center.timezone)
        rows_out = csv_call_rows(call_rows(filtered_calls(center, everything), zone))
        for chunk in csv_chunks(CALL_COLUMNS, rows_out):
            size += len(chunk)
            rows += chunk.count(b"\n")
        return rows, size

    started = time.perf_counter()
    rows, size = stream()
    export_s = time.perf_counter() - started
    tracemalloc.start()
    stream()
    _, stream_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    tracemalloc.start()
    held = list(listed(everything).order_by("-started_at", "-id"))
    _, list_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del held

    export = {
        "rows": rows - 1,
        "seconds": round(export_s, 2),
        "rows_per_s": round((rows - 1) / export_s),
        "bytes": size,
        "stream_peak_mib": round(stream_peak / 2**20, 1),
        "list_peak_mib": round(list_peak / 2**20, 1),
    }

    print(
        f"\n{args.records:,} records per center, 2 centers, seeded in {seed_s:.0f} s; {args.runs} runs each\n"
    )
    print(f"{'read':<30} {'median ms':>10} {'p95 ms':>8} {'rows':>5}")
    for name, figures in results.items():
        print(f"{name:<30} {figures['median_ms']:>10} {figures['p95_ms']:>8} {figures['rows']:>5}")
    print(
        f"\nCSV export: {export['rows']:,} rows in {export['seconds']} s ({export['rows_per_s']:,} rows/s), "
        f"{export['bytes'] / 2**20:.1f} MiB; Python peak {export['stream_peak_mib']} MiB streaming "
        f"vs {export['list_peak_mib']} MiB for the rows in a list"
    )
    print("\nPlan of the 90 %-deep page:\n" + plan)

    ok = all(r["median_ms"] <= TARGET_PAGE_MS for name, r in results.items() if "number" not in name)
    ok = ok and results["page 90 % deep"]["median_ms"] <= 2 * max(results["first page"]["median_ms"], 1.0)
    ok = ok and export["stream_peak_mib"] < export["list_peak_mib"] / 4
    out = ROOT / "bench" / "results" / "calls_pages.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(),
                "machine": platform.platform(),
                "records_per_center": args.records,
                "runs": args.runs,
                "pages": results,
                "export": export,
                "plan_deep_page": plan,
                "targets_met": ok,
                "postgres": connection.cursor().connection.info.server_version,
            },
            indent=2,
        )
    )
    print(f"\nwrote {out.relative_to(ROOT)}; targets {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
