"""The http_request node's network side: SSRF vetting, the default fetcher, reply → variables.

A flow's URL is typed by a contact-center administrator and fetched from inside our network,
so before every request the host is resolved and refused when any address it resolves to is
not a public unicast address. The default fetcher then connects to the vetted address itself
(the Host header and TLS SNI keep the name), so a DNS answer that changes between the check
and the connect (rebinding) cannot reach an internal service. Redirects are not followed for
the same reason. ``allow_private`` (settings.FLOW_HTTP_ALLOW_PRIVATE) turns the vetting off for
development and tests.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, urlsplit

import httpx

from routing.flows.checks import KEY_RE

MAX_BODY = 64 * 1024
MAX_VARIABLES = 50
MAX_VALUE = 256


class FetchError(Exception):
    """The request was refused or failed; the node takes its error branch."""


class BlockedAddress(FetchError):
    """The URL's host is (or resolves to) a non-public address."""


@dataclass(frozen=True, slots=True)
class HttpRequest:
    method: str
    url: str
    timeout: float
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    # The vetted IP to connect to, or None when private addresses are allowed (no pinning).
    address: str | None = None


@dataclass(frozen=True, slots=True)
class HttpReply:
    status: int
    body: bytes


HttpFetch = Callable[[HttpRequest], HttpReply]
Resolver = Callable[[str, int, float], list[str]]


def is_public_address(address: str) -> bool:
    """Whether `address` is a global unicast address (not private, loopback, link-local, …)."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4 embedded in IPv6 (mapped, 6to4, Teredo, NAT64) reaches the IPv4 host: judge that.
        embedded = ip.ipv4_mapped or ip.sixtofour or (ip.teredo[1] if ip.teredo else None)
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public_address(str(embedded))
    return ip.is_global and not (
        ip.is_multicast or ip.is_reserved or ip.is_loopback or ip.is_link_local or ip.is_unspecified
    )


_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def resolve(host: str, port: int, timeout: float) -> list[str]:
    """The addresses `host` resolves to, within `timeout` seconds (getaddrinfo has none of its own)."""
    future = _resolver_pool().submit(socket.getaddrinfo, host, port, type=socket.SOCK_STREAM)
    try:
        infos = future.result(timeout=timeout)
    except FutureTimeout:
        raise FetchError(f"resolving {host} took longer than {timeout:g} s") from None
    except OSError as exc:
        raise FetchError(f"cannot resolve {host}: {exc}") from None
    return [str(info[4][0]) for info in infos]


def vet_url(url: str, *, allow_private: bool, timeout: float, resolver: Resolver = resolve) -> str | None:
    """The address to connect to for `url`, or BlockedAddress; None when private hosts are allowed."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise BlockedAddress(f"{parts.scheme or 'no'} scheme: only http and https URLs are fetched")
    if allow_private:
        return None
    addresses = resolver(parts.hostname, _port(parts), timeout)
    if not addresses:
        raise FetchError(f"{parts.hostname} has no addresses")
    refused = [address for address in addresses if not is_public_address(address)]
    if refused:
        # Every address must pass: a name with one public and one internal address would
        # otherwise reach the internal one whenever the client happens to pick it.
        raise BlockedAddress(f"{parts.hostname} resolves to a non-public address ({refused[0]})")
    return addresses[0]


def httpx_fetch(request: HttpRequest) -> HttpReply:
    """The default fetcher: httpx, pinned to the vetted address, no redirects, body ≤ 64 KB."""
    url, headers, extensions = _pinned(request)
    deadline = time.monotonic() + request.timeout
    with _client().stream(
        request.method,
        url,
        headers=headers,
        json=request.json,
        timeout=httpx.Timeout(request.timeout),
        extensions=extensions,
    ) as response:
        body = bytearray()
        for chunk in response.iter_bytes():
            body += chunk
            # httpx's timeout is per read; a server trickling bytes must not hold the call longer.
            if len(body) > MAX_BODY or time.monotonic() > deadline:
                raise FetchError("response too large or too slow")
        return HttpReply(status=response.status_code, body=bytes(body))


def variables_from_reply(reply: HttpReply, prefix: str) -> dict[str, str] | None:
    """`{prefix}.{key}` → text for the scalar fields of a 2xx JSON object; None for anything else.

    Text is what conditions and routes compare: true/false for booleans, JSON numbers as
    written by Python; null fields are left unset so `exists` is false for them.
    """
    if not 200 <= reply.status < 300:
        return None
    try:
        data = json.loads(reply.body)
    except (ValueError, RecursionError):
        return None
    if not isinstance(data, dict):
        return None
    variables: dict[str, str] = {}
    for key, value in data.items():
        if len(variables) >= MAX_VARIABLES or not KEY_RE.fullmatch(key):
            continue
        text = _scalar_text(value)
        if text is not None:
            variables[f"{prefix}.{key}"] = text[:MAX_VALUE]
    return variables


def _scalar_text(value: Any) -> str | None:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    return None


def _port(parts: SplitResult) -> int:
    return parts.port or (443 if parts.scheme == "https" else 80)


def _pinned(request: HttpRequest) -> tuple[str, dict[str, str], dict[str, Any]]:
    headers = dict(request.headers)
    if request.address is None:
        return request.url, headers, {}
    parts = urlsplit(request.url)
    host = f"[{request.address}]" if ":" in request.address else request.address
    netloc = f"{host}:{parts.port}" if parts.port else host
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    headers["Host"] = hostport
    # Certificates are checked against the name the administrator typed, not the IP.
    extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
    return parts._replace(netloc=netloc).geturl(), headers, extensions


_lock = threading.Lock()
_shared: dict[str, Any] = {}


def _client() -> httpx.Client:
    # One client per process: building one loads the CA bundle (tens of ms), too slow per call.
    # trust_env=False: a proxy from the environment would connect by name and undo the pinning.
    with _lock:
        if "client" not in _shared:
            _shared["client"] = httpx.Client(follow_redirects=False, trust_env=False)
        return _shared["client"]


def _resolver_pool() -> ThreadPoolExecutor:
    with _lock:
        if "pool" not in _shared:
            _shared["pool"] = ThreadPoolExecutor(max_workers=4, thread_name_prefix="flow-dns")
        return _shared["pool"]
