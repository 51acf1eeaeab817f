"""Faults under load: Redis stopped, PostgreSQL restarted, a worker killed mid-batch (issue #15, item 9).

One command: `.venv/bin/python bench/faults.py [--rate 20] [--redis-down 30] [--pg-down 3]`.

Everything runs on private instances this script starts and removes (the shared PostgreSQL and Redis
are never touched): a PostgreSQL cluster made by initdb in a temporary directory (as the `postgres`
user when run as root; trust authentication, loopback only) and a `redis-server` without
persistence, each on a free port. On them, as the README deploys: gunicorn (2 sync workers, HTTP)
and daphne (websockets), the demo center seeded, and the traffic simulator (reporting.simulator)
calling at a steady rate. Each fault is one segment of simulated traffic, with a fault in its middle:

- `redis`: Redis stopped for `--redis-down` seconds, then started (empty, as after a restart
  without persistence). A supervisor's live socket on daphne watches the feed the way the Live page
  does: it reconnects by itself and, once open, fetches what it missed from `/live/events/`.
- `postgres`: PostgreSQL stopped (fast shutdown) for `--pg-down` seconds, then started.
- `sigkill`: a batch whose event ids start with `kill-` makes a trigger on the private cluster sleep
  inside its transaction, after the batch's rows are inserted (once: a sequence counts); the gunicorn
  worker serving it is found by its connection's port and killed with SIGKILL. Then: the batch's rows
  in the database (must be none), the same batch posted again (stored once), and once more
  (all duplicates).

Per segment: calls driven, events the simulator was told were accepted (202), events stored, lost
(acknowledged, not stored), duplicated (an event id stored twice), stored but never acknowledged,
failed attempts by kind (the simulator retries every one with the same body, honouring Retry-After),
and the time to recover — from the fault's end to the live feed's first message (redis), to the last
failed request (postgres), to the killed batch stored (sigkill). → `results/faults.json`; exits 1 when
an event is lost or duplicated, a request failed with a 500, or a check of a fault fails.
tests/faults/test_faults.py runs the same at small scale.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.harness import GUNICORN, PYTHON, ROOT, free_port, machine, served_env
from bench.live_latency import LiveSocket, LiveSocketError, daphne
from reporting.simulator import ReferTarget, Simulator, SimulatorConfig, Stats

RESULTS = ROOT / "bench" / "results" / "faults.json"


def _pg_bin() -> Path:
    """PG_BIN, else the newest Debian server binaries installed (/usr/lib/postgresql/<version>/bin)."""
    if os.environ.get("PG_BIN"):
        return Path(os.environ["PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    return found[-1].parent if found else Path("/usr/lib/postgresql/15/bin")


PG_BIN = _pg_bin()
DB_NAME = "voiso_faults"
KILL_PREFIX = "kill-"  # the batch the sleep trigger holds inside its transaction
PROBE_PREFIX = "probe-"  # the requests sent beside the simulator's during the Redis outage


# --- private services -------------------------------------------------------------------------


def _as_postgres(command: list[str]) -> list[str]:
    """initdb and postgres refuse to run as root: as the postgres user then."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


class PrivatePostgres:
    """A throw-away PostgreSQL cluster on a free loopback port (trust auth); `close()` removes it."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="voiso-faults-pg-"))
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        self.data = self.dir / "data"
        self._run(
            [str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync"]
        )
        # The server notices a client that died (the SIGKILL'd worker) within this even while its
        # statement sleeps, and rolls the transaction back then.
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c client_connection_check_interval=100ms -c max_connections=60"
        )
        self._ctl = [str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.dir / "log"), "-o", options]
        self.start()

    def _run(self, command: list[str]) -> None:
        subprocess.run(_as_postgres(command), check=True, capture_output=True, cwd=self.dir)

    @property
    def admin_url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{DB_NAME}"

    def start(self) -> None:
        self._run([*self._ctl, "-w", "start"])

    def stop(self) -> None:
        self._run([*self._ctl, "-w", "-m", "fast", "stop"])

    def close(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run([*self._ctl, "-w", "-m", "immediate", "stop"])
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A redis-server without persistence on a free loopback port; `stop()`/`start()` at will."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="voiso-faults-redis-"))
        self.pidfile = self.dir / "redis.pid"
        self.start()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(
            [
                *("redis-server", "--port", str(self.port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--daemonize", "yes"),
                *(
                    "--pidfile",
                    str(self.pidfile),
                    "--dir",
                    str(self.dir),
                    "--logfile",
                    str(self.dir / "redis.log"),
                ),
            ],
            check=True,
            capture_output=True,
        )
        _wait_for_port(self.port, 10)

    def stop(self) -> None:
        pid = self._pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _is_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        self.pidfile.unlink(missing_ok=True)

    def _pid(self) -> int | None:
        try:
            return int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


def _is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (our own child, not yet reaped) is dead for this purpose.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    return True


def _wait_for_port(port: int, timeout: float) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"nothing answers on port {port} after {timeout:.0f} s")
        time.sleep(0.05)


SLEEP_TRIGGER = f"""
CREATE SEQUENCE faults_sleep_once;
CREATE FUNCTION faults_sleep_in_batch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    -- Once (a sequence is not rolled back): the batch's retry must go through.
    IF EXISTS (SELECT 1 FROM new_rows WHERE event_id LIKE '{KILL_PREFIX}%')
       AND nextval('faults_sleep_once') = 1 THEN
        PERFORM pg_sleep(60);
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER faults_sleep_in_batch AFTER INSERT ON reporting_callevent
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION faults_sleep_in_batch();
"""


# --- the application on them ------------------------------------------------------------------


def seed() -> None:
    """`bench/faults.py --seed` (in the served environment): migrate, the demo, a key, a session, as JSON."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "voiso_byob.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from reporting.history import bot_refer_targets, people_targets, queue_targets
    from routing.models import PhoneNumber
    from voiso_byob.models import ApiKeyScope, ContactCenter, User
    from voiso_byob.services import create_api_key

    call_command("migrate", interactive=False, verbosity=0)
    # The demo's six accounts at production hashing strength cost 5 s of CPU here; nobody signs in
    # with a password on this throw-away database (the supervisor's session is made below).
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet)
    center = ContactCenter.objects.get(slug="acme")
    _, raw_key = create_api_key(center=center, name="faults bench", scope=ApiKeyScope.TELEPHONY, by="bench")
    client = Client()
    client.force_login(User.objects.get(email="supervisor@acme.example"))
    cookie_name = settings.SESSION_COOKIE_NAME
    targets = [*queue_targets(center), *people_targets(center)]
    numbers = PhoneNumber.objects.for_center(center).filter(flow__published_version__isnull=False)
    print(
        json.dumps(
            {
                "api_key": raw_key,
                "sip_domain": center.sip_domain,
                "numbers": list(numbers.values_list("number", flat=True)),
                "refer_targets": [asdict(target) for target in targets],
                "bot_targets": {
                    bot: [asdict(target) for target in bot_targets]
                    for bot, bot_targets in bot_refer_targets(center, targets).items()
                },
                "cookie": f"{cookie_name}={client.cookies[cookie_name].value}",
            }
        )
    )


@dataclass
class App:
    base_url: str
    ws_port: int
    gunicorn: subprocess.Popen[bytes]
    seeded: dict[str, Any]

    def simulator_config(self, *, rate: float, duration: float, time_scale: float) -> SimulatorConfig:
        def targets(rows: list[dict[str, Any]]) -> tuple[ReferTarget, ...]:
            return tuple(ReferTarget(**{**row, "agents": tuple(row["agents"])}) for row in rows)

        return SimulatorConfig(
            base_url=self.base_url,
            api_key=self.seeded["api_key"],
            sip_domain=self.seeded["sip_domain"],
            numbers=tuple(self.seeded["numbers"]),
            refer_targets=targets(self.seeded["refer_targets"]),
            bot_targets={bot: targets(rows) for bot, rows in self.seeded["bot_targets"].items()},
            rate=rate,
            duration=duration,
            time_scale=time_scale,
            report_every=0,
            connections=20,
            max_attempts=40,  # never give up on a batch in these runs: every one must be told 202
            request_timeout=15,
            keep_event_ids=True,
        )

    def workers(self) -> list[int]:
        """The gunicorn master's worker processes."""
        children = Path(f"/proc/{self.gunicorn.pid}/task/{self.gunicorn.pid}/children").read_text().split()
        return [int(pid) for pid in children]


@contextlib.contextmanager
def application(pg: PrivatePostgres, redis: PrivateRedis, *, workers: int = 2) -> Iterator[App]:
    """migrate + seed on the private cluster, then gunicorn and daphne as the README deploys them."""
    import psycopg

    with psycopg.connect(pg.admin_url, autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {DB_NAME}")
    env = {**served_env(pg.url, redis.url), "LOG_LEVEL": "WARNING"}
    seeded = json.loads(
        subprocess.run(
            [str(PYTHON), str(Path(__file__)), "--seed"], cwd=ROOT, env=env, check=True, capture_output=True
        ).stdout
    )
    with psycopg.connect(pg.url, autocommit=True) as conn:
        conn.execute(SLEEP_TRIGGER)
    port, ws_port = free_port(), free_port()
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed in the finally below, after the server
    server = subprocess.Popen(
        [
            *(str(GUNICORN), "voiso_byob.wsgi:application", "--workers", str(workers)),
            *("--bind", f"127.0.0.1:{port}", "--timeout", "120", "--graceful-timeout", "5"),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for_port(port, 60)
        with daphne(ws_port, env):
            yield App(f"http://127.0.0.1:{port}", ws_port, server, seeded)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


# --- watching the live feed as the Live page does ----------------------------------------------


@dataclass
class FeedWatch:
    socket_ids: Counter[str] = field(default_factory=Counter)  # event id → times the socket carried it
    caught_up_ids: set[str] = field(default_factory=set)
    opened: list[float] = field(default_factory=list)  # time.time() of each socket opening
    closed: list[float] = field(default_factory=list)
    messages_at: list[float] = field(default_factory=list)  # time.time() of each socket message
    catch_up_errors: Counter[str] = field(default_factory=Counter)


async def watch_feed(app: App, watch: FeedWatch, stop: asyncio.Event) -> None:
    """A supervisor's Live page: a socket that reconnects, and a catch-up fetch each time it opens."""
    cookie = app.seeded["cookie"]
    since = datetime.now(UTC)
    async with httpx.AsyncClient(base_url=app.base_url, headers={"Cookie": cookie}, timeout=10) as http:
        while not stop.is_set():
            try:
                sock = await LiveSocket.connect("127.0.0.1", app.ws_port, cookie=cookie, timeout=3)
            except (OSError, LiveSocketError, TimeoutError, asyncio.IncompleteReadError):
                await asyncio.sleep(0.25)
                continue
            watch.opened.append(time.time())
            synced = datetime.now(UTC)
            try:
                answer = await http.get("/live/events/", params={"since": since.isoformat()})
                if answer.status_code == 200:
                    for message in answer.json()["messages"]:
                        watch.caught_up_ids.add(message["event"]["id"])
                    since = synced
                else:
                    watch.catch_up_errors[f"HTTP {answer.status_code}"] += 1
            except httpx.HTTPError as exc:
                watch.catch_up_errors[type(exc).__name__] += 1
            try:
                while not stop.is_set():
                    try:
                        message = await sock.receive_json(timeout=0.5)
                    except TimeoutError:
                        continue
                    if message is None:
                        break
                    watch.messages_at.append(time.time())
                    since = datetime.now(UTC)
                    for item in message.get("messages", []):
                        watch.socket_ids[item["event"]["id"]] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError):
                pass
            finally:
                watch.closed.append(time.time())
                await sock.close()


# --- one segment: traffic with a fault in its middle ------------------------------------------


@dataclass
class Segment:
    fault: str
    calls: int = 0
    acknowledged: int = 0
    stored: int = 0
    lost: int = 0
    duplicated: int = 0
    unacknowledged: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    failure_samples: dict[str, Any] = field(default_factory=dict)
    gave_up: int = 0
    fault_seconds: float = 0.0
    recover_seconds: float | None = None
    checks: dict[str, Any] = field(default_factory=dict)

    @property
    def problems(self) -> list[str]:
        found = []
        if self.lost:
            found.append(f"{self.fault}: {self.lost} acknowledged events not stored")
        if self.duplicated:
            found.append(f"{self.fault}: {self.duplicated} events stored twice")
        if self.unacknowledged or self.gave_up:
            found.append(f"{self.fault}: {self.unacknowledged} stored events never acknowledged")
        found += [f"{self.fault}: {kind}" for kind in self.failures if kind.startswith("HTTP 500")]
        found += [
            f"{self.fault}: {name} failed ({value})" for name, value in self.checks.items() if value is False
        ]
        return found


def _stored(pg: PrivatePostgres, after_id: int) -> tuple[Counter[str], int]:
    """Event ids stored after row `after_id` (the simulator's, not the kill batches'), and the last row."""
    import psycopg

    with psycopg.connect(pg.url) as conn:
        rows = conn.execute(
            "SELECT event_id, count(*) FROM reporting_callevent "
            "WHERE id > %s AND event_id NOT LIKE %s AND event_id NOT LIKE %s GROUP BY 1",
            [after_id, f"{KILL_PREFIX}%", f"{PROBE_PREFIX}%"],
        ).fetchall()
        last = conn.execute("SELECT coalesce(max(id), 0) FROM reporting_callevent").fetchone()[0]
    return Counter({event_id: count for event_id, count in rows}), last


def _last_event_row(pg: PrivatePostgres) -> int:
    import psycopg

    with psycopg.connect(pg.url) as conn:
        return conn.execute("SELECT coalesce(max(id), 0) FROM reporting_callevent").fetchone()[0]


async def run_segment(
    app: App,
    pg: PrivatePostgres,
    fault: str,
    driver: Any,
    *,
    rate: float,
    lead: float,
    tail: float,
    time_scale: float,
) -> tuple[Segment, Stats]:
    """The simulator for lead + the fault + tail seconds of arrivals, the fault `driver` `lead` s in."""
    segment = Segment(fault)
    before = await asyncio.to_thread(_last_event_row, pg)
    simulator = Simulator(
        app.simulator_config(rate=rate, duration=0, time_scale=time_scale), write=lambda line: None
    )
    run = asyncio.create_task(simulator.run())
    await asyncio.sleep(lead)
    await driver(segment)
    await asyncio.sleep(tail)
    simulator.stop()  # calls in progress end now, each reporting its end
    stats: Stats = await run
    stored, _ = await asyncio.to_thread(_stored, pg, before)
    acknowledged = set(stats.acknowledged_ids)
    segment.calls = stats.calls_started
    segment.acknowledged = len(acknowledged)
    segment.stored = len(stored)
    segment.lost = len(acknowledged - set(stored))
    segment.duplicated = sum(count - 1 for count in stored.values())
    segment.unacknowledged = len(set(stored) - acknowledged)
    segment.failures = dict(stats.failures.most_common())
    segment.failure_samples = stats.failure_samples
    segment.gave_up = stats.gave_up
    return segment, stats


# --- the faults -------------------------------------------------------------------------------


def redis_fault(app: App, redis: PrivateRedis, watch: FeedWatch, seconds: float) -> Any:
    async def drive(segment: Segment) -> None:
        down_at = time.time()
        await asyncio.to_thread(redis.stop)
        # Route, refer and events keep answering meanwhile: the simulator's failures say so, and so
        # does one request of each a second into the outage.
        await asyncio.sleep(min(1.0, seconds / 2))
        segment.checks["answers_during_the_outage"] = await _probe(app)
        await asyncio.sleep(seconds - min(1.0, seconds / 2))
        await asyncio.to_thread(redis.start)
        back_at = time.time()
        segment.fault_seconds = back_at - down_at
        segment.checks["redis_back_at"] = back_at

    return drive


async def _probe(app: App) -> dict[str, int]:
    """One route, one refer and one event batch, as the switch sends them: their HTTP statuses."""
    call_id = f"{PROBE_PREFIX}{uuid.uuid4().hex}"
    number = app.seeded["numbers"][0]
    extension = app.seeded["refer_targets"][0]["extension"]
    requests = {
        "route": ("/api/v1/telephony/route", {"call_id": call_id, "to": number, "from": "+442079460999"}),
        "refer": (
            "/api/v1/telephony/refer",
            {"call_id": call_id, "refer_to": f"<sip:{extension}@{app.seeded['sip_domain']}>"},
        ),
        "events": (
            "/api/v1/telephony/events",
            {"events": [{"id": f"{PROBE_PREFIX}{uuid.uuid4()}", "type": "call.started", "call_id": call_id,
                         "occurred_at": datetime.now(UTC).isoformat(),
                         "data": {"direction": "inbound", "from": "+442079460999", "to": number}}]},
        ),
    }  # fmt: skip
    headers = {"Authorization": f"Bearer {app.seeded['api_key']}"}
    statuses = {}
    async with httpx.AsyncClient(base_url=app.base_url, headers=headers, timeout=10) as client:
        for name, (path, body) in requests.items():
            statuses[name] = (await client.post(path, json=body)).status_code
    return statuses


def postgres_fault(pg: PrivatePostgres, seconds: float) -> Any:
    async def drive(segment: Segment) -> None:
        down_at = time.time()
        await asyncio.to_thread(pg.stop)
        await asyncio.sleep(seconds)
        await asyncio.to_thread(pg.start)
        back_at = time.time()
        segment.fault_seconds = back_at - down_at
        segment.checks["postgres_back_at"] = back_at

    return drive


def kill_batch(calls: int = 25) -> list[dict[str, Any]]:
    """Two events of each of `calls` new calls, with ids the sleep trigger recognises."""
    now = datetime.now(UTC).isoformat()
    events = []
    for _ in range(calls):
        call_id = f"{KILL_PREFIX}call-{uuid.uuid4().hex}"
        for kind, data in (
            ("call.started", {"direction": "inbound", "from": "+442079460999", "to": "+442079460000"}),
            ("call.ended", {"end_reason": "completed", "hangup_by": "caller"}),
        ):
            event = {"id": f"{KILL_PREFIX}{uuid.uuid4()}", "type": kind, "call_id": call_id}
            events.append({**event, "occurred_at": now, "data": data})
    return events


def _sleeping_backend(pg: PrivatePostgres) -> tuple[int, int] | None:
    """(backend pid, client port) of the batch asleep in its transaction, if any."""
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as conn:
        return conn.execute(
            "SELECT pid, client_port FROM pg_stat_activity WHERE wait_event = 'PgSleep' AND datname = %s",
            [DB_NAME],
        ).fetchone()


def _kill_rows(pg: PrivatePostgres) -> tuple[int, int]:
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as conn:
        return conn.execute(
            "SELECT count(*), count(DISTINCT event_id) FROM reporting_callevent WHERE event_id LIKE %s",
            [f"{KILL_PREFIX}%"],
        ).fetchone()


def _backend_alive(pg: PrivatePostgres, pid: int) -> bool:
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as conn:
        return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid]).fetchone()[0] > 0


def worker_with_local_port(pids: list[int], port: int) -> int | None:
    """The process among `pids` holding the TCP connection whose local port is `port` (/proc)."""
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                columns = line.split()
                if int(columns[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(columns[9])
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    target = os.readlink(fd)
                    if target.startswith("socket:[") and target[8:-1] in inodes:
                        return pid
    return None


def sigkill_fault(app: App, pg: PrivatePostgres) -> Any:
    async def drive(segment: Segment) -> None:
        batch = kill_batch()
        headers = {"Authorization": f"Bearer {app.seeded['api_key']}"}
        async with httpx.AsyncClient(base_url=app.base_url, headers=headers, timeout=90) as client:
            first = asyncio.create_task(client.post("/api/v1/telephony/events", json={"events": batch}))
            asleep = None
            deadline = time.monotonic() + 30
            while asleep is None and time.monotonic() < deadline and not first.done():
                asleep = await asyncio.to_thread(_sleeping_backend, pg)
                await asyncio.sleep(0.05)
            if asleep is None:
                segment.checks["batch_asleep_in_its_transaction"] = False
                await first
                return
            backend, port = asleep
            worker = worker_with_local_port(app.workers(), port)
            segment.checks["worker_found"] = worker is not None
            if worker is None:
                return
            # The batch's rows are in (the trigger runs after the insert), not committed.
            killed_at = time.time()
            os.kill(worker, signal.SIGKILL)
            try:
                answer = await first
                segment.checks["first_attempt"] = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                segment.checks["first_attempt"] = type(exc).__name__
            while await asyncio.to_thread(_backend_alive, pg, backend):
                await asyncio.sleep(0.05)
            rows, _ = await asyncio.to_thread(_kill_rows, pg)
            segment.checks["rows_after_the_kill"] = rows
            segment.checks["nothing_of_the_batch_stored"] = rows == 0
            retried = await _post_until_answered(client, batch)
            segment.recover_seconds = time.time() - killed_at
            segment.checks["retry"] = retried
            rows, distinct = await asyncio.to_thread(_kill_rows, pg)
            again = await _post_until_answered(client, batch)
            segment.checks["again"] = again
            segment.checks["retry_stored_it_once"] = (
                retried == {"status": 202, "accepted": len(batch), "duplicates": 0}
                and rows == distinct == len(batch)
                and again == {"status": 202, "accepted": 0, "duplicates": len(batch)}
            )
            segment.fault_seconds = time.time() - killed_at

    return drive


async def _post_until_answered(client: httpx.AsyncClient, batch: list[dict[str, Any]]) -> dict[str, Any]:
    for _ in range(50):
        try:
            answer = await client.post("/api/v1/telephony/events", json={"events": batch})
        except httpx.TransportError:
            await asyncio.sleep(0.2)
            continue
        if answer.status_code < 500:
            return {"status": answer.status_code, **answer.json()}
        await asyncio.sleep(0.2)
    return {"status": None}


# --- the run ----------------------------------------------------------------------------------


@dataclass
class Options:
    rate: float = 20.0
    redis_down: float = 30.0
    pg_down: float = 3.0
    lead: float = 10.0
    tail: float = 10.0
    time_scale: float = 0.1
    workers: int = 2
    faults: tuple[str, ...] = ("redis", "postgres", "sigkill")


async def _run_faults(app: App, pg: PrivatePostgres, redis: PrivateRedis, options: Options) -> list[Segment]:
    watch = FeedWatch()
    stop = asyncio.Event()
    watcher = asyncio.create_task(watch_feed(app, watch, stop))
    segments = []
    drivers = {
        "redis": lambda: redis_fault(app, redis, watch, options.redis_down),
        "postgres": lambda: postgres_fault(pg, options.pg_down),
        "sigkill": lambda: sigkill_fault(app, pg),
    }
    try:
        for fault in options.faults:
            before = await asyncio.to_thread(_last_event_row, pg)
            segment, stats = await run_segment(
                app,
                pg,
                fault,
                drivers[fault](),
                rate=options.rate,
                lead=options.lead,
                tail=options.tail,
                time_scale=options.time_scale,
            )
            if fault == "redis":
                await asyncio.sleep(1.0)  # the last events' feed messages
                back_at = segment.checks.pop("redis_back_at")
                resumed = [at for at in watch.messages_at if at > back_at]
                reopened = [at for at in watch.opened if at > back_at]
                segment.recover_seconds = resumed[0] - back_at if resumed else None
                segment.checks["feed_reopened_seconds"] = (
                    round(reopened[0] - back_at, 3) if reopened else None
                )
                stored, _ = await asyncio.to_thread(_stored, pg, before)
                seen = set(watch.socket_ids) | watch.caught_up_ids
                segment.checks["feed_resumed"] = bool(resumed)
                segment.checks["feed_missing"] = len(set(stored) - seen)
                segment.checks["feed_socket_duplicates"] = sum(
                    n - 1 for n in watch.socket_ids.values() if n > 1
                )
                segment.checks["feed_reconnects"] = max(len(watch.opened) - 1, 0)
                segment.checks["feed_catch_up_errors"] = dict(watch.catch_up_errors)
                segment.checks["page_complete"] = segment.checks["feed_missing"] == 0
                segment.checks["no_failed_request"] = not segment.failures
                segment.checks["answered_during_the_outage"] = segment.checks[
                    "answers_during_the_outage"
                ] == {
                    "route": 200,
                    "refer": 200,
                    "events": 202,
                }
            elif fault == "postgres":
                back_at = segment.checks.pop("postgres_back_at")
                # Until the last request that failed in the outage got through (each waits its Retry-After).
                segment.recover_seconds = max(0.0, max(stats.recovery_times, default=back_at) - back_at)
                late = sorted(at - back_at for at in stats.failure_times if at > back_at)
                segment.checks["failed_attempts_after_it_was_back"] = len(late)
                segment.checks["last_late_failure_s"] = round(late[-1], 3) if late else None
                sample = segment.failure_samples.get("HTTP 503 database_unavailable")
                segment.checks["503_with_retry_after"] = bool(
                    sample
                    and sample["retry_after"]
                    and json.loads(sample["body"])["error"]["code"] == "database_unavailable"
                )
            segments.append(segment)
    finally:
        stop.set()
        await watcher
    return segments


def run(options: Options) -> dict[str, Any]:
    """Start the private services and the application, run the faults, tear everything down."""
    pg = PrivatePostgres()
    redis: PrivateRedis | None = None
    try:
        redis = PrivateRedis()
        with application(pg, redis, workers=options.workers) as app:
            segments = asyncio.run(_run_faults(app, pg, redis, options))
    finally:
        if redis is not None:
            redis.close()
        pg.close()
    return {"options": asdict(options), "segments": [asdict(s) for s in segments], "problems": [
        problem for segment in segments for problem in segment.problems
    ]}  # fmt: skip


def _table(result: dict[str, Any]) -> str:
    header = (
        f"{'fault':<9} {'fault s':>7} {'calls':>6} {'acked':>7} {'stored':>7} {'lost':>5} {'dup':>4} "
        f"{'recover s':>9}  errors by kind"
    )
    lines = [header, "-" * len(header)]
    for s in result["segments"]:
        recover = "-" if s["recover_seconds"] is None else f"{s['recover_seconds']:.2f}"
        errors = ", ".join(f"{kind} x{n}" for kind, n in s["failures"].items()) or "none"
        counts = (
            f"{s['calls']:>6} {s['acknowledged']:>7} {s['stored']:>7} {s['lost']:>5} {s['duplicated']:>4}"
        )
        lines.append(f"{s['fault']:<9} {s['fault_seconds']:>7.1f} {counts} {recover:>9}  {errors}")
    for s in result["segments"]:
        checks = {k: v for k, v in s["checks"].items()}
        lines.append(f"{s['fault']} checks: {json.dumps(checks, default=str)}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--rate", type=float, default=Options.rate, help="simulated calls per second")
    parser.add_argument(
        "--redis-down", type=float, default=Options.redis_down, help="seconds Redis stays stopped"
    )
    parser.add_argument(
        "--pg-down", type=float, default=Options.pg_down, help="seconds PostgreSQL stays stopped"
    )
    parser.add_argument(
        "--lead", type=float, default=Options.lead, help="seconds of traffic before each fault"
    )
    parser.add_argument(
        "--tail", type=float, default=Options.tail, help="seconds of traffic after each fault"
    )
    parser.add_argument(
        "--time-scale", type=float, default=Options.time_scale, help="multiplies the calls' pauses"
    )
    parser.add_argument("--workers", type=int, default=Options.workers, help="gunicorn workers")
    parser.add_argument("--faults", default=",".join(Options.faults), help="which, in order")
    args = parser.parse_args()
    if args.seed:
        seed()
        return 0
    options = Options(
        rate=args.rate,
        redis_down=args.redis_down,
        pg_down=args.pg_down,
        lead=args.lead,
        tail=args.tail,
        time_scale=args.time_scale,
        workers=args.workers,
        faults=tuple(f.strip() for f in args.faults.split(",") if f.strip()),
    )
    load_before = os.getloadavg()
    started = time.monotonic()
    result = run(options)
    result.update(
        seconds=time.monotonic() - started,
        load_before=load_before,
        load_after=os.getloadavg(),
        machine=machine(),
        uptime=subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip(),
    )
    print(_table(result))
    print(
        f"load average before {load_before[0]:.2f}, after {result['load_after'][0]:.2f}; {result['uptime']}"
    )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2, default=str))
    for problem in result["problems"]:
        print(f"FAILED: {problem}")
    return 1 if result["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
