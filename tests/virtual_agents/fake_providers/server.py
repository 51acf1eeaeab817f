"""The plumbing every fake provider shares: a real HTTP server, request records, shape checks, faults.

A subclass declares its documented endpoints (`routes`), its seed data (`seed`), how it checks the
API key (`check_auth`) and what its error bodies look like (`error_body`).
"""

from __future__ import annotations

import ipaddress
import itertools
import json
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, unquote, urlsplit

from tests.virtual_agents.fake_providers.definitions import conform, conform_body

MISSING: Any = object()


@dataclass
class RecordedRequest:
    method: str
    path: str  # as sent, still percent-encoded
    query: dict[str, str]
    headers: dict[str, str]  # names lower-cased
    json: Any = None


@dataclass
class Reply:
    status: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    raw: bytes | None = None  # sent as-is instead of JSON


class Violation(Exception):
    """The request breaks the provider's documented shape: recorded and answered 400."""


class Answer(Exception):
    """Stop handling and send this reply (a 404, a refusal the real provider would give)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


@dataclass
class Fault:
    method: str
    path_prefix: str
    remaining: int | None  # None: every matching request
    reply: Reply | None  # None: answer normally once the delay is over
    delay: float = 0.0

    def matches(self, method: str, path: str) -> bool:
        return self.method in (method, "*") and path.startswith(self.path_prefix)


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Callable[..., Any]
    query: frozenset[str]
    # The provider's published definition of the JSON body (definitions.py): an SDK type, or the
    # body fields of an SDK method. None: the operation takes no body.
    body: Any = None


def route(
    method: str,
    pattern: str,
    handler: Callable[..., Any],
    *,
    query: set[str] | None = None,
    body: Any = None,
) -> Route:
    return Route(method, re.compile(pattern), handler, frozenset(query or ()), body)


class FakeProvider:
    """One provider's API on 127.0.0.1. Use as a context manager or call start()/stop()."""

    provider: ClassVar[str]

    def __init__(self, api_key: str, *, sip_domain: str = "acme.voiso.com") -> None:
        self.api_key = api_key
        self.sip_domain = sip_domain
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        self._faults: list[Fault] = []
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._routes = self.routes()
        self.seed()

    # --- what a provider defines -------------------------------------------------------

    def routes(self) -> list[Route]:
        raise NotImplementedError

    def seed(self) -> None:
        raise NotImplementedError

    def check_auth(self, headers: dict[str, str]) -> None:
        raise NotImplementedError

    def error_body(self, status: int, message: str) -> Any:
        raise NotImplementedError

    # --- lifecycle ---------------------------------------------------------------------

    def start(self) -> FakeProvider:
        server = _Server(("127.0.0.1", 0), _Handler)
        server.fake = self
        # A short poll keeps stop() (and so every test) fast.
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def reset(self) -> None:
        """Back to the seeded state with nothing recorded, on the same port (a second run to compare)."""
        with self._lock:
            self.requests.clear()
            self.violations.clear()
            self._faults.clear()
            self._ids = itertools.count(1)
            self.seed()

    # --- inspection --------------------------------------------------------------------

    @property
    def calls(self) -> list[tuple[str, str]]:
        """(method, path) of every request, in order."""
        return [(r.method, r.path) for r in self.requests]

    def sent(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]

    # --- failure injection -------------------------------------------------------------

    def fail(
        self,
        method: str,
        path_prefix: str,
        status: int,
        body: Any = None,
        headers: dict[str, str] | None = None,
        times: int | None = 1,
    ) -> None:
        """Answer the next `times` matching requests (None: all) with `status` instead.

        `method` "*" matches any method. Without `body`, the provider's usual error body is sent.
        """
        if body is None and status >= 400:
            body = self.error_body(status, HTTPStatus(status).phrase)
        self._add(Fault(method, path_prefix, times, Reply(status, body, dict(headers or {}))))

    def malformed(
        self, method: str, path_prefix: str, body: bytes = b"<html>Bad Gateway</html>", times: int | None = 1
    ) -> None:
        """Answer 200 with a body that is not JSON (a proxy's error page, a truncated answer)."""
        reply = Reply(200, raw=body, headers={"Content-Type": "text/html"})
        self._add(Fault(method, path_prefix, times, reply))

    def slow(self, method: str, path_prefix: str, seconds: float, times: int | None = 1) -> None:
        """Sleep `seconds` before answering normally (the work still happens, as at a real provider)."""
        self._add(Fault(method, path_prefix, times, None, delay=seconds))

    def _add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path) and fault.remaining != 0:
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    # --- handling ----------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Reply:
        split = urlsplit(target)
        path = split.path
        query = dict(parse_qsl(split.query, keep_blank_values=True))
        payload, is_bad_json = None, False
        if body:
            try:
                payload = json.loads(body)
            except ValueError:
                is_bad_json = True
        request = RecordedRequest(method, path, query, headers, payload)
        with self._lock:
            self.requests.append(request)
        try:
            self.check_auth(headers)
            fault = self._take_fault(method, path)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.reply is not None:
                    return fault.reply
            with self._lock:
                found, params = self._route(method, path)
                self._check_envelope(found, request, body, is_bad_json)
                return _as_reply(found.handler(request, *params))
        except Answer as answer:
            return answer.reply
        except Violation as violation:
            with self._lock:
                self.violations.append(f"{method} {path}: {violation}")
            return Reply(400, self.error_body(400, str(violation)))

    def _route(self, method: str, path: str) -> tuple[Route, list[str]]:
        for candidate in self._routes:
            match = candidate.pattern.fullmatch(path)
            if match and candidate.method == method:
                return candidate, [unquote(group) for group in match.groups()]
        raise Violation("not a documented endpoint of " + self.provider)

    def _check_envelope(self, found: Route, request: RecordedRequest, body: bytes, is_bad_json: bool) -> None:
        unknown = sorted(set(request.query) - found.query)
        check(not unknown, f"unexpected query parameters {unknown}")
        if request.method in ("POST", "PATCH", "PUT"):
            content_type = request.headers.get("content-type", "")
            check(content_type.startswith("application/json"), f"Content-Type is {content_type!r}")
            check(not is_bad_json, "the body is not valid JSON")
            check(isinstance(request.json, dict), "the body must be a JSON object")
            check(found.body is not None, "this operation takes no body")
            errors = (
                conform_body(request.json, found.body)
                if isinstance(found.body, dict)
                else conform(request.json, found.body)
            )
            check(not errors, "not what the provider defines: " + "; ".join(errors[:6]))
        else:
            check(not body, f"a {request.method} request carries a body")

    # --- helpers for subclasses --------------------------------------------------------

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def missing(self, what: str) -> Answer:
        return Answer(Reply(404, self.error_body(404, f"{what} not found")))

    def refuse(self, status: int, message: str) -> Answer:
        return Answer(Reply(status, self.error_body(status, message)))

    def bearer(self, headers: dict[str, str]) -> None:
        """`Authorization: Bearer <key>` (Vapi, Retell)."""
        value = headers.get("authorization")
        if value is None or not re.fullmatch(r"Bearer \S+", value):
            self.violations.append(
                "Authorization header " + ("missing" if value is None else "not 'Bearer <key>'")
            )
            raise self.refuse(401, "Missing or malformed Authorization header")
        if value.removeprefix("Bearer ") != self.api_key:
            raise self.refuse(401, "Invalid API key")

    def sip_uri(self, value: Any, where: str) -> str:
        """A transfer target: an addr-spec `sip:user@<our domain>[;params]` (SPEC conventions)."""
        check(isinstance(value, str), f"{where} must be a string")
        match = re.fullmatch(r"sip:([^@<>\s;]+)@([^;:<>\s]+)(?::\d+)?((?:;[^;\s]+)*)", value)
        check(match is not None, f"{where} is not a sip: addr-spec: {value!r}")
        assert match is not None
        check(match.group(2) == self.sip_domain, f"{where} is not on {self.sip_domain}: {value!r}")
        return value


# --- shape checks ----------------------------------------------------------------------


def check(condition: object, message: str) -> None:
    if not condition:
        raise Violation(message)


def get(obj: Any, dotted: str) -> Any:
    node = obj
    for part in dotted.split("."):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return MISSING
    return node


def need(obj: Any, dotted: str, kind: type | tuple[type, ...] = object, *, equals: Any = MISSING) -> Any:
    """The value at `dotted`, which must be present, of `kind`, and `equals` if given."""
    value = get(obj, dotted)
    check(value is not MISSING, f"{dotted} is required")
    if equals is not MISSING:
        check(value == equals and type(value) is type(equals), f"{dotted} must be {equals!r}, not {value!r}")
    is_bool = isinstance(value, bool)
    check(
        isinstance(value, kind) and not (is_bool and kind in (int, float)),
        f"{dotted} must be of type {getattr(kind, '__name__', kind)}, not {value!r}",
    )
    return value


def optional(obj: Any, dotted: str, allowed: set[Any]) -> None:
    value = get(obj, dotted)
    check(value is MISSING or value in allowed, f"{dotted} must be one of {sorted(allowed)}, not {value!r}")


def is_ip_or_cidr(value: Any) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except (TypeError, ValueError):
        return False
    return True


def deep_merge(target: dict[str, Any], patch: dict[str, Any]) -> None:
    """Objects merge key by key, a null removes the key, anything else (arrays too) replaces."""
    for key, value in patch.items():
        if value is None:
            target.pop(key, None)
        elif isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        else:
            target[key] = json.loads(json.dumps(value))


def _as_reply(result: Any) -> Reply:
    return result if isinstance(result, Reply) else Reply(200, result)


# --- the server ------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeProvider

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (the timeout tests) leaves a broken pipe behind: not news.
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        reply = self.server.fake.handle(self.command, self.path, headers, body)
        if reply.raw is not None:
            payload = reply.raw
        elif reply.body is None or reply.status == 204:
            payload = b""
        else:
            payload = json.dumps(reply.body).encode()
        self.send_response(reply.status)
        if payload and "Content-Type" not in reply.headers:
            self.send_header("Content-Type", "application/json")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if payload:
            self.wfile.write(payload)

    do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        return None  # keep pytest output clean; fake.requests is the log
