"""The http_request node against a real local HTTP server, and its SSRF guard."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from routing.flows import CallInput, CompiledFlow, HttpReply, HttpRequest, RunResult, RunState
from routing.flows.fetch import BlockedAddress, httpx_fetch, is_public_address, variables_from_reply, vet_url
from tests.routing.flows.graphs import MONDAY_NOON, build, flow, node, play, route_to

CRM_ANSWER = {
    "tier": "gold",
    "score": 42,
    "ratio": 0.5,
    "vip": True,
    "agent": "1001",
    "gone": None,
    "nested": {"a": 1},
    "list": [1, 2],
    "bad key!": "skipped",
}


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Server:
    base: str
    port: int
    seen: list[Seen] = field(default_factory=list)


class Handler(BaseHTTPRequestHandler):
    server: Any

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(Seen(self.command, self.path, dict(self.headers.items()), body))
        path = self.path.split("?")[0]
        if path == "/crm" and self.command == "POST":
            sent = json.loads(body)
            self._send(
                200,
                {
                    "shape": sorted(sent),
                    "echo_call": sent["call_id"],
                    "echo_tier": sent["variables"].get("x.tier", ""),
                },
            )
        elif path == "/crm":
            self._send(200, CRM_ANSWER)
        elif path == "/text":
            self._send(200, b"hello", content_type="text/plain")
        elif path == "/array":
            self._send(200, [1, 2])
        elif path == "/fail":
            self._send(500, {"tier": "gold"})
        elif path == "/redirect":
            self.send_response(302)
            self.send_header("Location", "/crm")
            self.send_header("Content-Length", "0")
            self.end_headers()
        elif path == "/big":
            self._send(200, {"pad": "x" * 100_000})
        elif path == "/slow":
            time.sleep(1.0)
            self._send(200, CRM_ANSWER)
        else:
            self._send(404, {})

    def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        # The engine may have given up on /slow already; nobody is left to tell.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def running() -> Iterator[Server]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    port = httpd.server_address[1]
    server = Server(base=f"http://127.0.0.1:{port}", port=port)
    httpd.seen = server.seen  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def server(running: Server) -> Server:
    running.seen.clear()
    return running


def http_flow(url: str, *, method: str = "GET", timeout: float = 2.0) -> CompiledFlow:
    """lookup → done: is the tier gold? → route to the agent the CRM named; error: play."""
    return build(
        flow(
            lookup=node(
                "http_request",
                {"method": method, "url": url, "timeout_seconds": timeout, "save_as": "crm"},
                done="gold",
                error="failed",
            ),
            gold=node(
                "condition",
                {"kind": "variable", "name": "crm.tier", "operator": "eq", "value": "gold"},
                true="agent",
                false="ordinary",
            ),
            agent=route_to("variable", "crm.agent"),
            ordinary=play("bye", text="ordinary"),
            failed=play("bye", text="failed"),
            bye=node("hangup"),
        )
    )


def run(compiled: CompiledFlow, *, allow_private: bool = True, **kwargs: Any) -> RunResult:
    return compiled.run(
        CallInput(
            call_id="call-7",
            caller="+442079460018",
            called="+442079460000",
            at=MONDAY_NOON,
            allow_private_http=allow_private,
            **kwargs,
        )
    )


# --- against a real server ----------------------------------------------------------------


def test_a_json_answer_becomes_variables_for_conditions_and_routes(server: Server) -> None:
    result = run(http_flow(f"{server.base}/crm?ref=1"))

    assert result.path == ["start", "lookup", "gold", "agent"]
    assert result.destination["type"] == "user" and result.destination["extension"] == "1001"
    [seen] = server.seen
    assert (seen.method, seen.path) == ("GET", "/crm?ref=1")
    assert seen.headers["X-Voiso-Call-Id"] == "call-7"
    assert seen.headers["X-Voiso-Caller"] == "+442079460018"
    assert seen.headers["X-Voiso-Called"] == "+442079460000"


def test_post_sends_the_call_and_its_variables(server: Server) -> None:
    graph = flow(
        menu=node("menu", {"prompt": "p"}, **{"1": "lookup", "invalid": "bye", "timeout": "bye"}),
        lookup=node(
            "http_request",
            {"method": "POST", "url": f"{server.base}/crm", "save_as": "echo"},
            done="bye",
            error="bye",
        ),
        bye=node("hangup"),
    )
    compiled = build(graph)

    result = compiled.run(
        CallInput(
            "call-8", "+442079460018", "+442079460000", MONDAY_NOON, digits="1", allow_private_http=True
        ),
        RunState("menu", variables={"x.tier": "silver"}),
    )

    [seen] = server.seen
    assert seen.method == "POST" and seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == {
        "call_id": "call-8",
        "caller": "+442079460018",
        "called": "+442079460000",
        "variables": {"x.tier": "silver"},
    }
    assert result.path == ["menu", "lookup", "bye"]


def test_only_scalar_fields_become_variables() -> None:
    reply = HttpReply(200, json.dumps(CRM_ANSWER | {"long": "y" * 300}).encode())

    assert variables_from_reply(reply, "crm") == {
        "crm.tier": "gold",
        "crm.score": "42",
        "crm.ratio": "0.5",
        "crm.vip": "true",
        "crm.agent": "1001",
        "crm.long": "y" * 256,
    }


@pytest.mark.parametrize("path", ["/text", "/array", "/fail", "/redirect", "/big", "/missing"])
def test_anything_but_a_2xx_json_object_takes_the_error_branch(server: Server, path: str) -> None:
    result = run(http_flow(f"{server.base}{path}"))

    assert result.path == ["start", "lookup", "failed", "bye"]
    assert result.notes and result.notes[0].startswith("lookup:")
    # Redirects are not followed: one request, never a second one to /crm.
    assert [seen.path for seen in server.seen] == [path]


def test_a_slow_server_takes_the_error_branch_within_the_timeout(server: Server) -> None:
    began = time.monotonic()
    result = run(http_flow(f"{server.base}/slow", timeout=0.2))

    assert result.path == ["start", "lookup", "failed", "bye"]
    assert time.monotonic() - began < 0.8


def test_a_refused_connection_takes_the_error_branch() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # Nothing listens on `port` now.

    result = run(http_flow(f"http://127.0.0.1:{port}/crm"))

    assert result.path == ["start", "lookup", "failed", "bye"]


def test_a_failed_request_clears_earlier_answers_under_its_name(server: Server) -> None:
    graph = flow(
        menu=node("menu", {"prompt": "p"}, **{"1": "lookup", "invalid": "bye", "timeout": "bye"}),
        lookup=node(
            "http_request",
            {"method": "GET", "url": f"{server.base}/fail", "save_as": "crm"},
            done="has",
            error="has",
        ),
        has=node(
            "condition",
            {"kind": "variable", "name": "crm.tier", "operator": "exists"},
            true="yes",
            false="no",
        ),
        yes=play("bye", text="stale"),
        no=play("bye", text="cleared"),
        bye=node("hangup"),
    )

    result = build(graph).run(
        CallInput("c", "+442079460018", "+442079460000", MONDAY_NOON, digits="1", allow_private_http=True),
        RunState("menu", variables={"crm.tier": "gold", "other.tier": "kept"}),
    )

    assert result.instructions[0]["text"] == "cleared"


def test_the_default_fetcher_connects_to_the_vetted_address_and_keeps_the_name(server: Server) -> None:
    # No DNS knows crm.pinned.test: the request can only arrive through the pinned address.
    url = f"http://crm.pinned.test:{server.port}/crm"

    reply = httpx_fetch(HttpRequest("GET", url, 1.0, headers={"X-Test": "1"}, address="127.0.0.1"))

    assert reply.status == 200 and json.loads(reply.body)["tier"] == "gold"
    [seen] = server.seen
    assert seen.headers["Host"] == f"crm.pinned.test:{server.port}"
    assert seen.headers["X-Test"] == "1"


# --- SSRF ---------------------------------------------------------------------------------


class Recording:
    """A fetcher that must not be reached: it records the requests that get through."""

    def __init__(self) -> None:
        self.requests: list[HttpRequest] = []

    def __call__(self, request: HttpRequest) -> HttpReply:
        self.requests.append(request)
        return HttpReply(200, json.dumps(CRM_ANSWER).encode())


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]"])
def test_loopback_is_refused_unless_private_addresses_are_allowed(server: Server, host: str) -> None:
    url = f"http://{host}:{server.port}/crm"
    if host == "[::1]" and not socket.has_ipv6:
        pytest.skip("no IPv6")

    refused = run(http_flow(url), allow_private=False)

    assert refused.path == ["start", "lookup", "failed", "bye"]
    assert server.seen == []
    assert "non-public" in refused.notes[0]


def test_the_same_url_is_fetched_when_private_addresses_are_allowed(server: Server) -> None:
    allowed = run(http_flow(f"http://localhost:{server.port}/crm"), allow_private=True)

    assert allowed.path == ["start", "lookup", "gold", "agent"]
    assert len(server.seen) == 1


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/crm",
        "http://172.16.5.4/crm",
        "http://192.168.1.1/crm",
        "http://169.254.169.254/latest/meta-data/",
        "http://100.64.0.1/",
        "http://0.0.0.0:8000/",
        "http://224.0.0.1/",
        "http://[::ffff:127.0.0.1]/",
        "http://[fe80::1]/",
        "http://[fd00::1]/",
        "http://[2002:7f00:1::1]/",
        "http://[64:ff9b::a00:1]/",
    ],
)
def test_private_and_special_addresses_are_never_fetched(url: str) -> None:
    fetch = Recording()

    result = run(http_flow(url), allow_private=False, http=fetch)

    assert result.path == ["start", "lookup", "failed", "bye"]
    assert fetch.requests == []


@pytest.mark.parametrize(
    ("answers", "is_refused"),
    [
        (["10.1.2.3"], True),
        (["93.184.216.34", "10.0.0.1"], True),  # one internal address is enough to refuse
        (["2606:4700:4700::1111"], False),
        (["93.184.216.34"], False),
    ],
)
def test_names_are_judged_by_every_address_they_resolve_to(answers: list[str], is_refused: bool) -> None:
    fetch = Recording()
    resolved: list[str] = []

    def resolver(host: str, port: int, timeout: float) -> list[str]:
        resolved.append(f"{host}:{port}")
        return answers

    result = run(http_flow("https://crm.example.com/crm"), allow_private=False, http=fetch, resolver=resolver)

    assert resolved == ["crm.example.com:443"]
    if is_refused:
        assert fetch.requests == [] and result.path[-2] == "failed"
    else:
        [request] = fetch.requests
        assert request.address == answers[0] and request.url == "https://crm.example.com/crm"
        assert 0 < request.timeout <= 2.0
        assert result.destination["extension"] == "1001"


def test_an_unresolvable_name_takes_the_error_branch() -> None:
    fetch = Recording()

    result = run(http_flow("https://no-such-host.invalid/crm"), allow_private=False, http=fetch)

    assert fetch.requests == [] and result.path == ["start", "lookup", "failed", "bye"]


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("8.8.8.8", True),
        ("93.184.216.34", True),
        ("2606:4700:4700::1111", True),
        ("127.0.0.1", False),
        ("10.0.0.1", False),
        ("169.254.169.254", False),
        ("100.64.0.1", False),
        ("224.0.0.1", False),
        ("240.0.0.1", False),
        ("255.255.255.255", False),
        ("::1", False),
        ("::", False),
        ("fe80::1%eth0", False),
        ("::ffff:10.0.0.1", False),
        ("::ffff:8.8.8.8", True),
        ("2002:0808:0808::1", True),
        ("2002:0a00:0001::1", False),
        ("64:ff9b::0808:0808", True),
        ("64:ff9b::7f00:1", False),
        ("ff02::1", False),
        ("not an address", False),
    ],
)
def test_is_public_address(address: str, expected: bool) -> None:
    assert is_public_address(address) is expected


def test_vet_url_refuses_other_schemes_even_when_private_is_allowed() -> None:
    with pytest.raises(BlockedAddress):
        vet_url("file:///etc/passwd", allow_private=True, timeout=1.0)
    assert vet_url("http://127.0.0.1/", allow_private=True, timeout=1.0) is None


def test_a_caller_that_is_not_a_header_value_is_left_out_of_the_headers() -> None:
    fetch = Recording()
    compiled = http_flow("https://crm.example.com/crm")

    result = compiled.run(
        CallInput(
            "call-9",
            "Bob\r\nX-Injected: 1",
            "+442079460000",
            MONDAY_NOON,
            http=fetch,
            resolver=lambda host, port, timeout: ["93.184.216.34"],
        )
    )

    [request] = fetch.requests
    assert request.headers == {"X-Voiso-Call-Id": "call-9", "X-Voiso-Called": "+442079460000"}
    assert result.path[:3] == ["start", "lookup", "gold"]


def test_variables_stay_within_what_a_stored_state_may_hold() -> None:
    many = {f"k{i}": str(i) for i in range(60)}
    fetch = lambda request: HttpReply(200, json.dumps(many).encode())  # noqa: E731
    graph = flow(
        menu=node("menu", {"prompt": "p"}, **{"1": "lookup", "invalid": "bye", "timeout": "bye"}),
        lookup=node(
            "http_request",
            {"method": "GET", "url": "https://x.example.com/", "save_as": "x"},
            done="again",
            error="bye",
        ),
        again=node("menu", {"prompt": "again"}, **{"1": "bye", "invalid": "bye", "timeout": "bye"}),
        bye=node("hangup"),
    )
    before = {f"old{i}.v": "1" for i in range(180)}

    result = build(graph).run(
        CallInput(
            "c",
            "+442079460018",
            "+442079460000",
            MONDAY_NOON,
            digits="1",
            http=fetch,
            resolver=lambda host, port, timeout: ["93.184.216.34"],
        ),
        RunState("menu", variables=before),
    )

    assert result.state is not None and len(result.state.variables) == 200
    assert RunState.from_dict(json.loads(json.dumps(result.state.as_dict()))) == result.state
