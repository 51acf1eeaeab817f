"""Real SIP through the edge at a rising call rate: SIPp → Kamailio → SIPp bot, the portal as the brain.

    .venv/bin/python bench/sip_edge.py [--rates 10,20,30,50,70,100] [--step-seconds 60] [--workers 2]
                                       [--children N] [--api-workers N] [--event-workers N] [--keep-db]
                                       [--keep-logs] [--trace-msg] [--database NAME]

Kamailio's worker groups default to `kamailio_config`'s (8 SIP workers, 16 API workers, 2 event
posters: sized for 50 calls/s).

What it does:
  1. drops and recreates the PostgreSQL database `voiso_bench_sip` (`--database`; on BENCH_PG_URL),
     migrates it and seeds it in this process: `seed_demo` (center acme, queue Sales 4323), a
     virtual agent whose SIP URI is the SIPp bot (capacity 10,000, the most allowed: the bench
     measures the edge, not the bot's limit), +442079460018 routed straight to it, and a
     telephony API key;
  2. serves the portal as the README deploys it: gunicorn, `--workers` sync workers, DEBUG off,
     CONN_MAX_AGE=600, Redis (BENCH_REDIS_URL, default redis://127.0.0.1:6379/1);
  3. starts Kamailio on 127.0.0.1 with the configuration `manage.py kamailio_config` writes, and the
     SIPp bot (deploy/sipp/bot_mixed.xml: answers every call, hands 30 % of them to Sales with a
     REFER and answers the NOTIFY);
  4. for each rate in `--rates`, one SIPp caller (deploy/sipp/caller_mixed.xml) places rate x
     `--step-seconds` calls at that rate: INVITE → 200 → ACK, then the transfer (202, NOTIFY
     200 sipfrag, BYE) or a BYE after 4 s. Post-dial delay = INVITE sent → the bot's 200 received
     at the caller (SIPp's response-time 1, every call: -trace_rtt). After the step, every call's
     record must be stored and ended and every REFER's handoff completed (waiting up to 60 s for the
     asynchronous events). A step is sustained when SIPp placed its calls at the rate (within 5 %),
     no call failed and every record and handoff is there; the run stops at the first step that is
     not, which is a table row with the reason (failed calls grouped by what the caller expected
     and got instead; a caller still running 45 s after its last call is stopped as stuck) and its
     logs kept (kamailio.log, gunicorn.log, the caller's error log; --trace-msg: SIPp's messages);
  5. prints a table and writes bench/results/sip_edge.json; exits 1 when the highest sustained rate is
     below 50 calls/s. Everything is stopped and the database dropped (unless --keep-db) at the end.

Target (issue 16, "Speed"): ≥ 50 calls/s sustained for 60 s with zero failed calls; p50/p99 PDD.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the project root
from bench.harness import (
    ADMIN_URL,
    GUNICORN,
    ROOT,
    admin_execute,
    database_url,
    free_port,
    machine,
    post,
    served_env,
    stop,
)

DB_NAME = "voiso_bench_sip"
NUMBER = "+442079460018"
CALLER = "+442079460999"
SIPP_DIR = ROOT / "deploy" / "sipp"
RESULTS = ROOT / "bench" / "results" / "sip_edge.json"
TARGET_RATE = 50


def free_udp_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def seed(bot_port: int) -> str:
    """The database's content (in this process, Django set up on the scratch database); the raw key."""
    from django.core.management import call_command

    from routing.services import create_flow, create_phone_number, publish_flow
    from virtual_agents.services import create_integration, create_virtual_agent
    from voiso_byob.models import ApiKeyScope, ContactCenter
    from voiso_byob.services import create_api_key

    call_command("migrate", verbosity=0)
    call_command("seed_demo", stdout=open(os.devnull, "w"))  # noqa: SIM115
    center = ContactCenter.objects.get(slug="acme")
    integration = create_integration(
        center=center, provider="generic_sip", label="Bench SIPp", credentials=None, by="bench"
    )
    bot = create_virtual_agent(
        integration=integration,
        by="bench",
        name="Bench SIPp bot",
        sip_uri=f"sip:bench-bot@127.0.0.1:{bot_port}",
        extension="7001",
        max_concurrent_calls=10_000,
        connect=True,
    )
    graph = {
        "nodes": {
            "start": {"type": "start", "config": {}, "next": {"next": "bot"}},
            "bot": {"type": "route", "config": {"target": {"type": "virtual_agent", "id": str(bot.pk)}}},
        }
    }
    flow = create_flow(center=center, by="bench", name="Bench SIP line", graph=graph)
    publish_flow(flow=flow, by="bench")
    create_phone_number(center=center, by="bench", number=NUMBER, flow=flow)
    _, raw = create_api_key(center=center, name="bench kamailio", scope=ApiKeyScope.TELEPHONY, by="bench")
    return raw


def percentile(values: list[float], share: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def sipp_final_counts(stat_file: Path, calls: int) -> dict[str, Any]:
    """From SIPp's -trace_stat CSV (a row a second): cumulative successful / failed calls, and the
    rate the calls were actually placed at (SIPp falls behind its -r when it is short of CPU)."""
    try:
        with stat_file.open() as handle:
            rows = list(csv.DictReader(handle, delimiter=";"))
    except OSError:
        rows = []
    if not rows:
        return {"successful": 0, "failed": 0, "placed_per_s": None}
    last = rows[-1]
    placed = next((row for row in rows if int(row["OutgoingCall(C)"]) >= calls), None)
    placed_per_s = None
    if placed is not None:
        hours, minutes, secs = (int(part) for part in placed["ElapsedTime(C)"].split(":"))
        placed_per_s = round(calls / max(1, hours * 3600 + minutes * 60 + secs), 1)
    return {
        "successful": int(last["SuccessfulCall(C)"]),
        "failed": int(last["FailedCall(C)"]),
        "placed_per_s": placed_per_s,
    }


_UNEXPECTED = re.compile(r"while expecting '([^']*)' \(index (\d+)\), received '([^\r\n']*)")


def failure_kinds(error_log: str) -> list[str]:
    """SIPp's aborted calls grouped by what the caller expected and got instead, most frequent first."""
    counts: dict[str, int] = {}
    for expected, index, received in _UNEXPECTED.findall(error_log):
        start = " ".join(received.split()[:2]) if received.startswith("SIP/2.0") else received.split()[0]
        kind = f"expected {expected} (message {index}), got {start}"
        counts[kind] = counts.get(kind, 0) + 1
    return [f"{n} x {kind}" for kind, n in sorted(counts.items(), key=lambda item: -item[1])]


def stored(prefix: str, timeout: float) -> dict[str, int]:
    """Records and handoffs of the step's calls, once all are ended (or the timeout passed)."""
    from reporting.models import CallRecord, Handoff

    deadline = time.monotonic() + timeout
    while True:
        records = CallRecord.objects.filter(call_id__startswith=prefix)
        counts = {
            "records": records.count(),
            "ended": records.filter(status="ended").count(),
            "handed_off": records.filter(handoff_count__gte=1).count(),
            "handoffs": Handoff.objects.filter(call_record__in=records).count(),
            "handoffs_completed": Handoff.objects.filter(call_record__in=records, state="completed").count(),
        }
        settled = counts["records"] == counts["ended"] and counts["handoffs"] == counts["handoffs_completed"]
        if (settled and counts["records"] >= expected_calls.get(prefix, 0)) or time.monotonic() > deadline:
            return counts
        time.sleep(0.5)


expected_calls: dict[str, int] = {}


def step(
    rate: int, seconds: int, edge_port: int, workdir: Path, trace_msg: bool = False
) -> dict[str, Any]:  # one rate, one SIPp caller
    calls = rate * seconds
    prefix = f"r{rate}-"
    expected_calls[prefix] = calls
    stat_file = workdir / f"caller-{rate}.csv"
    command = [
        "sipp",
        f"127.0.0.1:{edge_port}",
        "-sf",
        str(SIPP_DIR / "caller_mixed.xml"),
        "-s",
        NUMBER,
        "-i",
        "127.0.0.1",
        "-nostdin",
        "-r",
        str(rate),
        "-m",
        str(calls),
        "-cid_str",
        f"{prefix}%u-%p@bench",
        "-key",
        "caller",
        CALLER,
        "-trace_rtt",
        "-rtt_freq",
        "1",
        "-trace_stat",
        "-stf",
        str(stat_file),
        "-fd",
        "1",
        "-trace_err",
        "-error_file",
        str(workdir / f"caller-{rate}-errors.log"),
        # SIPp's own cap on open calls would slow its rate when calls lengthen: a carrier does not.
        "-l",
        str(rate * 30),
        # A call waiting 20 s for a message fails (counted) instead of hanging the step.
        "-recv_timeout",
        "20000",
    ]
    if trace_msg:
        command += ["-trace_msg", "-message_file", str(workdir / f"caller-{rate}.msg")]
    started = time.monotonic()
    # The last call is placed after `seconds`; a call lasts at most ~5 s (4 s in the bot, the
    # transfer's NOTIFY and BYE) or fails on -recv_timeout: past this limit the step is stuck.
    limit = seconds + 45
    with (workdir / f"caller-{rate}.out").open("wb") as out:
        caller = subprocess.Popen(command, cwd=workdir, stdout=out, stderr=subprocess.STDOUT)
        try:
            caller.wait(timeout=limit)
            stuck = False
        except subprocess.TimeoutExpired:
            stuck = True
            stop(caller)
    wall = time.monotonic() - started
    time.sleep(1.5)  # SIPp's statistics file is written every second (-fd 1): the last row is there
    counts = sipp_final_counts(stat_file, calls)
    pdd: list[float] = []
    for rtt_file in workdir.glob("caller_mixed_*_rtt.csv"):
        with rtt_file.open() as handle:
            pdd += [float(row["response_time_ms"]) for row in csv.DictReader(handle, delimiter=";")]
        rtt_file.unlink()
    records = stored(prefix, timeout=60)
    errors = workdir / f"caller-{rate}-errors.log"
    # SIPp logs each jump on the caller's REFER timeout (a call the bot kept) too: leave those out.
    lines = errors.read_text(errors="replace").splitlines() if errors.exists() else []
    unexpected = "\n".join(line for line in lines if "jumping to label" not in line)
    reasons = []
    if stuck:
        unfinished = calls - counts["successful"] - counts["failed"]
        reasons.append(
            f"stuck: the caller was still running {limit} s after the start ({unfinished} calls unfinished)"
        )
    elif caller.returncode not in (0, 1):  # 1: some calls failed, counted below
        reasons.append(f"SIPp exited {caller.returncode}")
    if counts["failed"]:
        kinds = failure_kinds(unexpected)
        reasons.append(f"{counts['failed']} failed calls" + (f" ({'; '.join(kinds[:3])})" if kinds else ""))
    # The stat file's clock has 1 s steps: 60 s of calls read as placed within 61-62 s.
    if counts["placed_per_s"] is None or counts["placed_per_s"] < 0.95 * rate:
        reasons.append(f"calls placed at {counts['placed_per_s']}/s, not {rate}/s")
    if records["records"] != calls or records["ended"] != records["records"]:
        reasons.append(f"records stored {records['records']} / ended {records['ended']} of {calls}")
    if not records["handoffs"] == records["handed_off"] == records["handoffs_completed"]:
        handoffs, completed = records["handoffs"], records["handoffs_completed"]
        reasons.append(f"handoffs {handoffs} for {records['handed_off']} calls, {completed} completed")
    sustained = not reasons and caller.returncode == 0 and counts["successful"] == calls
    if not sustained and not reasons:
        reasons.append(f"{counts['successful']} of {calls} calls succeeded")
    return {
        "rate": rate,
        "calls": calls,
        "seconds": seconds,
        "wall_seconds": round(wall, 1),
        "sipp_exit": None if stuck else caller.returncode,
        "stuck": stuck,
        **counts,
        "pdd_ms_p50": percentile(pdd, 0.5),
        "pdd_ms_p99": percentile(pdd, 0.99),
        "pdd_ms_mean": round(statistics.fmean(pdd), 1) if pdd else None,
        "pdd_samples": len(pdd),
        **records,
        "sustained": sustained,
        "failure": "; ".join(reasons),
        "sipp_errors_tail": unexpected[-1500:],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rates", default="10,20,30,50,70,100", help="calls/s per step, rising")
    parser.add_argument("--step-seconds", type=int, default=60)
    parser.add_argument("--workers", type=int, default=2, help="gunicorn sync workers")
    # Kamailio's worker groups: by default kamailio_config's, sized for 50 calls/s (its docstring).
    parser.add_argument("--children", type=int, help="Kamailio SIP workers")
    parser.add_argument("--api-workers", type=int, help="Kamailio route/refer workers")
    parser.add_argument("--event-workers", type=int, help="Kamailio event posters")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument(
        "--trace-msg", action="store_true", help="SIPp's message traces (caller-<rate>.msg, bot.msg)"
    )
    parser.add_argument("--keep-logs", action="store_true", help="keep the logs directory after a clean run")
    parser.add_argument("--database", default=DB_NAME, help=f"scratch database (default {DB_NAME})")
    args = parser.parse_args()
    rates = [int(r) for r in args.rates.split(",") if r.strip()]
    kamailio = shutil.which("kamailio") or "/usr/sbin/kamailio"
    if not Path(kamailio).exists() or not shutil.which("sipp"):
        print("needs Kamailio and SIPp (see .ci/run)", file=sys.stderr)
        return 2

    redis_url = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/1")
    env = served_env(database_url(ADMIN_URL, args.database), redis_url)
    os.environ.update({k: v for k, v in env.items() if k not in ("ROOT_URLCONF",)})
    os.environ["CONN_MAX_AGE"] = "0"
    admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
    admin_execute(ADMIN_URL, f'CREATE DATABASE "{args.database}"')
    import django

    django.setup()
    from routing.management.commands.kamailio_config import WORKER_DEFAULTS, answers_options, render_config

    for name, value in WORKER_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, value)

    bot_port, edge_port, http_port = free_udp_port(), free_udp_port(), free_port()
    processes: list[subprocess.Popen[Any]] = []
    results: list[dict[str, Any]] = []
    load_before = load_after = None
    workdir = Path(tempfile.mkdtemp(prefix="bench-sip-"))
    try:
        raw_key = seed(bot_port)
        from django.db import connections

        connections.close_all()
        with (workdir / "gunicorn.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [
                        str(GUNICORN),
                        "voiso_byob.wsgi:application",
                        *("--workers", str(args.workers)),
                        *("--bind", f"127.0.0.1:{http_port}"),
                    ],
                    cwd=ROOT,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        # gunicorn answers, and each worker has loaded what the first call would (warm-up requests).
        base = f"http://127.0.0.1:{http_port}"
        deadline = time.monotonic() + 60
        for n in range(4 * args.workers):
            while True:
                try:
                    status, _ = post(
                        f"{base}/api/v1/telephony/route",
                        {"call_id": f"warm-{n}", "to": NUMBER, "from": CALLER},
                        raw_key,
                    )
                except OSError:
                    status = 0
                if status == 200:
                    break
                if time.monotonic() > deadline or processes[0].poll() is not None:
                    raise RuntimeError((workdir / "gunicorn.log").read_text()[-3000:])
                time.sleep(0.2)
        config = workdir / "kamailio.cfg"
        config.write_text(
            render_config(
                listen=f"127.0.0.1:{edge_port}",
                api_url=f"http://127.0.0.1:{http_port}",
                api_key=raw_key,
                sip_domain_suffix="voiso.com",
                children=args.children,
                api_workers=args.api_workers,
                event_workers=args.event_workers,
                debug_level=1,
                log_stderror=True,
            )
        )
        with (workdir / "kamailio.log").open("wb") as log:
            processes.append(
                subprocess.Popen(
                    [
                        kamailio,
                        "-f",
                        str(config),
                        "-DD",
                        "-E",
                        "-m",
                        "256",
                        "-M",
                        "16",
                        "-P",
                        str(workdir / "pid"),
                    ],
                    cwd=workdir,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + 30
        while not answers_options("127.0.0.1", edge_port):
            if time.monotonic() > deadline:
                raise RuntimeError((workdir / "kamailio.log").read_text()[-3000:])
        bot = ["sipp", "-sf", str(SIPP_DIR / "bot_mixed.xml"), "-i", "127.0.0.1", "-p", str(bot_port)]
        bot += ["-nostdin", "-key", "refer_to", "<sip:4323@acme.voiso.com>", "-fd", "1"]
        if args.trace_msg:
            bot += ["-trace_msg", "-message_file", str(workdir / "bot.msg")]
        processes.append(
            subprocess.Popen(bot, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        )
        time.sleep(1)
        with open("/proc/loadavg") as handle:
            load_before = handle.read().split()[:3]
        print(
            f"{'rate/s':>7} {'placed/s':>8} {'calls':>6} {'ok':>6} {'failed':>6} "
            f"{'PDD p50':>8} {'PDD p99':>8} "
            f"{'records':>8} {'handoffs':>8} sustained",
            flush=True,
        )
        for rate in rates:
            result = step(rate, args.step_seconds, edge_port, workdir, args.trace_msg)
            results.append(result)
            print(
                f"{rate:>7} {result['placed_per_s'] or 0:>8.1f} {result['calls']:>6} "
                f"{result['successful']:>6} {result['failed']:>6} "
                f"{result['pdd_ms_p50'] or 0:>6.0f}ms {result['pdd_ms_p99'] or 0:>6.0f}ms "
                f"{result['records']:>8} {result['handoffs']:>8} "
                + ("yes" if result["sustained"] else f"NO: {result['failure']}"),
                flush=True,
            )
            if not result["sustained"]:
                break
        with open("/proc/loadavg") as handle:
            load_after = handle.read().split()[:3]
    finally:
        for process in reversed(processes):
            stop(process)
        from django.db import connections

        connections.close_all()
        if not args.keep_db:
            admin_execute(ADMIN_URL, f'DROP DATABASE IF EXISTS "{args.database}" WITH (FORCE)')
        if results and all(r["sustained"] for r in results) and not args.keep_logs:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"logs kept in {workdir} (kamailio.log, gunicorn.log, caller-<rate>-errors.log)")

    best = max((r["rate"] for r in results if r["sustained"]), default=0)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "when": datetime.now(UTC).isoformat(),
                "machine": machine(),
                "load_before": load_before,
                "load_after": load_after,
                "settings": vars(args),
                "highest_sustained_rate": best,
                "target_rate": TARGET_RATE,
                "steps": results,
            },
            indent=2,
        )
    )
    print(f"highest sustained rate: {best}/s (target ≥ {TARGET_RATE}/s); load {load_before} → {load_after}")
    print(f"wrote {RESULTS}")
    return 0 if best >= TARGET_RATE else 1


if __name__ == "__main__":
    sys.exit(main())
