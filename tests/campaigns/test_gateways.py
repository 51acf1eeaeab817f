"""The origination gateways: the http one against a real local server, the simulator's timing."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from campaigns.gateways import Origination, OriginationError, origination_headers
from campaigns.gateways.http import HttpGateway
from campaigns.gateways.simulator import SimulatorGateway, story

SECRET = "switch-shared-secret"
HANDOFF = ["handoff.requested", "handoff.accepted", "handoff.completed"]


def origination(to: str = "+12125550102", **fields) -> Origination:
    values = {
        "call_id": "dial-1",
        "contact_center_id": "c1",
        "sip_domain": "acme.voiso.com",
        "campaign_id": "camp",
        "lead_id": "lead",
        "attempt_id": "att",
        "to": to,
        "caller_id": "+12125550000",
        "virtual_agent_id": "bot",
        "bot_sip_uri": "sip:bot@bots.example",
        "handoff_extension": "4323",
        "headers": {"X-Voiso-Call-Id": "dial-1", "X-Plan": "gold"},
    }
    values.update(fields)
    return Origination(**values)


class Switch:
    """A real HTTP server on 127.0.0.1 answering with the statuses it is given, in turn."""

    def __init__(self, statuses: list[int]) -> None:
        self.statuses = statuses
        self.requests: list[tuple[dict[str, str], bytes]] = []
        switch = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                switch.requests.append((dict(self.headers), body))
                status = switch.statuses.pop(0) if switch.statuses else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/originate"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def switch():
    servers: list[Switch] = []

    def make(*statuses: int) -> Switch:
        servers.append(Switch(list(statuses)))
        return servers[-1]

    yield make
    for server in servers:
        server.close()


def _verify(headers: dict[str, str], body: bytes) -> None:
    stamp, v1 = (part.split("=", 1)[1] for part in headers["X-Voiso-Signature"].split(","))
    expected = hmac.new(SECRET.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(v1, expected)


def test_http_gateway_posts_a_signed_origination(switch) -> None:
    server = switch(200)
    HttpGateway(url=server.url, secret=SECRET).originate(origination())
    ((headers, body),) = server.requests
    _verify(headers, body)
    assert json.loads(body) == {
        "call_id": "dial-1",
        "contact_center": "c1",
        "campaign_id": "camp",
        "lead_id": "lead",
        "to": "+12125550102",
        "from": "+12125550000",
        "sip_uri": "sip:bot@bots.example",
        "headers": {"X-Voiso-Call-Id": "dial-1", "X-Plan": "gold"},
    }


def test_http_gateway_retries_the_same_call_then_gives_up(switch) -> None:
    server = switch(503, 429, 200)
    HttpGateway(url=server.url, secret=SECRET, backoff=0).originate(origination())
    bodies = {body for _, body in server.requests}
    assert len(server.requests) == 3 and len(bodies) == 1  # the same call each time
    failing = switch(503, 503, 503)
    with pytest.raises(OriginationError, match="3 tries"):
        HttpGateway(url=failing.url, secret=SECRET, backoff=0).originate(origination())


def test_http_gateway_does_not_retry_a_refusal(switch) -> None:
    server = switch(400)
    with pytest.raises(OriginationError, match="refused"):
        HttpGateway(url=server.url, secret=SECRET, backoff=0).originate(origination())
    assert len(server.requests) == 1


def test_http_gateway_unreachable_is_an_origination_error() -> None:
    with pytest.raises(OriginationError, match="ConnectError"):
        HttpGateway(url="http://127.0.0.1:9/originate", secret=SECRET, backoff=0).originate(origination())


def test_lead_context_cannot_overwrite_our_headers() -> None:
    headers = origination_headers(
        {"X-Voiso-Call-Id": "dial-1"}, {"x-voiso-call-id": "forged", "X-Plan": "gold"}
    )
    assert headers == {"X-Plan": "gold", "X-Voiso-Call-Id": "dial-1"}


@pytest.mark.parametrize(
    ("digit", "types", "end_reason"),
    [
        (
            "0",
            ["call.started", "bot.connected", "handoff.requested", "handoff.accepted", "handoff.completed"],
            "completed",
        ),
        ("3", ["call.started", "bot.connected"], "completed"),
        ("6", ["call.started"], "busy"),
        ("7", ["call.started"], "no_answer"),
        ("8", ["call.started"], "machine"),
        ("9", ["call.started"], "failed"),
    ],
)
def test_the_last_digit_decides_the_story(digit: str, types: list[str], end_reason: str) -> None:
    steps = story(origination(to=f"+1212555010{digit}"))
    assert [step.type for step in steps] == [*types, "call.ended"]
    assert steps[-1].data["end_reason"] == end_reason
    assert [step.after for step in steps] == sorted(step.after for step in steps)
    assert steps[0].data["direction"] == "outbound" and steps[0].data["campaign_id"] == "camp"


def test_the_simulator_posts_each_event_at_its_time_and_ends_calls_on_close() -> None:
    posted: list[dict] = []
    lock = threading.Lock()

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["Authorization"] == "Bearer key-c1"
        with lock:
            posted.extend(json.loads(request.content)["events"])
        return httpx.Response(202, json={"accepted": 1, "duplicates": 0})

    gateway = SimulatorGateway(
        base_url="http://switch",
        api_key_for=lambda center: f"key-{center}",
        time_scale=0.01,  # a 45 s call in 0.45 s
        transport=httpx.MockTransport(handler),
    )
    gateway.originate(origination(to="+12125550106"))  # busy: ends after 2 s (0.02 s here)
    gateway.originate(origination(to="+12125550103", call_id="dial-2"))  # a long bot call
    deadline = threading.Event()
    deadline.wait(0.2)
    with lock:
        early = [(event["call_id"], event["type"]) for event in posted]
    assert ("dial-1", "call.ended") in early
    assert ("dial-2", "call.ended") not in early
    gateway.close()
    ends = [event for event in posted if event["type"] == "call.ended"]
    assert {event["call_id"] for event in ends} == {"dial-1", "dial-2"}
    # Cut short: dial-2's end is not in the future.
    end2 = next(event for event in ends if event["call_id"] == "dial-2")
    assert datetime.fromisoformat(end2["occurred_at"]) <= datetime.now(UTC)
    assert len({event["id"] for event in posted}) == len(posted)


def test_a_handed_off_callee_is_answered_by_a_member_of_the_queue() -> None:
    steps = story(origination(to="+12125550100", handoff_agents=("1001", "1002")))
    (answered,) = [step for step in steps if step.type == "agent.connected"]
    assert answered.data["extension"] in {"1001", "1002"}
    assert [step.type for step in steps][-2:] == ["agent.connected", "call.ended"]
