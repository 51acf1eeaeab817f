"""The one small interface every provider adapter implements, and the HTTP plumbing they share.

Adapters speak to the provider and nothing else: no database, no audit. The
services in `virtual_agents.services` call them and store what they return, so a
provider failure raises before anything is written.
"""

from __future__ import annotations

import functools
import logging
import ssl
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import httpx

logger = logging.getLogger(__name__)

# Seconds. Provider APIs answer in well under a second; the wizard waits on them.
TIMEOUT = httpx.Timeout(10.0, connect=3.0)
MAX_RETRIES = 2  # after a 429, bounded so a click never hangs for minutes
MAX_RETRY_AFTER = 5.0


class ProviderError(Exception):
    """A provider call failed; `message` is safe to show an administrator (never holds secrets)."""

    def __init__(self, code: str, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status


@dataclass(frozen=True)
class ProviderAgent:
    id: str
    name: str


@dataclass(frozen=True)
class TransferTarget:
    """A destination the bot may hand off to: always a SIP URI on our domain (addr-spec)."""

    label: str
    sip_uri: str


@dataclass
class Connection:
    """What `connect` made at the provider: the INVITE target and the ids needed to undo it."""

    sip_uri: str
    state: dict[str, Any] = field(default_factory=dict)


class ProviderAdapter:
    """Base of the adapters. Subclasses set `name` and implement the five operations."""

    name: ClassVar[str] = "The provider"
    has_api: ClassVar[bool] = True

    def __init__(
        self, credentials: dict[str, Any], *, base_url: str, client: httpx.Client | None = None
    ) -> None:
        self.credentials = credentials
        self.base_url = base_url.rstrip("/")
        self._client = client

    # --- the interface ---------------------------------------------------------------

    def verify(self) -> None:
        raise NotImplementedError

    def list_agents(self) -> list[ProviderAgent]:
        raise NotImplementedError

    def connect(
        self, *, agent_id: str, identifier: str, sip_domain: str, name: str, proxy_addresses: list[str]
    ) -> Connection:
        """Make the provider take our INVITEs for `identifier` and send calls back to `sip_domain`.

        `proxy_addresses`: our SIP proxy's egress IPs/CIDRs, which the provider allow-lists.
        """
        raise NotImplementedError

    def configure_transfers(
        self, *, agent_id: str, state: dict[str, Any], targets: list[TransferTarget]
    ) -> dict[str, Any]:
        """Point the bot's transfer tool at `targets` (SIP REFER); returns the updated state."""
        raise NotImplementedError

    def configured_transfers(self, *, agent_id: str, state: dict[str, Any]) -> list[str]:
        """The SIP URIs the bot's transfer tool holds at the provider right now."""
        raise NotImplementedError

    def disconnect(self, *, agent_id: str, state: dict[str, Any]) -> list[str]:
        """Remove what connect/configure_transfers made; returns what is left at the provider.

        Each entry is a plain sentence for the administrator (a resource the provider refused
        to delete, and what to do about it); [] when everything is gone.
        """
        raise NotImplementedError

    # --- HTTP ------------------------------------------------------------------------

    def auth_headers(self) -> dict[str, str]:
        raise NotImplementedError

    @property
    def secret(self) -> str:
        return str(self.credentials.get("api_key", ""))

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        what: str = "that resource",
        ok_missing: bool = False,
    ) -> Any:
        """One provider call with retries on 429 and every failure mapped to a ProviderError.

        ok_missing: a 404 is success (deleting what is already gone).
        """
        headers = {"Accept": "application/json", **self.auth_headers()}
        client = self._client or httpx.Client(timeout=TIMEOUT, verify=_ssl_context())
        try:
            for attempt in range(MAX_RETRIES + 1):
                try:
                    response = client.request(
                        method, f"{self.base_url}{path}", json=json, params=params, headers=headers
                    )
                except httpx.TimeoutException:
                    raise ProviderError(
                        "timeout", f"{self.name} did not answer in time. Try again."
                    ) from None
                except httpx.HTTPError as exc:
                    raise ProviderError(
                        "unreachable", f"{self.name} could not be reached ({type(exc).__name__})."
                    ) from None
                if response.status_code == 429 and attempt < MAX_RETRIES:
                    time.sleep(_retry_after(response))
                    continue
                return self._result(response, what=what, ok_missing=ok_missing)
            raise AssertionError("unreachable")  # pragma: no cover - the loop always returns or raises
        finally:
            if self._client is None:
                client.close()

    def as_object(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ProviderError("bad_response", f"{self.name} sent an answer of an unexpected shape.")
        return body

    def as_list(self, body: Any) -> list[Any]:
        if not isinstance(body, list):
            raise ProviderError("bad_response", f"{self.name} sent an answer of an unexpected shape.")
        return body

    def _result(self, response: httpx.Response, *, what: str, ok_missing: bool) -> Any:
        status = response.status_code
        if status == 404 and ok_missing:
            return None
        if 200 <= status < 300:
            if status == 204 or not response.content:
                return None
            try:
                return response.json()
            except ValueError:
                raise ProviderError(
                    "bad_response", f"{self.name} sent an answer that is not valid JSON.", status=status
                ) from None
        logger.info(
            "%s answered HTTP %s to %s %s",
            self.name,
            status,
            response.request.method,
            response.request.url.path,
        )
        if status in (401, 403):
            raise ProviderError("auth_failed", f"{self.name} rejected the API key.", status=status)
        if status == 404:
            raise ProviderError("not_found", f"{self.name} could not find {what}.", status=status)
        if status in (400, 409, 422):
            detail = self._detail(response)
            raise ProviderError(
                "rejected",
                f"{self.name} rejected the request" + (f": {detail}" if detail else "."),
                status=status,
            )
        if status == 429:
            raise ProviderError(
                "rate_limited",
                f"{self.name} is rate-limiting requests. Wait a minute and try again.",
                status=status,
            )
        if status >= 500:
            raise ProviderError(
                "provider_unavailable",
                f"{self.name} is having trouble (HTTP {status}). Try again in a few minutes.",
                status=status,
            )
        raise ProviderError("unexpected", f"{self.name} answered HTTP {status}.", status=status)

    def _detail(self, response: httpx.Response) -> str:
        """A short, secret-free summary of a provider's validation error."""
        try:
            body = response.json()
        except ValueError:
            return ""
        detail = (
            body.get("detail", body.get("message", body.get("error", ""))) if isinstance(body, dict) else ""
        )
        if isinstance(detail, list):
            detail = "; ".join(
                str(item.get("msg", item)) if isinstance(item, dict) else str(item) for item in detail[:3]
            )
        elif isinstance(detail, dict):
            detail = str(detail.get("message", ""))
        text = " ".join(str(detail).split())
        # Redact before cutting: a cut through the key would leave its head in the message.
        if self.secret:
            text = text.replace(self.secret, "[redacted]")
        return text[:300]


def _retry_after(response: httpx.Response) -> float:
    try:
        wait = float(response.headers.get("Retry-After", "1"))
    except ValueError:
        wait = 1.0
    return max(0.0, min(wait, MAX_RETRY_AFTER))


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    # httpx's default context (certifi, or SSL_CERT_FILE/DIR), built once: loading the CA bundle
    # costs ~20 ms, and a client per request would pay it on every provider call.
    return httpx.create_ssl_context()
