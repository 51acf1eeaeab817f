"""The traffic simulator: plays the SIP layer against a running server, over its real HTTP API.

Each simulated inbound call asks `POST /api/v1/telephony/route` where it goes (answering menus
with digits), tells `POST /api/v1/telephony/events` what happens in a small batch per step, and,
when its bot decides to hand the caller back, asks `POST /api/v1/telephony/refer` before
reporting the handoff's fate. Arrivals are Poisson at `rate` calls/s and calls overlap.

Every decision about a call comes from a random generator of its own, seeded from `seed` and
the call's index, so one seed gives the same calls whatever the timing or the server's speed.
Call and event ids stay random: a second run with the same seed must not collide with the first.

Transient failures (connection errors, timeouts, 5xx, 429) are retried with the same body, so
a retried event batch carries the same event ids and the server counts them as duplicates; a
`Retry-After` (503 `database_unavailable` while PostgreSQL restarts, 429) says when.

No Django here: `manage.py simulate_calls` finds the numbers, targets and API key; load tests
build a `SimulatorConfig` and run `Simulator` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
import re
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import uuid4

import httpx

ROUTE_PATH = "/api/v1/telephony/route"
REFER_PATH = "/api/v1/telephony/refer"
EVENTS_PATH = "/api/v1/telephony/events"

# What bots put in X-Reason when no queue name suggests one.
REASONS = ("billing", "sales", "support", "cancellation", "complaint", "human_requested")
LANGUAGES = ("en", "en", "en", "es", "fr", "de")
# A bot's REFER failing at the target: (reason, final NOTIFY status).
USER_FAILURES = (("busy", 486), ("no_answer", 408), ("declined", 603))
QUEUE_FAILURES = (("queue_full", 486), ("temporarily_unavailable", 480))
MAX_MENUS = 5  # a caller who is still in a menu after this many answers hangs up
DIGIT_RE = re.compile(r"\b([0-9*#])\b")


class SimulatorError(Exception):
    """The simulation cannot start (server unreachable, key refused, nothing to call)."""


@dataclass(frozen=True)
class ReferTarget:
    """Where bots may hand calls: an extension, the X-Reason they give, who answers there."""

    extension: str
    reason: str
    agents: tuple[str, ...] = ()  # agents' extensions answering a queue's calls
    weight: float = 1.0  # how often bots pick it, relative to the other targets


@dataclass(frozen=True)
class SimulatorConfig:
    base_url: str
    api_key: str = field(repr=False)
    sip_domain: str  # the center's, e.g. "acme.voiso.com": bots REFER to sip:{ext}@{sip_domain}
    numbers: tuple[str, ...]  # the DIDs callers dial
    refer_targets: tuple[ReferTarget, ...] = ()
    # A bot's own handoff targets, by its id or extension (as dial instructions name it); a bot
    # not listed hands off to `refer_targets`.
    bot_targets: Mapping[str, tuple[ReferTarget, ...]] = field(default_factory=dict)
    rate: float = 1.0  # calls per second
    duration: float = 60.0  # seconds of arrivals; 0 = until stop()
    handoff_share: float = 0.3  # of the calls a bot answers
    seed: int | None = None
    time_scale: float = 1.0  # multiplies every pause in a call (0.01 in tests)
    report_every: float = 10.0  # seconds between summary lines; 0 = none
    connections: int = 20
    max_attempts: int = 8  # about 15 s of backoff in all: outlasts the dev server's reload
    max_retry_after: float = 30.0  # a server's Retry-After is honoured up to this many seconds
    request_timeout: float = 10.0
    keep_event_ids: bool = False  # fault tests compare what was acknowledged with what was stored
    startup_timeout: float = 60.0  # how long to wait for the server to answer at all

    def check(self) -> None:
        if not self.numbers:
            raise SimulatorError("No number to call: give at least one DID with a published flow.")
        if not (self.rate > 0 and math.isfinite(self.rate)):
            raise SimulatorError("The rate must be a positive number of calls per second.")
        if not (self.duration >= 0 and math.isfinite(self.duration)):
            raise SimulatorError("The duration must be 0 (until stopped) or a positive number of seconds.")
        if not 0 <= self.handoff_share <= 1:
            raise SimulatorError("The handoff share is between 0 and 1.")
        if self.handoff_share > 0 and not (self.refer_targets or any(self.bot_targets.values())):
            raise SimulatorError("Handoffs need at least one extension to refer calls to.")
        if not (self.time_scale >= 0 and math.isfinite(self.time_scale)):
            raise SimulatorError("The time scale must be 0 or more.")
        if self.connections < 1 or self.max_attempts < 1:
            raise SimulatorError("connections and max_attempts must be at least 1.")


# --- what each call will do, decided up front --------------------------------------------


@dataclass(frozen=True)
class CallPlan:
    """The caller's and the bot's choices for one call (times in seconds, before scaling)."""

    index: int
    caller: str
    number: str
    menu_pick: float  # picks among the digits a menu prompt offers
    outcome: str  # with a bot: "contained" | "abandoned" | "handoff"
    bot_seconds: float  # with the bot before it ends, refers or the caller hangs up
    contained_hangup_by: str
    refer_pick: float  # picks the handoff target among the bot's (see choose_target)
    language: str
    handoff_result: str  # "answered" | "abandoned" (in the queue) | "failed" (final NOTIFY ≥ 300)
    failure: tuple[str, int]
    ring_seconds: float  # REFER accepted → the target answers (or fails)
    queue_seconds: float  # waiting in the queue for an agent
    agent_pick: float
    human_seconds: float
    human_hangup_by: str
    has_recording: bool


def plan_call(config: SimulatorConfig, index: int) -> CallPlan:
    rng = random.Random(f"{config.seed}:{index}") if config.seed is not None else random.Random()  # noqa: S311
    is_handoff = rng.random() < config.handoff_share
    outcome = "handoff" if is_handoff else ("abandoned" if rng.random() < 0.15 else "contained")
    bot_seconds = {
        "handoff": rng.uniform(8, 40),
        "abandoned": rng.uniform(1, 6),  # hung up on the bot within seconds
        "contained": rng.uniform(15, 90),
    }[outcome]
    result = rng.choices(("answered", "abandoned", "failed"), weights=(80, 10, 10))[0]
    return CallPlan(
        index=index,
        # Ofcom's drama range of mobile numbers (+44 7700 900000 to 900999): never a real caller.
        caller=f"+447700900{rng.randrange(1000):03d}",
        number=rng.choice(config.numbers),
        menu_pick=rng.random(),
        outcome=outcome,
        bot_seconds=bot_seconds,
        contained_hangup_by=rng.choices(("bot", "caller"), weights=(7, 3))[0],
        refer_pick=rng.random(),
        language=rng.choice(LANGUAGES),
        handoff_result=result,
        failure=rng.choice(USER_FAILURES + QUEUE_FAILURES),
        ring_seconds=rng.uniform(0.5, 6),
        queue_seconds=rng.uniform(2, 25),
        agent_pick=rng.random(),
        human_seconds=rng.uniform(20, 120),
        human_hangup_by=rng.choice(("agent", "caller")),
        has_recording=rng.random() < 0.95,
    )


def arrival_gaps(config: SimulatorConfig) -> Callable[[], float]:
    """Seconds between two arrivals: exponential, so arrivals are a Poisson process."""
    rng = random.Random(f"{config.seed}:arrivals") if config.seed is not None else random.Random()  # noqa: S311
    return lambda: rng.expovariate(config.rate)


def choose_target(targets: tuple[ReferTarget, ...], pick: float) -> ReferTarget:
    """The target at `pick` (0 to 1) along the targets' cumulative weights."""
    total = sum(target.weight for target in targets)
    point = pick * total
    for target in targets:
        point -= target.weight
        if point < 0:
            return target
    return targets[-1]


def menu_digits(prompt: str, pick: float) -> str:
    """The key a caller presses: one of those the prompt mentions ("Press 1 for …"), else 1."""
    offered = DIGIT_RE.findall(prompt or "")
    return offered[int(pick * len(offered))] if offered else "1"


def rfc3339(moment: datetime | None = None) -> str:
    return (moment or datetime.now(UTC)).isoformat(timespec="milliseconds")


def make_event(kind: str, call_id: str, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
    return {"id": str(uuid4()), "type": kind, "call_id": call_id, "occurred_at": rfc3339(at), "data": data}


# --- counting ---------------------------------------------------------------------------


@dataclass
class Stats:
    calls_started: int = 0
    arrival_seconds: float = 0.0  # how long new calls kept arriving
    calls_ended: int = 0
    bot_calls: int = 0
    route_failures: int = 0
    handoffs_requested: int = 0
    handoffs_accepted: int = 0
    handoffs_refused: int = 0  # the refer API said no (4xx)
    handoffs_completed: int = 0
    handoffs_failed: int = 0
    batches: int = 0
    events_accepted: int = 0
    duplicates: int = 0
    requests: int = 0
    retries: int = 0
    gave_up: int = 0  # requests still failing after every retry
    rejected: int = 0  # 4xx answers the simulator did not expect
    end_reasons: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    # Every failed attempt (retried or not) by kind: "HTTP 503 database_unavailable", "ConnectError", …
    failures: Counter[str] = field(default_factory=Counter)
    failure_times: list[float] = field(default_factory=list)  # time.time() of each failed attempt
    recovery_times: list[float] = field(default_factory=list)  # time.time() a failed request got through
    # The first answer of each failing kind: {"status", "retry_after", "body"} (what the switch saw).
    failure_samples: dict[str, dict[str, Any]] = field(default_factory=dict)
    # The ids of the events the server acknowledged (202), when `SimulatorConfig.keep_event_ids`.
    acknowledged_ids: list[str] = field(default_factory=list)
    # Seconds per request on a connection (not counting the wait for a free one), since the
    # last summary line.
    latencies: list[float] = field(default_factory=list)

    @property
    def calls_active(self) -> int:
        return self.calls_started - self.calls_ended

    def line(self, elapsed: float) -> str:
        latencies = sorted(self.latencies)
        self.latencies.clear()
        p95 = f"{latencies[int(0.95 * (len(latencies) - 1))] * 1000:.0f} ms" if latencies else "-"
        return (
            f"[{elapsed:6.0f}s] calls {self.calls_started} started, {self.calls_active} active, "
            f"{self.calls_ended} ended, {self.bot_calls} with a bot · handoffs {self.handoffs_requested} "
            f"({self.handoffs_completed} completed, {self.handoffs_failed} failed, "
            f"{self.handoffs_refused} refused) · events {self.events_accepted} accepted, "
            f"{self.duplicates} duplicates · requests {self.requests}, p95 {p95}, "
            f"{self.retries} retries, {self.gave_up + self.rejected} errors"
        )

    def totals(self, elapsed: float) -> str:
        reasons = ", ".join(f"{reason} {n}" for reason, n in self.end_reasons.most_common()) or "-"
        lines = [
            f"Simulated {self.calls_started} calls arriving over {self.arrival_seconds:.1f} s "
            f"({self.calls_started / self.arrival_seconds if self.arrival_seconds else 0:.2f}/s); "
            f"{self.calls_ended} ended after {elapsed:.1f} s.",
            f"  with a bot: {self.bot_calls}; route failures: {self.route_failures}",
            f"  handoffs: {self.handoffs_requested} requested, {self.handoffs_accepted} accepted, "
            f"{self.handoffs_completed} completed, {self.handoffs_failed} failed, "
            f"{self.handoffs_refused} refused by the refer API",
            f"  end reasons: {reasons}",
            f"  events: {self.events_accepted} accepted, {self.duplicates} duplicates "
            f"in {self.batches} batches",
            f"  requests: {self.requests}, {self.retries} retries, {self.gave_up} gave up, "
            f"{self.rejected} rejected",
        ]
        lines += [f"  error: {message} (x{n})" for message, n in self.errors.most_common(10)]
        return "\n".join(lines)


# --- the simulator ------------------------------------------------------------------------


class _Stopped(Exception):
    """Raised inside a call when the simulation is stopping: the call ends now."""


class Simulator:
    def __init__(self, config: SimulatorConfig, *, write: Callable[[str], None] = print) -> None:
        config.check()
        self.config = config
        self.write = write
        self.stats = Stats()
        self._stopping = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None
        self._backoff = random.Random()  # noqa: S311  (jitter only; never part of a seeded plan)
        # Requests wait here for a connection, in order: httpx's pool scans every waiting request
        # on each change, which at a few hundred calls in progress costs more than the requests.
        self._slots = asyncio.Semaphore(config.connections)

    # Control, from signal handlers or tests (same event loop).

    def stop(self) -> None:
        """No new calls; calls in progress end now (reported as ended by the simulator)."""
        self._stopping.set()

    def abort(self) -> None:
        """Stop without ending calls: every task is cancelled."""
        self._stopping.set()
        for task in list(self._tasks):
            task.cancel()

    @property
    def is_stopping(self) -> bool:
        return self._stopping.is_set()

    async def run(self) -> Stats:
        config = self.config
        limits = httpx.Limits(
            max_connections=config.connections, max_keepalive_connections=config.connections
        )
        # No pool timeout: at a high rate, requests wait for a free connection rather than fail.
        timeout = httpx.Timeout(config.request_timeout, pool=None)
        headers = {"Authorization": f"Bearer {config.api_key}"}
        started = time.monotonic()
        async with httpx.AsyncClient(
            base_url=config.base_url, headers=headers, limits=limits, timeout=timeout
        ) as client:
            self._client = client
            await self._wait_for_server()
            reporter = asyncio.create_task(self._report(started)) if config.report_every > 0 else None
            try:
                await self._arrivals()
                while self._tasks:
                    await asyncio.gather(*list(self._tasks), return_exceptions=True)
            finally:
                if reporter is not None:
                    reporter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await reporter
                self._client = None
        self.write(self.stats.totals(time.monotonic() - started))
        return self.stats

    async def _wait_for_server(self) -> None:
        """Until the server answers at all; then check the key and that both APIs exist.

        The probes are empty bodies: with a good key they are refused as invalid (400) and
        store nothing; 401/403 means the key, 404/405 a wrong URL or an older server.
        """
        deadline = time.monotonic() + self.config.startup_timeout
        while True:
            try:
                route = await self._http().post(ROUTE_PATH, json={})
                break
            except httpx.TransportError as exc:
                if self.is_stopping:
                    return
                if time.monotonic() > deadline:
                    raise SimulatorError(
                        f"No answer from {self.config.base_url} ({type(exc).__name__}); "
                        "is the server running?"
                    ) from None
                await asyncio.sleep(0.5)
        self._check_probe(ROUTE_PATH, route)
        self._check_probe(EVENTS_PATH, await self._http().post(EVENTS_PATH, json={"events": []}))

    def _check_probe(self, path: str, response: httpx.Response) -> None:
        if response.status_code in (401, 403):
            raise SimulatorError(
                f"The server refused the API key (HTTP {response.status_code}, {_error_code(response)}): "
                "it needs scope telephony, on the database this server uses."
            )
        if response.status_code in (404, 405):
            raise SimulatorError(
                f"{self.config.base_url}{path} does not exist (HTTP {response.status_code})."
            )

    async def _report(self, started: float) -> None:
        while True:
            await asyncio.sleep(self.config.report_every)
            self.write(self.stats.line(time.monotonic() - started))

    async def _arrivals(self) -> None:
        gap = arrival_gaps(self.config)
        started = time.monotonic()
        due = started
        index = 0
        try:
            while not self.is_stopping:
                due += gap()
                if self.config.duration and due - started >= self.config.duration:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), max(0.0, due - time.monotonic()))
                if self.is_stopping:
                    return
                task = asyncio.create_task(self._call(plan_call(self.config, index)))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
                index += 1
        finally:
            elapsed = time.monotonic() - started
            self.stats.arrival_seconds = (
                elapsed if self.is_stopping or not self.config.duration else self.config.duration
            )

    # --- one call ---------------------------------------------------------------------------

    async def _call(self, plan: CallPlan) -> None:
        call = _Call(self, plan)
        self.stats.calls_started += 1
        try:
            await call.play()
        except _Stopped:
            await call.end("simulator_stopped", "system")
        except Exception as exc:  # a bug or a malformed answer must not end the whole run
            self.note_error(f"call crashed: {type(exc).__name__}: {exc}")
        finally:
            self.stats.calls_ended += 1

    async def pause(self, seconds: float) -> None:
        """A scaled pause in a call; raises _Stopped as soon as the simulation stops."""
        if self.is_stopping:
            raise _Stopped
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds * self.config.time_scale)
        if self.is_stopping:
            raise _Stopped

    # --- HTTP -------------------------------------------------------------------------------

    def _http(self) -> httpx.AsyncClient:
        assert self._client is not None, "only while run() is running"
        return self._client

    async def post(self, path: str, body: dict[str, Any]) -> httpx.Response | None:
        """POST with retries on transient failures (same body, so the same event ids).

        Returns the response (2xx-4xx but 429), or None when every attempt failed.
        """
        failure = ""
        for attempt in range(1, self.config.max_attempts + 1):
            self.stats.requests += 1
            async with self._slots:
                began = time.monotonic()
                try:
                    response = await self._http().post(path, json=body)
                except httpx.TransportError as exc:
                    failure = f"{path}: {type(exc).__name__}"
                    response = None
                else:
                    self.stats.latencies.append(time.monotonic() - began)
            wait = min(0.1 * 2**attempt, 5.0) * (0.5 + self._backoff.random())
            if response is not None:
                if response.status_code < 500 and response.status_code != 429:
                    if attempt > 1:
                        self.stats.recovery_times.append(time.time())
                    return response
                kind = f"HTTP {response.status_code} {_error_code(response)}"
                if kind not in self.stats.failure_samples:
                    self.stats.failure_samples[kind] = {
                        "status": response.status_code,
                        "retry_after": response.headers.get("Retry-After"),
                        "body": response.text[:1000],
                    }
                failure = f"{path}: HTTP {response.status_code}"
                retry_after = _retry_after(response)
                if retry_after is not None:
                    # The server says when (503 database_unavailable, 429); a little jitter spreads
                    # the switch's retries so they do not all arrive in the same instant.
                    wait = min(retry_after, self.config.max_retry_after) * (1 + 0.2 * self._backoff.random())
            else:
                kind = failure.split(": ", 1)[1]
            self.stats.failures[kind] += 1
            self.stats.failure_times.append(time.time())
            if attempt == self.config.max_attempts:
                break
            self.stats.retries += 1
            await asyncio.sleep(wait)
        self.stats.gave_up += 1
        self.note_error(f"{failure} (gave up after {self.config.max_attempts} attempts)")
        return None

    async def send(self, events: list[dict[str, Any]]) -> None:
        response = await self.post(EVENTS_PATH, {"events": events})
        if response is None:
            return
        if response.status_code == 202:
            body = response.json()
            if self.config.keep_event_ids:
                self.stats.acknowledged_ids.extend(event["id"] for event in events)
            self.stats.batches += 1
            self.stats.events_accepted += int(body.get("accepted", 0))
            self.stats.duplicates += int(body.get("duplicates", 0))
        else:
            self.stats.rejected += 1
            self.note_error(
                f"events: HTTP {response.status_code} {_error_code(response)} {_error_detail(response)}"
            )

    def note_error(self, message: str) -> None:
        message = message.strip()
        if message not in self.stats.errors:
            self.write(f"error: {message}")  # the first of a kind at once; then only counted
        self.stats.errors[message] += 1


def _error_code(response: httpx.Response) -> str:
    try:
        return str(response.json()["error"]["code"])
    except (ValueError, KeyError, TypeError):
        return "-"


def _retry_after(response: httpx.Response) -> float | None:
    """Retry-After in seconds (the delay form; an HTTP date is not what our servers send)."""
    try:
        seconds = float(response.headers["Retry-After"])
    except (KeyError, ValueError):
        return None
    return seconds if seconds >= 0 and math.isfinite(seconds) else None


def _error_detail(response: httpx.Response) -> str:
    try:
        errors = response.json()["error"].get("errors") or response.json()["error"].get("fields")
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""
    return str(errors)[:300] if errors else ""


class _Call:
    """One call's script: route (menus), the bot, perhaps a handoff, the end, the recording."""

    def __init__(self, sim: Simulator, plan: CallPlan) -> None:
        self.sim = sim
        self.plan = plan
        self.call_id = f"sim-{uuid4().hex}"
        self.has_media = False  # reached a bot or a person: a recording follows the end
        self.has_ended = False

    def event(self, kind: str, data: dict[str, Any], at: datetime | None = None) -> dict[str, Any]:
        return make_event(kind, self.call_id, data, at)

    async def play(self) -> None:
        sim, plan = self.sim, self.plan
        answer = await self.route(None)
        await sim.send(
            [self.event("call.started", {"direction": "inbound", "from": plan.caller, "to": plan.number})]
        )
        if answer is None:
            sim.stats.route_failures += 1
            return await self.end("route_failed", "system")
        for _ in range(MAX_MENUS):
            gather: dict[str, Any] | None = None
            for instruction in answer.get("instructions") or []:
                verb = instruction.get("verb")
                if verb == "play":
                    await sim.pause(2)
                elif verb == "gather":
                    gather = instruction
                elif verb == "dial":
                    return await self.connect(instruction, answer.get("destination") or {})
                elif verb == "voicemail":
                    await sim.pause(15)
                    return await self.end("voicemail", "caller")
                elif verb == "hangup":
                    return await self.end(str(instruction.get("reason") or "flow_hangup"), "system")
            if gather is None:
                return await self.end("flow_ended", "system")
            await sim.pause(3)
            answer = await self.route(menu_digits(str(gather.get("prompt", "")), plan.menu_pick))
            if answer is None:
                sim.stats.route_failures += 1
                return await self.end("route_failed", "system")
        return await self.end("caller_hangup", "caller")  # still in menus: the caller gives up

    async def route(self, digits: str | None) -> dict[str, Any] | None:
        body: dict[str, Any] = {"call_id": self.call_id, "to": self.plan.number, "from": self.plan.caller}
        if digits is not None:
            body["digits"] = digits
        response = await self.sim.post(ROUTE_PATH, body)
        if response is None:
            return None
        if response.status_code != 200:
            self.sim.stats.rejected += 1
            self.sim.note_error(f"route: HTTP {response.status_code} {_error_code(response)}")
            return None
        return response.json()

    async def connect(self, dial: dict[str, Any], destination: dict[str, Any]) -> None:
        headers = dial.get("headers") or {}
        kind = headers.get("X-Voiso-Target") or destination.get("type")
        await self.sim.pause(1)  # ringing
        if kind == "virtual_agent":
            bot = headers.get("X-Voiso-Target-Id") or destination.get("extension") or ""
            return await self.with_bot(bot, str(dial.get("sip_uri") or ""))
        # Straight to people (a queue, a user, an external number): no bot on this call.
        self.has_media = True
        if kind in ("queue", "user"):
            agent = (
                destination.get("extension")
                if kind == "user"
                else self.pick_agent(self.queue_of(destination))
            )
            if kind == "queue":
                # The caller is in the queue the dial named: reported with the X-Voiso-Target-Id the
                # dial carried (the queue's id), else the destination's extension.
                queue = headers.get("X-Voiso-Target-Id") or destination.get("extension") or ""
                await self.sim.send([self.event("queue.entered", {"queue": queue})])
                await self.sim.pause(self.plan.queue_seconds)
            if agent:
                await self.sim.send([self.event("agent.connected", {"extension": agent})])
        await self.sim.pause(self.plan.human_seconds)
        await self.end("completed", self.plan.human_hangup_by)

    async def with_bot(self, bot: str, bot_uri: str) -> None:
        sim, plan = self.sim, self.plan
        sim.stats.bot_calls += 1
        self.has_media = True
        await sim.send([self.event("bot.connected", {"virtual_agent": bot})])
        await sim.pause(plan.bot_seconds)
        if plan.outcome == "abandoned":
            return await self.end("caller_hangup", "caller")
        if plan.outcome == "contained":
            return await self.end("completed", plan.contained_hangup_by)
        await self.hand_off(bot, bot_uri)

    async def hand_off(self, bot: str, bot_uri: str) -> None:
        sim, plan = self.sim, self.plan
        targets = sim.config.bot_targets.get(bot) or sim.config.refer_targets
        if not targets:  # this bot has nowhere to hand calls: it keeps them
            return await self.end("completed", plan.contained_hangup_by)
        target = choose_target(targets, plan.refer_pick)
        context = {"X-Reason": target.reason, "X-Language": plan.language}
        query = "&".join(f"{name}={quote(value, safe='')}" for name, value in context.items())
        refer_to = f"<sip:{target.extension}@{sim.config.sip_domain}?{query}>"
        referred_by = f"<{bot_uri}>" if bot_uri else ""
        requested = self.event(
            "handoff.requested",
            {"virtual_agent": bot, "refer_to": refer_to, "referred_by": referred_by, "headers": context},
        )
        sim.stats.handoffs_requested += 1
        body = {"call_id": self.call_id, "refer_to": refer_to, "headers": context}
        if referred_by:
            body["referred_by"] = referred_by
        response = await sim.post(REFER_PATH, body)
        if response is None or response.status_code != 200:
            # The switch answers the REFER with the refer API's SIP status (503 when it got no answer).
            code, status = ("refer_check_failed", 503) if response is None else _refusal(response)
            sim.stats.handoffs_refused += 1
            sim.stats.handoffs_failed += 1
            await sim.send([requested, self.event("handoff.failed", {"reason": code, "sip_status": status})])
            await sim.pause(5)  # the bot apologises and ends the call
            return await self.end("completed", "bot")
        sim.stats.handoffs_accepted += 1
        destination = response.json().get("destination") or {}
        await sim.send([requested, self.event("handoff.accepted", {"sip_status": 202})])
        await sim.pause(plan.ring_seconds)
        kind = destination.get("type")
        if plan.handoff_result == "failed" and kind in ("queue", "user"):
            reason, status = plan.failure
            sim.stats.handoffs_failed += 1
            await sim.send([self.event("handoff.failed", {"reason": reason, "sip_status": status})])
            await sim.pause(5)  # the NOTIFY came back with an error: the bot takes the caller back
            return await self.end("completed", "bot")
        if kind == "queue":
            # The queue answers the transferred call (final NOTIFY 200); an agent picks up later.
            sim.stats.handoffs_completed += 1
            await sim.send([self.event("handoff.completed", {})])
            await sim.pause(plan.queue_seconds)
            agent = self.pick_agent(target)
            if plan.handoff_result == "abandoned" or agent is None:
                return await self.end("abandoned_in_queue", "caller")
            await sim.send([self.event("agent.connected", {"extension": agent})])
        else:
            sim.stats.handoffs_completed += 1
            answered = [self.event("handoff.completed", {"answered_by": destination.get("extension", "")})]
            if kind == "user" and destination.get("extension"):
                answered.append(self.event("agent.connected", {"extension": destination["extension"]}))
            await sim.send(answered)
        await sim.pause(plan.human_seconds)
        await self.end("completed", plan.human_hangup_by)

    def queue_of(self, destination: Mapping[str, Any]) -> ReferTarget | None:
        """The configured target for a queue a dial reached (its agents answer it), if any."""
        extension = destination.get("extension")
        return next((t for t in self.sim.config.refer_targets if t.extension == extension), None)

    def pick_agent(self, target: ReferTarget | None) -> str | None:
        agents = target.agents if target is not None else ()
        if not agents:
            agents = tuple(sorted({a for t in self.sim.config.refer_targets for a in t.agents}))
        return agents[int(self.plan.agent_pick * len(agents))] if agents else None

    async def end(self, reason: str, hangup_by: str) -> None:
        if self.has_ended:
            return
        self.has_ended = True
        sim = self.sim
        sim.stats.end_reasons[reason] += 1
        await sim.send([self.event("call.ended", {"end_reason": reason, "hangup_by": hangup_by})])
        if self.has_media and self.plan.has_recording:
            if not sim.is_stopping:
                with contextlib.suppress(_Stopped):
                    await sim.pause(1)  # the media server uploads the recording after the hangup
            url = f"https://recordings.example.com/{sim.config.sip_domain}/{self.call_id}.mp3"
            await sim.send([self.event("recording.ready", {"url": url})])


def _refusal(response: httpx.Response) -> tuple[str, int]:
    """The refer API's refusal as (error code, SIP status for the REFER)."""
    try:
        error = response.json()["error"]
        return str(error.get("code") or "refused"), int(error.get("sip_status") or response.status_code)
    except (ValueError, KeyError, TypeError):
        return "refused", response.status_code
