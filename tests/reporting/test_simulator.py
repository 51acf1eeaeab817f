"""The traffic simulator: its plans, its calls through the real route and refer APIs, its command.

Calls run against pytest-django's live server (real HTTP) through `Switchboard`, a real local
HTTP server in between that forwards to it and can keep the event batches itself (checking their
shape against the telephony contract) or lose answers to force the simulator's retries.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from django.core.management import CommandError, call_command

from reporting.simulator import (
    EVENTS_PATH,
    REFER_PATH,
    ROUTE_PATH,
    ReferTarget,
    Simulator,
    SimulatorConfig,
    SimulatorError,
    Stats,
    arrival_gaps,
    choose_target,
    make_event,
    menu_digits,
    plan_call,
)
from routing.models import Queue
from tests.factories import make_api_key, make_center
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ApiKey, ApiKeyScope, AuditEvent, ContactCenter

DEMO_NUMBER = "+442079460000"
EVENT_TYPES = {
    "call.started",
    "bot.connected",
    "handoff.requested",
    "handoff.accepted",
    "handoff.completed",
    "handoff.failed",
    "queue.entered",
    "agent.connected",
    "call.ended",
    "recording.ready",
}


def config(**overrides: Any) -> SimulatorConfig:
    values: dict[str, Any] = {
        "base_url": "http://127.0.0.1:9",
        "api_key": "vbk_test",
        "sip_domain": "acme.voiso.com",
        "numbers": (DEMO_NUMBER,),
        "refer_targets": (ReferTarget("4323", "sales", ("1001", "1002"), 4.0), ReferTarget("1003", "x")),
        "seed": 7,
        "report_every": 0,
    }
    return SimulatorConfig(**{**values, **overrides})


# --- plans: decided up front, repeatable with a seed --------------------------------------


def test_a_seed_gives_the_same_calls_and_arrivals() -> None:
    first = [plan_call(config(), index) for index in range(200)]
    assert first == [plan_call(config(), index) for index in range(200)]
    assert first != [plan_call(config(seed=8), index) for index in range(200)]
    gaps, again = arrival_gaps(config()), arrival_gaps(config())
    assert [gaps() for _ in range(50)] == [again() for _ in range(50)]
    # Without a seed, every run differs.
    assert [plan_call(config(seed=None), 0) for _ in range(5)] != [plan_call(config(seed=None), 0)] * 5


@pytest.mark.parametrize("share", [0.0, 0.3, 1.0])
def test_the_handoff_share_decides_the_bot_outcomes(share: float) -> None:
    plans = [plan_call(config(handoff_share=share), index) for index in range(2000)]
    handoffs = sum(plan.outcome == "handoff" for plan in plans) / len(plans)
    assert abs(handoffs - share) < 0.04
    others = {plan.outcome for plan in plans} - {"handoff"}
    assert others == (set() if share == 1.0 else {"contained", "abandoned"})
    # Queues weigh four times a person: about 80 % of handoffs go to the queue.
    targets = config().refer_targets
    to_queue = sum(choose_target(targets, plan.refer_pick).extension == "4323" for plan in plans) / len(plans)
    assert 0.76 < to_queue < 0.84


def test_arrivals_are_poisson_at_the_rate() -> None:
    gap = arrival_gaps(config(rate=25.0))
    gaps = [gap() for _ in range(40_000)]
    mean = sum(gaps) / len(gaps)
    assert abs(mean - 1 / 25) < 0.002
    # Exponential gaps: about 1/e of them are longer than the mean.
    longer = sum(g > 1 / 25 for g in gaps) / len(gaps)
    assert abs(longer - 0.368) < 0.01


def test_callers_press_a_key_the_menu_offers() -> None:
    prompt = "Press 1 for sales, 2 for support, 3 for billing."
    assert {menu_digits(prompt, pick / 10) for pick in range(10)} == {"1", "2", "3"}
    assert menu_digits("Welcome, please hold.", 0.5) == "1"


def test_events_carry_a_uuid_and_an_rfc3339_time_with_offset() -> None:
    event = make_event("call.ended", "c-1", {"end_reason": "completed"})
    assert uuid.UUID(event["id"]) and event["call_id"] == "c-1" and event["type"] == "call.ended"
    assert datetime.fromisoformat(event["occurred_at"]).utcoffset() is not None
    assert event["occurred_at"].endswith("+00:00")
    assert make_event("call.ended", "c-1", {})["id"] != event["id"]


@pytest.mark.parametrize(
    "overrides",
    [
        {"numbers": ()},
        {"rate": 0},
        {"rate": float("nan")},
        {"duration": -1},
        {"handoff_share": 1.5},
        {"refer_targets": (), "handoff_share": 0.2},
        {"time_scale": -1},
        {"connections": 0},
    ],
)
def test_impossible_settings_are_refused(overrides: dict[str, Any]) -> None:
    with pytest.raises(SimulatorError):
        Simulator(config(**overrides))


def test_no_handoffs_need_no_targets() -> None:
    Simulator(config(refer_targets=(), handoff_share=0.0))


# --- a real HTTP server between the simulator and the live server -------------------------


class Switchboard(ThreadingHTTPServer):
    """Forwards to `upstream`; keeps event batches itself (`keep_events`) or forwards them and
    loses the answer to the first attempt of every batch (`lose_first_answers`): a 502, or
    ("close") the connection closed without an answer."""

    daemon_threads = True

    def __init__(
        self, upstream: str, *, keep_events: bool, lose_first_answers: str = "", retry_after: str = ""
    ) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.upstream = upstream
        self.keep_events = keep_events
        self.lose_first_answers = lose_first_answers
        # With keep_events: the first attempt of every batch answered 503 with this Retry-After.
        self.retry_after = retry_after
        self.attempts: dict[str, list[float]] = defaultdict(list)  # first event id → monotonic times
        self.lock = threading.Lock()
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.events: dict[str, dict[str, Any]] = {}  # by event id, first copy
        self.batches: list[list[dict[str, Any]]] = []
        self.lost: set[str] = set()  # first event id of each batch whose answer was lost
        self.problems: list[str] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def by_call(self) -> dict[str, list[dict[str, Any]]]:
        calls: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for batch in self.batches:
            for event in batch:
                calls[event["call_id"]].append(event)
        return calls

    def keep(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        events = body.get("events")
        if not isinstance(events, list) or not 1 <= len(events) <= 1000:
            return 400, {"error": {"code": "invalid", "message": "events: 1 to 1000"}}
        accepted = 0
        with self.lock:
            for event in events:
                self.problems += _shape_problems(event)
                if event.get("id") not in self.events:
                    self.events[event.get("id")] = event
                    accepted += 1
            self.batches.append(events)
        return 202, {"accepted": accepted, "duplicates": len(events) - accepted}


def _shape_problems(event: Any) -> list[str]:
    problems = []
    if set(event) != {"id", "type", "call_id", "occurred_at", "data"}:
        problems.append(f"keys {sorted(event)}")
    if event.get("type") not in EVENT_TYPES:
        problems.append(f"type {event.get('type')}")
    try:
        uuid.UUID(event["id"])
        if datetime.fromisoformat(event["occurred_at"]).utcoffset() is None:
            problems.append("occurred_at without offset")
    except (KeyError, ValueError, TypeError):
        problems.append(f"id or occurred_at {event}")
    if not isinstance(event.get("data"), dict):
        problems.append("data is not an object")
    return problems


class _Handler(BaseHTTPRequestHandler):
    server: Switchboard

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.loads(raw or b"{}")
        with self.server.lock:
            self.server.requests.append((self.path, body))
        if self.path == EVENTS_PATH and self.server.keep_events:
            if self.server.retry_after and body.get("events"):
                with self.server.lock:
                    attempts = self.server.attempts[body["events"][0]["id"]]
                    attempts.append(time.monotonic())
                if len(attempts) == 1:
                    return self.reply(
                        503,
                        b'{"error": {"code": "database_unavailable", "message": "restarting"}}',
                        {"Retry-After": self.server.retry_after},
                    )
            status, answer = self.server.keep(body)
            return self.reply(status, json.dumps(answer).encode())
        upstream = httpx.post(
            self.server.upstream + self.path,
            content=raw,
            headers={"Authorization": self.headers["Authorization"], "Content-Type": "application/json"},
            timeout=30,
        )
        if self.path == EVENTS_PATH and self.server.lose_first_answers and body.get("events"):
            first = body["events"][0]["id"]
            with self.server.lock:
                is_first_attempt = first not in self.server.lost
                self.server.lost.add(first)
            if is_first_attempt and self.server.lose_first_answers == "close":
                self.close_connection = True  # stored upstream; the simulator gets no answer at all
                return None
            if is_first_attempt:  # stored upstream, but the simulator hears a failure
                return self.reply(502, b'{"error": {"code": "bad_gateway", "message": "lost"}}')
        self.reply(upstream.status_code, upstream.content)

    def reply(self, status: int, content: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        self.wfile.write(content)


@pytest.fixture
def demo(transactional_db) -> ContactCenter:
    call_command("seed_demo", stdout=io.StringIO())
    return ContactCenter.objects.get(slug="acme")


def serve(live_server: Any, **options: Any) -> Iterator[Switchboard]:
    board = Switchboard(live_server.url, **options)
    thread = threading.Thread(target=board.serve_forever, daemon=True)
    thread.start()
    try:
        yield board
    finally:
        board.shutdown()
        board.server_close()


@pytest.fixture
def switchboard(live_server: Any) -> Iterator[Switchboard]:
    yield from serve(live_server, keep_events=True)


def simulate(url: str, key: str, **overrides: Any) -> Stats:
    values: dict[str, Any] = {
        "base_url": url,
        "api_key": key,
        "refer_targets": (
            ReferTarget("4323", "sales", ("1001", "1002"), 4.0),
            ReferTarget("4500", "billing", ("1001",), 4.0),
            ReferTarget("1003", "human_requested", ("1003",), 1.0),
        ),
        "rate": 20.0,
        "duration": 1.5,
        "time_scale": 0.005,
        # One connection: on SQLite the live server's threads share one in-memory connection.
        "connections": 1,
        "startup_timeout": 5,
        "max_attempts": 3,
    }
    lines: list[str] = []
    stats = asyncio.run(Simulator(config(**{**values, **overrides}), write=lines.append).run())
    assert lines and lines[-1].startswith("Simulated")
    return stats


def telephony_key(center: ContactCenter) -> str:
    return make_api_key(center, ApiKeyScope.TELEPHONY)[1]


def test_calls_run_the_demo_flow_and_every_bot_hands_off(
    demo: ContactCenter, switchboard: Switchboard
) -> None:
    stats = simulate(switchboard.url, telephony_key(demo), handoff_share=1.0, seed=11)

    assert switchboard.problems == []
    calls = switchboard.by_call()
    assert stats.calls_started == stats.calls_ended == len(calls) >= 10
    assert stats.gave_up == stats.rejected == 0 and not stats.errors
    bots = {str(pk) for pk in VirtualAgent.objects.for_center(demo).values_list("pk", flat=True)}
    billing = str(Queue.objects.for_center(demo).get(name="Billing").pk)
    routes = [body for path, body in switchboard.requests if path == ROUTE_PATH and body.get("call_id")]
    refers = [body for path, body in switchboard.requests if path == REFER_PATH]
    # Every call starts at the menu and answers it with a key the prompt offers.
    assert {body["digits"] for body in routes if "digits" in body} <= {"1", "2", "3"}
    assert len([body for body in routes if "digits" not in body]) == len(calls)
    with_bot = 0
    for call_id, events in calls.items():
        kinds = [event["type"] for event in events]
        assert kinds[0] == "call.started" and kinds.count("call.ended") == 1, kinds
        assert kinds[-1] in ("call.ended", "recording.ready"), kinds
        started = events[0]["data"]
        assert started == {"direction": "inbound", "from": started["from"], "to": DEMO_NUMBER}
        assert [e["occurred_at"] for e in events] == sorted(e["occurred_at"] for e in events)
        if "bot.connected" not in kinds:
            assert "handoff.requested" not in kinds  # the billing queue: people only
            # The switch reports the queue the dial named, by the X-Voiso-Target-Id it carried.
            assert kinds[:3] == ["call.started", "queue.entered", "agent.connected"], kinds
            assert events[1]["data"] == {"queue": billing}
            assert events[2]["data"] == {"extension": "1001"}  # Billing's agent in these targets
            continue
        with_bot += 1
        assert events[kinds.index("bot.connected")]["data"]["virtual_agent"] in bots
        # handoff share 1.0: the bot hands every call off, once, and its fate follows.
        assert kinds.count("handoff.requested") == 1, kinds
        requested = events[kinds.index("handoff.requested")]["data"]
        assert requested["virtual_agent"] in bots
        assert (
            requested["refer_to"].startswith("<sip:") and "@acme.voiso.com?X-Reason=" in requested["refer_to"]
        )
        assert requested["headers"]["X-Reason"] in ("sales", "billing", "human_requested")
        assert (
            requested["referred_by"].startswith("<sip:") and "@bots.example.com>" in requested["referred_by"]
        )
        assert kinds[kinds.index("handoff.requested") + 1] == "handoff.accepted"
        assert ("handoff.completed" in kinds) != ("handoff.failed" in kinds)
        assert any(r["call_id"] == call_id and r["refer_to"] == requested["refer_to"] for r in refers)
    assert with_bot == stats.bot_calls == stats.handoffs_requested == len(refers) > 0
    assert stats.handoffs_accepted == with_bot  # every demo target exists
    assert stats.handoffs_completed + stats.handoffs_failed == with_bot
    assert stats.events_accepted == len(switchboard.events) and stats.duplicates == 0


def test_no_handoffs_at_share_zero(demo: ContactCenter, switchboard: Switchboard) -> None:
    stats = simulate(switchboard.url, telephony_key(demo), handoff_share=0.0, seed=12)

    kinds = [event["type"] for events in switchboard.by_call().values() for event in events]
    assert stats.bot_calls > 0 and kinds.count("bot.connected") == stats.bot_calls
    assert not [kind for kind in kinds if kind.startswith("handoff.")]
    assert not [path for path, _ in switchboard.requests if path == REFER_PATH]
    assert set(stats.end_reasons) <= {"completed", "caller_hangup"}


def test_a_refused_refer_is_reported_as_a_failed_handoff(
    demo: ContactCenter, switchboard: Switchboard
) -> None:
    stats = simulate(
        switchboard.url,
        telephony_key(demo),
        handoff_share=1.0,
        refer_targets=(ReferTarget("5999", "sales"),),  # no such extension at acme
        seed=13,
    )

    assert stats.handoffs_requested == stats.handoffs_refused == stats.handoffs_failed > 0
    for events in switchboard.by_call().values():
        kinds = [event["type"] for event in events]
        if "handoff.requested" in kinds:
            failed = events[kinds.index("handoff.failed")]["data"]
            assert failed == {"reason": "unknown_extension", "sip_status": 404}
            assert "handoff.accepted" not in kinds


def test_a_503_is_retried_after_its_retry_after_with_the_same_event_ids(
    demo: ContactCenter, live_server: Any
) -> None:
    board_iter = serve(live_server, keep_events=True, retry_after="0.3")
    board: Switchboard = next(board_iter)
    try:
        stats = simulate(board.url, telephony_key(demo), handoff_share=0, duration=0.5, keep_event_ids=True)
    finally:
        next(board_iter, None)

    assert board.attempts and all(len(times) == 2 for times in board.attempts.values())
    assert min(second - first for first, second in board.attempts.values()) >= 0.3
    assert stats.failures == {"HTTP 503 database_unavailable": len(board.attempts)}
    assert stats.gave_up == 0 and len(stats.failure_times) == len(board.attempts)
    # What the simulator counts as acknowledged is exactly what the switchboard stored.
    assert sorted(stats.acknowledged_ids) == sorted(board.events)


def test_another_centers_key_reaches_nothing_of_acme(demo: ContactCenter, switchboard: Switchboard) -> None:
    globex = make_center("globex", name="Globex", admin_email="admin@globex.example")
    stats = simulate(switchboard.url, telephony_key(globex), handoff_share=1.0, duration=0.5, seed=14)

    assert stats.calls_started > 0 and stats.route_failures == stats.calls_started
    assert stats.bot_calls == stats.handoffs_requested == 0
    assert stats.errors == {"route: HTTP 404 unknown_number": stats.calls_started}
    assert set(stats.end_reasons) == {"route_failed"}


def test_a_wrong_key_stops_the_run_before_any_call(demo: ContactCenter, switchboard: Switchboard) -> None:
    with pytest.raises(SimulatorError, match="refused the API key"):
        simulate(switchboard.url, "vbk_00000000_nope")
    assert [path for path, _ in switchboard.requests] == [ROUTE_PATH]


def test_stop_ends_the_calls_in_progress(demo: ContactCenter, switchboard: Switchboard) -> None:
    key = telephony_key(demo)

    async def run() -> Stats:
        simulator = Simulator(
            config(
                base_url=switchboard.url,
                api_key=key,
                rate=20.0,
                duration=0,  # until stopped
                time_scale=1.0,  # calls last a minute: all still in progress at the stop
                connections=1,
            ),
            write=lambda line: None,
        )
        asyncio.get_running_loop().call_later(1.0, simulator.stop)
        return await simulator.run()

    stats = asyncio.run(run())

    assert stats.calls_started > 5 and stats.calls_ended == stats.calls_started
    assert stats.end_reasons["simulator_stopped"] == stats.calls_started
    for events in switchboard.by_call().values():
        ended = [event["data"] for event in events if event["type"] == "call.ended"]
        assert ended == [{"end_reason": "simulator_stopped", "hangup_by": "system"}]


# --- the command ----------------------------------------------------------------------------


def test_the_command_creates_a_key_for_the_run_and_revokes_it(demo: ContactCenter) -> None:
    with pytest.raises(CommandError, match="No answer from"):
        call_command("simulate_calls", "--url", "http://127.0.0.1:9", "--wait", "0.3", stdout=io.StringIO())

    key = ApiKey.objects.get(contact_center=demo, name="Traffic simulator")
    assert key.scope == ApiKeyScope.TELEPHONY and key.revoked_at is not None
    actions = list(AuditEvent.objects.filter(target_id=str(key.pk)).values_list("action", flat=True))
    assert sorted(actions) == ["api_key.created", "api_key.revoked"]


def test_the_command_needs_a_key_for_a_center_it_cannot_see(db) -> None:
    with pytest.raises(CommandError, match="--api-key"):
        call_command("simulate_calls", "--center", "nowhere", "--duration", "1")
    assert not ApiKey.objects.exists()


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--number", "not a number"], "--number"),
        (["--refer-to", "sip:4323"], "--refer-to"),
        (["--rate", "0"], "rate"),
        (["--center", "not a slug!", "--api-key", "k", "--number", DEMO_NUMBER], "slug"),
    ],
)
def test_the_command_refuses_bad_arguments(demo: ContactCenter, argv: list[str], message: str) -> None:
    with pytest.raises(CommandError, match=message):
        call_command("simulate_calls", *argv, "--url", "http://127.0.0.1:9", "--wait", "0")
    # A refused run leaves no usable key behind.
    assert not ApiKey.objects.filter(contact_center=demo, revoked_at__isnull=True).exists()


def test_the_command_finds_the_demo_numbers_and_targets(demo: ContactCenter, live_server: Any) -> None:
    board_iter = serve(live_server, keep_events=True)
    board = next(board_iter)
    try:
        out = _Output()
        call_command(
            "simulate_calls",
            *("--url", board.url, "--rate", "10", "--duration", "1", "--handoff-share", "1"),
            *("--time-scale", "0.005", "--connections", "1", "--seed", "3", "--report-every", "0.5"),
            stdout=out,
        )
    finally:
        next(board_iter, None)
    assert f"Simulating calls to {DEMO_NUMBER} at 10/s" in out.text
    assert "Simulated " in out.text and " calls arriving over 1.0 s" in out.text
    refers = [body for path, body in board.requests if path == REFER_PATH]
    assert refers
    # Each demo bot hands off to the targets of its own transfer tool (seed_demo), at acme's domain.
    allowed = {
        "<sip:sales-bot@bots.example.com>": {"4323", "4500"},
        "<sip:support-bot@bots.example.com>": {"4400", "4500"},
    }
    for body in refers:
        extension, domain = body["refer_to"].removeprefix("<sip:").split("?")[0].split("@")
        assert domain == "acme.voiso.com" and extension in allowed[body["referred_by"]], body
    assert ApiKey.objects.get(contact_center=demo, name="Traffic simulator").revoked_at is not None


@pytest.mark.parametrize(
    ("signum", "sigint_ignored"),
    [(signal.SIGTERM, False), (signal.SIGINT, False), (signal.SIGTERM, True)],
    ids=["SIGTERM", "SIGINT", "SIGTERM, SIGINT ignored"],
)
def test_a_signal_ends_the_calls_and_the_run_cleanly(
    demo: ContactCenter, switchboard: Switchboard, signum: signal.Signals, sigint_ignored: bool
) -> None:
    # SIGINT as a terminal leaves it (handled), or ignored as a shell's background job has it (the
    # way `make run` starts the command, and the way a suite run with `&` or nohup starts pytest:
    # the SIGINT case failed there until the test set the handler itself). Ignored, it stays
    # ignored through the run, and SIGTERM still stops it.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN if sigint_ignored else signal.default_int_handler)
    try:
        _signal_ends_the_run(demo, switchboard, signum, sigint_ignored=sigint_ignored)
    finally:
        signal.signal(signal.SIGINT, previous)


def _signal_ends_the_run(
    demo: ContactCenter, switchboard: Switchboard, signum: signal.Signals, *, sigint_ignored: bool
) -> None:
    out = _Output()
    sigint_during_run: list[Any] = []
    # The command runs until interrupted. This process sends itself the signal once calls are under
    # way: then the command's handler is surely installed (a fixed delay raced it on a busy machine,
    # and a signal caught before it left the run going for ever). A second signal, much later, aborts
    # a run the first one failed to stop, so the test fails instead of hanging.
    done = threading.Event()

    def interrupt() -> None:
        deadline = time.monotonic() + 30
        # len() of the list the server threads append to (by_call() iterates it: not from here).
        while len(switchboard.batches) < 6 and time.monotonic() < deadline and not done.is_set():
            time.sleep(0.05)
        sigint_during_run.append(signal.getsignal(signal.SIGINT))
        os.kill(os.getpid(), signum)
        if not done.wait(15):
            os.kill(os.getpid(), signum)

    sender = threading.Thread(target=interrupt, daemon=True)
    sender.start()
    try:
        call_command(
            "simulate_calls",
            # --duration is a backstop: a run the signals never reached ends, and the test fails.
            *("--url", switchboard.url, "--rate", "20", "--duration", "20", "--connections", "1"),
            *("--time-scale", "0.1"),
            stdout=out,
        )
    finally:
        done.set()
        sender.join(5)

    assert "Aborting." not in out.text, "the first signal did not stop the run"
    assert "Stopping: ending the calls in progress" in out.text
    calls = switchboard.by_call()
    assert len(calls) > 5
    for events in calls.values():
        ended = [event["data"] for event in events if event["type"] == "call.ended"]
        assert ended == [{"end_reason": "simulator_stopped", "hangup_by": "system"}]
    assert ApiKey.objects.get(contact_center=demo, name="Traffic simulator").revoked_at is not None
    assert (sigint_during_run[0] is signal.SIG_IGN) is sigint_ignored


class _Output:
    def __init__(self) -> None:
        self.text = ""

    def write(self, text: str) -> None:
        self.text += text + "\n"

    def flush(self) -> None:
        pass
