"""The http gateway: asks the switch to place the call with a signed JSON request.

    POST {DIALER_SWITCH_URL}
    Content-Type: application/json
    X-Voiso-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with DIALER_SWITCH_SECRET>

    {"call_id", "contact_center", "campaign_id", "lead_id", "to", "from", "sip_uri", "headers"}

The switch answers 2xx once it has taken the call (the same call_id again is the same call: it
must not dial twice), then reports the call under `call_id` through the events API. Connection
errors, 429 and 5xx are retried (three tries in all, the same body); other answers are final.
The timestamp lets the switch refuse replays older than a few minutes.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import httpx

from campaigns.gateways import Origination, OriginationError

TRIES = 3


def signature(secret: str, body: bytes, timestamp: int) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def request_body(origination: Origination) -> dict[str, object]:
    return {
        "call_id": origination.call_id,
        "contact_center": origination.contact_center_id,
        "campaign_id": origination.campaign_id,
        "lead_id": origination.lead_id,
        "to": origination.to,
        "from": origination.caller_id,
        "sip_uri": origination.bot_sip_uri,
        "headers": origination.headers,
    }


class HttpGateway:
    def __init__(
        self,
        *,
        url: str,
        secret: str,
        timeout: float = 5.0,
        transport: httpx.BaseTransport | None = None,
        backoff: float = 0.25,
    ) -> None:
        if not url or not secret:
            raise ValueError("The http gateway needs DIALER_SWITCH_URL and DIALER_SWITCH_SECRET.")
        self.url = url
        self._secret = secret
        self._backoff = backoff
        self._client = httpx.Client(timeout=timeout, transport=transport)

    def originate(self, origination: Origination) -> None:
        body = json.dumps(request_body(origination), separators=(",", ":")).encode()
        problem = ""
        for attempt in range(1, TRIES + 1):
            headers = {
                "Content-Type": "application/json",
                "X-Voiso-Signature": signature(self._secret, body, int(time.time())),
            }
            try:
                response = self._client.post(self.url, content=body, headers=headers)
            except httpx.HTTPError as exc:
                problem = type(exc).__name__
            else:
                if response.is_success:
                    return
                problem = f"HTTP {response.status_code}"
                if response.status_code != 429 and response.status_code < 500:
                    raise OriginationError(f"the switch refused the call: {problem}")
            if attempt < TRIES:
                time.sleep(self._backoff * attempt)
        raise OriginationError(f"the switch did not take the call after {TRIES} tries: {problem}")

    def close(self) -> None:
        self._client.close()
