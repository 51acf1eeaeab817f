"""Live feed latency: events to 100 supervisor websockets spread over two ASGI server processes.

    .venv/bin/python bench/live_latency.py [--sockets 100] [--events 300] [--gap-ms 20]
                                           [--via api|publish] [--keep-db]

What it does, in one run (about half a minute):
  1. drops and recreates the PostgreSQL database `voiso_bench_live` (BENCH_PG_URL, default
     postgres://postgres@127.0.0.1:5432/postgres, is where it connects to do that), migrates it and,
     in a Django subprocess, creates the contact center `livebench` with a supervisor (a logged-in
     session), a telephony API key and one virtual agent;
  2. starts two daphne processes (`voiso_byob.asgi:application`) on free ports, both on the same
     Redis channel layer (REDIS_URL, default redis://127.0.0.1:6379/12), DEBUG off, CONN_MAX_AGE=600;
  3. opens `--sockets` websockets to /ws/live/ with the supervisor's session, alternating between the
     two servers, and checks every one is accepted;
  4. sends `--events` events one after the other, `--gap-ms` apart, each waiting until every socket
     has it (or 5 s):
       --via api      POST /api/v1/telephony/events (one event, telephony key), alternating between
                      the two servers: the event is stored, folded into its call record and published
                      after commit by the server that took it; timed from the POST's response;
       --via publish  reporting.live.publish() from this process (no HTTP, no database): the channel
                      layer alone; timed from publish()'s return;
     the default is `api` when the events endpoint exists, else `publish`;
  5. prints a table (deliveries, lost, p50 / p95 / p99 / max ms, per server and overall; latency
     measured from the response and, for reference, from the request being sent), writes
     bench/results/live_latency.json and exits 1 when p95 from the response exceeds 100 ms or any
     delivery was lost. Servers are stopped and the database dropped (unless --keep-db) at the end.

Clocks: sender and sockets run in this one process and share `time.perf_counter()`. An event can
reach a socket before its POST's response reaches the sender (the server publishes on commit, then
answers); such deliveries count as 0 ms from the response.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import secrets
import socket
import struct
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run as a script: the project root
from bench.harness import PYTHON, ROOT, free_port

RESULTS = ROOT / "bench" / "results" / "live_latency.json"
DB_NAME = "voiso_bench_live"
CENTER_SLUG = "livebench"
TARGET_P95_MS = 100.0
DELIVERY_TIMEOUT = 5.0


# --- a minimal websocket client (RFC 6455: handshake, text frames, ping, close) ----------------


class LiveSocketError(Exception):
    pass


class LiveSocket:
    """Just enough of a websocket client to watch /ws/live/, with no dependency beyond asyncio."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.close_code: int | None = None

    @classmethod
    async def connect(
        cls, host: str, port: int, *, cookie: str = "", path: str = "/ws/live/", timeout: float = 10
    ) -> LiveSocket:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        key = base64.b64encode(secrets.token_bytes(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Origin: http://{host}:{port}",
        ]
        if cookie:
            lines.append(f"Cookie: {cookie}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            writer.close()
            raise LiveSocketError(f"handshake refused: {status.decode(errors='replace')}")
        return cls(reader, writer)

    async def _send_frame(self, opcode: int, payload: bytes) -> None:
        # A client masks every frame it sends (RFC 6455 §5.3).
        mask = secrets.token_bytes(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.writer.write(header + mask + masked)
        await self.writer.drain()

    async def send_text(self, text: str) -> None:
        await self._send_frame(0x1, text.encode())

    async def receive(self) -> str | None:
        """The next text message, or None once the server closed (its code in `close_code`)."""
        parts: list[bytes] = []
        while True:
            first, second = await self.reader.readexactly(2)
            opcode, is_final = first & 0x0F, bool(first & 0x80)
            length = second & 0x7F
            if length == 126:
                (length,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif length == 127:
                (length,) = struct.unpack("!Q", await self.reader.readexactly(8))
            payload = await self.reader.readexactly(length) if length else b""
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                with contextlib.suppress(Exception):
                    await self._send_frame(0x8, payload[:2])
                self.writer.close()
                return None
            if opcode == 0x9:
                await self._send_frame(0xA, payload)
                continue
            if opcode in (0x1, 0x0):
                parts.append(payload)
                if is_final:
                    return b"".join(parts).decode()
            # Pongs and binary frames are not part of the feed: skipped.

    async def receive_json(self, timeout: float = 5) -> Any:
        text = await asyncio.wait_for(self.receive(), timeout)
        return None if text is None else json.loads(text)

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self._send_frame(0x8, struct.pack("!H", 1000))
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


# --- daphne processes ----------------------------------------------------------------------------


@contextlib.contextmanager
def daphne(
    port: int, env: dict[str, str], *, startup_timeout: float = 60
) -> Iterator[subprocess.Popen[bytes]]:
    """`daphne voiso_byob.asgi:application` on 127.0.0.1:port until the block ends."""
    with tempfile.TemporaryFile() as log:
        server = subprocess.Popen(
            [str(PYTHON), "-m", "daphne", "-b", "127.0.0.1", "-p", str(port), "voiso_byob.asgi:application"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if server.poll() is not None:
                    log.seek(0)
                    output = log.read().decode(errors="replace")[-2000:]
                    raise RuntimeError(f"daphne on port {port} exited: {output}")
                with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"daphne on port {port} did not start in {startup_timeout:.0f} s")
                time.sleep(0.1)
            yield server
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


# --- seeding (a Django subprocess) ---------------------------------------------------------------


def seed() -> None:
    """`bench/live_latency.py --seed`: the center, a supervisor's session, a key and a bot, as JSON."""
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiso_byob.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.test import Client

    from virtual_agents.services import create_integration, create_virtual_agent
    from voiso_byob.models import ApiKeyScope, Role
    from voiso_byob.services import add_member, create_api_key, create_contact_center

    center = create_contact_center(
        slug=CENTER_SLUG,
        name="Live bench",
        admin_email="admin@livebench.example",
        admin_password=secrets.token_urlsafe(16),
        by="bench",
        byob_enabled=True,
    )
    supervisor = add_member(
        center=center,
        email="supervisor@livebench.example",
        role=Role.SUPERVISOR,
        extension=None,
        password=secrets.token_urlsafe(16),
        by="bench",
    )
    _, raw_key = create_api_key(center=center, name="bench", scope=ApiKeyScope.TELEPHONY, by="bench")
    integration = create_integration(
        center=center, provider="generic_sip", label="Bench SIP", credentials=None, by="bench"
    )
    bot = create_virtual_agent(
        integration=integration,
        by="bench",
        name="Bench bot",
        sip_uri="sip:bot@bots.example.com",
        extension="7001",
    )
    client = Client()
    client.force_login(supervisor.user)
    session = client.cookies[settings.SESSION_COOKIE_NAME].value
    print(
        json.dumps(
            {
                "center": str(center.id),
                "cookie": f"{settings.SESSION_COOKIE_NAME}={session}",
                "api_key": raw_key,
                "virtual_agent": str(bot.id),
            }
        )
    )


# --- the run -------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


@dataclass
class Delivery:
    event_ids: dict[str, float] = field(default_factory=dict)  # event id → arrival (perf_counter)


async def watch(sock: LiveSocket, delivery: Delivery, arrived: asyncio.Event) -> None:
    while True:
        text = await sock.receive()
        if text is None:
            return
        now = time.perf_counter()
        for message in json.loads(text).get("messages", []):
            delivery.event_ids.setdefault(message["event"]["id"], now)
        arrived.set()


def event_body(n: int, nonce: str, virtual_agent: str) -> dict[str, Any]:
    # bot.connected on its own call: a stored event the feed carries, with the call and the bot.
    return {
        "id": f"bench-{nonce}-{n}",
        "type": "bot.connected",
        "call_id": f"bench-call-{nonce}-{n}",
        "occurred_at": datetime.now(UTC).isoformat(),
        "data": {"virtual_agent": virtual_agent},
    }


def feed_message(body: dict[str, Any], cursor: int) -> dict[str, Any]:
    """What reporting.feed builds for `body`, for --via publish (no database involved)."""
    return {
        "cursor": cursor,
        "event": body,
        "call": {
            "call_id": body["call_id"],
            "direction": "inbound",
            "from": "+14155550100",
            "to": "+14155550199",
            "status": "in_progress",
            "bot_outcome": "",
            "started_at": body["occurred_at"],
            "ended_at": None,
            "handoff_count": 0,
        },
        "virtual_agent": {"id": body["data"]["virtual_agent"], "name": "Bench bot", "extension": "7001"},
        "handoff": None,
    }


async def run_bench(
    args: argparse.Namespace, ports: list[int], seeded: dict[str, Any], via: str
) -> dict[str, Any]:
    import httpx

    sockets: list[tuple[int, LiveSocket, Delivery]] = []
    arrived = asyncio.Event()
    for index in range(args.sockets):
        port = ports[index % len(ports)]
        sock = await LiveSocket.connect("127.0.0.1", port, cookie=seeded["cookie"])
        sockets.append((port, sock, Delivery()))
    watchers = [asyncio.create_task(watch(sock, delivery, arrived)) for _, sock, delivery in sockets]
    await asyncio.sleep(0.5)
    refused = [sock.close_code for _, sock, _ in sockets if sock.close_code is not None]
    if refused:
        raise RuntimeError(
            f"{len(refused)} socket(s) were closed by the server: codes {sorted(set(refused))}"
        )

    publish = None
    if via == "publish":
        from reporting.live import publish

    nonce = uuid.uuid4().hex[:8]
    sent: list[tuple[str, int, float, float]] = []  # event id, server port, request sent, response
    errors: list[str] = []
    async with httpx.AsyncClient(timeout=10) as client:
        for n in range(args.events):
            body = event_body(n, nonce, seeded["virtual_agent"])
            port = ports[n % len(ports)]
            started = time.perf_counter()
            if publish is not None:
                await asyncio.to_thread(publish, seeded["center"], [feed_message(body, n)])
            else:
                response = await client.post(
                    f"http://127.0.0.1:{port}/api/v1/telephony/events",
                    json=body,
                    headers={"Authorization": f"Bearer {seeded['api_key']}"},
                )
                if response.status_code != 202:
                    errors.append(f"{response.status_code} {response.text[:200]}")
            answered = time.perf_counter()
            sent.append((body["id"], port, started, answered))
            deadline = answered + DELIVERY_TIMEOUT
            while (
                not all(body["id"] in d.event_ids for _, _, d in sockets) and time.perf_counter() < deadline
            ):
                arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), max(0.001, deadline - time.perf_counter()))
            await asyncio.sleep(args.gap_ms / 1000)

    for _, sock, _ in sockets:
        await sock.close()
    for task in watchers:
        task.cancel()
    await asyncio.gather(*watchers, return_exceptions=True)

    rows: dict[str, dict[str, list[float]]] = {}
    lost = 0
    for event_id, _, started, answered in sent:
        for port, _, delivery in sockets:
            at = delivery.event_ids.get(event_id)
            if at is None:
                lost += 1
                continue
            for key in (f"sockets on :{port}", "all sockets"):
                row = rows.setdefault(key, {"response": [], "request": []})
                row["response"].append(max(0.0, at - answered) * 1000)
                row["request"].append((at - started) * 1000)
    return {"rows": rows, "lost": lost, "errors": errors, "events": len(sent)}


def summarize(values: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(percentile(values, 50), 2),
        "p95_ms": round(percentile(values, 95), 2),
        "p99_ms": round(percentile(values, 99), 2),
        "max_ms": round(max(values), 2) if values else float("nan"),
    }


def events_endpoint_exists() -> bool:
    return (ROOT / "reporting" / "ingest.py").exists()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sockets", type=int, default=100)
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--gap-ms", type=float, default=20)
    parser.add_argument("--via", choices=["api", "publish"], default=None)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed()
        return 0
    via = args.via or ("api" if events_endpoint_exists() else "publish")

    import psycopg

    admin_url = os.environ.get("BENCH_PG_URL", "postgres://postgres@127.0.0.1:5432/postgres")
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/12")
    base, _, _ = admin_url.rpartition("/")
    env = {
        **os.environ,
        "DATABASE_URL": f"{base}/{DB_NAME}",
        "REDIS_URL": redis_url,
        "DEBUG": "false",
        "SECRET_KEY": os.environ.get("SECRET_KEY", secrets.token_urlsafe(40)),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SECURE_SSL_REDIRECT": "false",
        "SECURE_COOKIES": "false",
        "STATIC_NO_MANIFEST": "true",
        "CONN_MAX_AGE": "600",
        "FIELD_ENCRYPTION_KEYS": os.environ.get(
            "FIELD_ENCRYPTION_KEYS", base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
        ),
    }
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')
    try:
        subprocess.run(
            [str(PYTHON), "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            check=True,
            timeout=300,
        )
        out = subprocess.run(
            [str(PYTHON), __file__, "--seed"], cwd=ROOT, env=env, check=True, capture_output=True, timeout=120
        )
        seeded = json.loads(out.stdout.decode().strip().splitlines()[-1])
        # This process publishes (--via publish) with the servers' settings.
        os.environ.update(env)
        sys.path.insert(0, str(ROOT))
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiso_byob.settings")
        import django

        django.setup()
        import logging

        logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per POST otherwise
        ports = [free_port(), free_port()]
        with daphne(ports[0], env), daphne(ports[1], env):
            started = time.monotonic()
            outcome = asyncio.run(run_bench(args, ports, seeded, via))
            seconds = time.monotonic() - started
    finally:
        if not args.keep_db:
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')

    table = {
        name: {"deliveries": len(v["response"]), **summarize(v["response"])}
        for name, v in outcome["rows"].items()
    }
    overall = outcome["rows"].get("all sockets", {"response": [], "request": []})
    from_request = summarize(overall["request"])
    print(
        f"\nLive feed latency, via {via}: {args.events} events x {args.sockets} sockets on 2 daphne processes"
    )
    print(f"{'':<22}{'deliveries':>11}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name in sorted(table, key=lambda k: (k == "all sockets", k)):
        row = table[name]
        print(
            f"{name:<22}{row['deliveries']:>11}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}"
            f"{row['p99_ms']:>9.1f}{row['max_ms']:>9.1f}"
        )
    print(
        f"{'(from request sent)':<22}{len(overall['request']):>11}{from_request['p50_ms']:>9.1f}"
        f"{from_request['p95_ms']:>9.1f}{from_request['p99_ms']:>9.1f}{from_request['max_ms']:>9.1f}"
    )
    p95 = table.get("all sockets", {}).get("p95_ms", float("inf"))
    passed = p95 <= TARGET_P95_MS and outcome["lost"] == 0 and not outcome["errors"]
    print(
        f"lost deliveries: {outcome['lost']}, send errors: {len(outcome['errors'])}; "
        f"target p95 ≤ {TARGET_P95_MS:.0f} ms from the response: {'met' if passed else 'MISSED'}"
    )
    for error in outcome["errors"][:5]:
        print(f"  {error}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "live_latency",
                "when": datetime.now(UTC).isoformat(timespec="seconds"),
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                "via": via,
                "sockets": args.sockets,
                "servers": 2,
                "events": outcome["events"],
                "gap_ms": args.gap_ms,
                "seconds": round(seconds, 1),
                "from_response": table,
                "from_request": from_request,
                "lost": outcome["lost"],
                "errors": outcome["errors"][:20],
                "target_p95_ms": TARGET_P95_MS,
                "passed": passed,
            },
            indent=2,
        )
    )
    print(f"wrote {RESULTS.relative_to(ROOT)}")
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
