"""Provider post-call webhooks: signature checks and payload parsing. No database access.

The signature is the only authentication a webhook has, so it is checked before anything
else, in two steps: the headers (present, well formed, timestamp inside the window) before
the body is read, then the HMAC over the raw body, fed in chunks as it is read. Every
comparison of a digest or secret is constant-time.

- ElevenLabs: `ElevenLabs-Signature: t=<unix s>,v0=<hex>` = HMAC(webhook secret, `"<t>." + body`);
  accepted from 30 minutes old (the provider SDK's window) to 5 minutes ahead (clock skew).
- Vapi HMAC (a custom credential's `HMACAuthenticationPlan`, vapi_server_sdk 3.0): `x-signature`
  = HMAC-SHA256 or HMAC-SHA512 (`algorithm`) of `"<x-timestamp>." + body` (the default payload
  format), or of the body alone when the plan has `includeTimestamp: false`; hex or base64
  (`signatureEncoding`), with or without a `sha256=`/`sha512=` prefix (`signaturePrefix`).
  `x-timestamp` is Unix seconds or milliseconds (the unit is undocumented); ±5 minutes (Vapi
  documents no window; Retell's is used). sha1 is refused: the page asks for sha256 or sha512.
- Vapi bearer (`BearerAuthenticationPlan`): `Authorization: Bearer <webhook secret>`, or the
  bare secret when `bearerPrefixEnabled` is false. No window.
- Vapi legacy shared secret: `X-Vapi-Secret: <webhook secret>` (the header is the secret; no window).
- Retell: `x-retell-signature: v=<unix ms>,d=<hex>` = HMAC(key, `body + "<v>"`), ±5 minutes (the
  SDK's window); the key is the webhook secret when one is set, else the integration's API key.

Vapi sends whichever its server credential is set up with; each is accepted with the one stored
secret, in the order HMAC, Authorization, X-Vapi-Secret when several headers are present. Only
an HMAC with the timestamp protects against replay: the integration page recommends it.

`parse_report()` turns each provider's post-call payload into one `ProviderReport`, or None
for events that carry no report (acknowledged and ignored, e.g. ElevenLabs audio).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from django.http import HttpRequest
from django.urls import reverse

from virtual_agents.models import Provider, ProviderIntegration

# Providers that post reports here; a generic SIP bot has no provider to sign anything.
WEBHOOK_PROVIDERS = (Provider.ELEVENLABS, Provider.VAPI, Provider.RETELL)

# The header our dial instruction puts on the INVITE to a bot (routing.flows.routes).
CALL_ID_HEADER = "X-Voiso-Call-Id"

ELEVENLABS_TOLERANCE = 30 * 60  # the provider SDK's window, in seconds
FUTURE_SKEW = 5 * 60  # clocks drift: a timestamp this far ahead is still accepted
VAPI_TOLERANCE = 5 * 60  # Vapi documents none; the same window as Retell
RETELL_TOLERANCE = 5 * 60  # the provider SDK's window (symmetric)

ID_MAX = 200  # ProviderCallReport.provider_call_id / call_id
SUMMARY_MAX = 20_000
REASON_MAX = 200
URL_MAX = 2000


class SignatureError(Exception):
    """The request is not from the provider (answered 401, nothing stored)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


class PayloadError(Exception):
    """A signed body that is not a report we can read (answered 400, nothing stored)."""

    def __init__(self, message: str, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message, self.fields = message, fields or {}


def signing_secret(provider: str, credentials: Mapping[str, Any]) -> str:
    """The key a provider signs with, or '' when none is configured.

    Retell signs with an API key (the one with the webhook badge): a separate webhook key
    when one is set, else the integration's API key.
    """
    secret = str(credentials.get("webhook_secret") or "")
    if provider == Provider.RETELL:
        return secret or str(credentials.get("api_key") or "")
    return secret


def has_webhook_secret(integration: ProviderIntegration) -> bool:
    """Whether a webhook secret of its own is stored (shown instead of the secret)."""
    return bool(integration.credentials.get("webhook_secret"))


def webhook_url(integration: ProviderIntegration, request: HttpRequest) -> str | None:
    """The address to paste into the provider's webhook settings."""
    if integration.provider not in WEBHOOK_PROVIDERS:
        return None
    path = reverse("provider_webhook", args=[integration.provider, integration.pk])
    return request.build_absolute_uri(path)


# --- signatures ---------------------------------------------------------------------------


class Verifier(Protocol):
    def update(self, chunk: bytes) -> None: ...

    def verify(self) -> None: ...


def _header(headers: Mapping[str, str], name: str) -> str:
    # Django's request.headers is case-insensitive; a plain dict in tests may not be.
    value = headers.get(name)
    if value is None:
        value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
    return (value or "").strip()


def _timestamp_seconds(raw: str, *, milliseconds: bool | None = None) -> float:
    if not re.fullmatch(r"[0-9]{1,16}", raw):
        raise SignatureError("signature_malformed", "The signature timestamp is not a Unix time.")
    value = int(raw)
    # Vapi's unit is not documented: 13-digit values are milliseconds.
    is_ms = milliseconds if milliseconds is not None else value >= 10**11
    return value / 1000 if is_ms else float(value)


def _check_window(sent_at: float, now: float, *, past: float, future: float) -> None:
    if sent_at < now - past:
        raise SignatureError("signature_expired", "The signature timestamp is too old.")
    if sent_at > now + future:
        raise SignatureError("signature_in_future", "The signature timestamp is in the future.")


def _is_hex_digest(value: str, length: int = 64) -> bool:
    return len(value) == length and all(ch in "0123456789abcdefABCDEF" for ch in value)


class HmacVerifier:
    """HMAC over prefix + body + suffix, compared in constant time with the expected digest."""

    def __init__(
        self,
        secret: str,
        expected: bytes,
        *,
        prefix: bytes = b"",
        suffix: bytes = b"",
        digestmod: Any = hashlib.sha256,
    ) -> None:
        self._mac = hmac.new(secret.encode(), prefix, digestmod)
        self._expected = expected
        self._suffix = suffix

    def update(self, chunk: bytes) -> None:
        self._mac.update(chunk)

    def verify(self) -> None:
        self._mac.update(self._suffix)
        if not hmac.compare_digest(self._mac.digest(), self._expected):
            raise SignatureError("signature_invalid", "The signature does not match the body.")


class SharedSecretVerifier:
    """Vapi's bearer and legacy X-Vapi-Secret plans: the header carries the secret itself."""

    def __init__(self, secret: str, presented: str) -> None:
        self._is_valid = hmac.compare_digest(presented.encode(), secret.encode())

    def update(self, chunk: bytes) -> None:
        pass

    def verify(self) -> None:
        if not self._is_valid:
            raise SignatureError("signature_invalid", "The webhook secret does not match.")


def _parse_pairs(header: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep or not key:
            raise SignatureError("signature_malformed", "The signature header is malformed.")
        pairs.setdefault(key.strip(), value.strip())
    return pairs


def _elevenlabs(headers: Mapping[str, str], secret: str, now: float) -> Verifier:
    header = _header(headers, "ElevenLabs-Signature")
    if not header:
        raise SignatureError("signature_missing", "The ElevenLabs-Signature header is missing.")
    pairs = _parse_pairs(header)
    timestamp, digest = pairs.get("t", ""), pairs.get("v0", "")
    if not timestamp or not _is_hex_digest(digest):
        raise SignatureError("signature_malformed", "Expected ElevenLabs-Signature: t=<unix>,v0=<hex>.")
    sent_at = _timestamp_seconds(timestamp, milliseconds=False)
    _check_window(sent_at, now, past=ELEVENLABS_TOLERANCE, future=FUTURE_SKEW)
    return HmacVerifier(secret, bytes.fromhex(digest), prefix=f"{timestamp}.".encode())


# Digest size in bytes → the algorithm (what Vapi's HMAC plan offers, sha1 left out).
_VAPI_ALGORITHMS = {32: ("sha256", hashlib.sha256), 64: ("sha512", hashlib.sha512)}


def _vapi_digest(signature: str) -> tuple[bytes, Any]:
    """The digest an x-signature carries, hex or base64, with an optional `sha256=`-style prefix."""
    named, sep, rest = signature.partition("=")
    if sep and named.lower() in ("sha1", "sha256", "sha512") and rest:
        signature = rest
    else:
        named = ""
    if _is_hex_digest(signature, 64) or _is_hex_digest(signature, 128):
        digest = bytes.fromhex(signature)
    else:
        try:
            digest = base64.b64decode(signature, validate=True)
        except (ValueError, binascii.Error):
            digest = b""
    if len(digest) not in _VAPI_ALGORITHMS:
        raise SignatureError(
            "signature_malformed", "x-signature is not a hex or base64 HMAC-SHA256 or HMAC-SHA512 digest."
        )
    name, digestmod = _VAPI_ALGORITHMS[len(digest)]
    if named and named.lower() != name:
        raise SignatureError("signature_malformed", f"x-signature says {named} but carries a {name} digest.")
    return digest, digestmod


def _vapi(headers: Mapping[str, str], secret: str, now: float) -> Verifier:
    signature = _header(headers, "x-signature")
    if signature:
        digest, digestmod = _vapi_digest(signature)
        timestamp = _header(headers, "x-timestamp")
        if not timestamp:
            # A plan with includeTimestamp: false signs the body alone (no replay protection).
            return HmacVerifier(secret, digest, digestmod=digestmod)
        sent_at = _timestamp_seconds(timestamp)
        _check_window(sent_at, now, past=VAPI_TOLERANCE, future=VAPI_TOLERANCE)
        return HmacVerifier(secret, digest, prefix=f"{timestamp}.".encode(), digestmod=digestmod)
    authorization = _header(headers, "Authorization")
    if authorization:
        scheme, _, token = authorization.partition(" ")
        presented = token.strip() if scheme.lower() == "bearer" and token.strip() else authorization
        return SharedSecretVerifier(secret, presented)
    presented = _header(headers, "X-Vapi-Secret")
    if presented:
        return SharedSecretVerifier(secret, presented)
    raise SignatureError(
        "signature_missing", "Expected x-signature (HMAC), Authorization (bearer) or X-Vapi-Secret."
    )


_RETELL = re.compile(r"v=(\d{1,16}),d=([0-9a-fA-F]{64})")


def _retell(headers: Mapping[str, str], secret: str, now: float) -> Verifier:
    header = _header(headers, "x-retell-signature")
    if not header:
        raise SignatureError("signature_missing", "The x-retell-signature header is missing.")
    match = _RETELL.fullmatch(header)
    if match is None:
        raise SignatureError("signature_malformed", "Expected x-retell-signature: v=<ms>,d=<hex>.")
    timestamp, digest = match.groups()
    sent_at = _timestamp_seconds(timestamp, milliseconds=True)
    _check_window(sent_at, now, past=RETELL_TOLERANCE, future=RETELL_TOLERANCE)
    return HmacVerifier(secret, bytes.fromhex(digest), suffix=timestamp.encode())


_VERIFIERS = {Provider.ELEVENLABS: _elevenlabs, Provider.VAPI: _vapi, Provider.RETELL: _retell}


def verifier_for(provider: str, headers: Mapping[str, str], *, secret: str, now: float) -> Verifier:
    """Check the signature headers (before the body is read); the result checks the body.

    Raises SignatureError for a missing, malformed, expired or future signature, and when no
    secret is configured (nothing could ever verify).
    """
    if provider not in _VERIFIERS:
        raise ValueError(f"{provider} posts no webhooks")
    if not secret:
        raise SignatureError(
            "webhook_secret_not_set", "No webhook secret is set for this integration; set it in Voiso."
        )
    return _VERIFIERS[provider](headers, secret, now)


# --- payloads -----------------------------------------------------------------------------


@dataclass
class ProviderReport:
    """One provider's post-call report in our terms. Blank fields are 'not in this payload'."""

    provider_call_id: str
    event: str
    call_id: str = ""  # ours, from the X-Voiso-Call-Id header the provider echoed
    transcript: list[dict[str, Any]] = field(default_factory=list)  # [{"role", "text", "seconds"?}]
    summary: str = ""
    recording_url: str = ""
    ended_reason: str = ""


BOT_ROLES = {"agent", "assistant", "bot", "ai"}
CALLER_ROLES = {"user", "customer", "caller"}


def _role(raw: Any) -> str | None:
    value = str(raw or "").strip().lower()
    if value in BOT_ROLES:
        return "bot"
    if value in CALLER_ROLES:
        return "caller"
    return None  # system prompts, tool calls and their results are not the conversation


def _turn(role: Any, text: Any, seconds: Any) -> dict[str, Any] | None:
    who = _role(role)
    if who is None or not isinstance(text, str) or not text.strip():
        return None
    turn: dict[str, Any] = {"role": who, "text": text.strip()}
    if isinstance(seconds, int | float) and not isinstance(seconds, bool) and seconds >= 0:
        turn["seconds"] = round(float(seconds), 3)
    return turn


_LINE = re.compile(r"^\s*(AI|Agent|Assistant|Bot|User|Customer)\s*:\s*(.*)$", re.IGNORECASE)


def _transcript_from_text(text: Any) -> list[dict[str, Any]]:
    """A plain "AI: …\\nUser: …" transcript, for payloads without the structured one."""
    if not isinstance(text, str):
        return []
    turns: list[dict[str, Any]] = []
    for line in text.splitlines():
        match = _LINE.match(line)
        if match:
            turn = _turn(match.group(1), match.group(2), None)
            if turn:
                turns.append(turn)
        elif turns and line.strip():
            turns[-1]["text"] += "\n" + line.strip()
    return turns


def _text(value: Any, limit: int) -> str:
    return value.strip()[:limit] if isinstance(value, str) else ""


def _url(value: Any) -> str:
    # Only http(s): the URL is rendered as a link and an audio source on the call page.
    if isinstance(value, str) and len(value) <= URL_MAX and re.match(r"^https?://[^\s/?#]+", value):
        return value
    return ""


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _normal_key(key: str) -> str:
    key = key.strip().lower().replace("-", "_")
    return key.removeprefix("sip_")


_CALL_ID_KEYS = {"x_voiso_call_id", "voiso_call_id"}


def find_call_id(*header_maps: Any) -> str:
    """Our call id in whichever header/variable map the provider echoed it.

    Providers spell echoed SIP headers differently (as sent, lower-cased, `sip_`-prefixed,
    dashes as underscores), so keys are compared after normalising those away.
    """
    for candidate in header_maps:
        for key, value in _object(candidate).items():
            if isinstance(key, str) and _normal_key(key) in _CALL_ID_KEYS:
                text = value.strip() if isinstance(value, str) else ""
                if text and len(text) <= ID_MAX:
                    return text
    return ""


def _provider_call_id(value: Any, where: str) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        raise PayloadError(
            "The report does not name the provider's call.", {where: ["This field is required."]}
        )
    value = value.strip()
    if len(value) > ID_MAX:
        raise PayloadError("The provider's call id is too long.", {where: [f"At most {ID_MAX} characters."]})
    return value


def _parse_elevenlabs(payload: dict[str, Any]) -> ProviderReport | None:
    kind = payload.get("type")
    if kind not in ("post_call_transcription", "call_initiation_failure"):
        return None  # post_call_audio carries base64 audio we do not keep; unknown types likewise
    data = payload.get("data")
    if not isinstance(data, dict):
        raise PayloadError("The report has no data object.", {"data": ["This field is required."]})
    metadata = _object(data.get("metadata"))
    phone_call = _object(metadata.get("phone_call"))
    client_data = _object(data.get("conversation_initiation_client_data"))
    report = ProviderReport(
        provider_call_id=_provider_call_id(data.get("conversation_id"), "data.conversation_id"),
        event=kind,
        call_id=find_call_id(
            phone_call.get("sip_header_dynamic_variables"), client_data.get("dynamic_variables")
        ),
    )
    if kind == "call_initiation_failure":
        body = _object(metadata.get("body"))
        reason = data.get("failure_reason") or body.get("error_reason") or "call_initiation_failure"
        report.ended_reason = _text(reason, REASON_MAX)
        return report
    transcript = data.get("transcript")
    if transcript is not None and not isinstance(transcript, list):
        raise PayloadError("The transcript is not a list.", {"data.transcript": ["Expected a list."]})
    for item in transcript or []:
        item = _object(item)
        turn = _turn(item.get("role"), item.get("message"), item.get("time_in_call_secs"))
        if turn:
            report.transcript.append(turn)
    report.summary = _text(_object(data.get("analysis")).get("transcript_summary"), SUMMARY_MAX)
    report.ended_reason = _text(metadata.get("termination_reason"), REASON_MAX)
    return report


def _parse_vapi(payload: dict[str, Any]) -> ProviderReport | None:
    message = payload.get("message")
    if not isinstance(message, dict):
        raise PayloadError("The body has no message object.", {"message": ["This field is required."]})
    if message.get("type") != "end-of-call-report":
        return None  # status updates, transcripts in flight, tool calls: not reports
    call = _object(message.get("call"))
    artifact = _object(message.get("artifact"))
    provider_details = _object(call.get("phoneCallProviderDetails"))
    transport = _object(call.get("transport"))
    overrides = _object(call.get("assistantOverrides"))
    report = ProviderReport(
        provider_call_id=_provider_call_id(call.get("id"), "message.call.id"),
        event="end-of-call-report",
        call_id=find_call_id(
            _object(provider_details.get("sip")).get("headers"),
            _object(transport.get("sip")).get("headers"),
            overrides.get("variableValues"),
            call.get("metadata"),
        ),
    )
    messages = artifact.get("messages")
    if isinstance(messages, list):
        for item in messages:
            item = _object(item)
            turn = _turn(item.get("role"), item.get("message"), item.get("secondsFromStart"))
            if turn:
                report.transcript.append(turn)
    if not report.transcript:
        report.transcript = _transcript_from_text(artifact.get("transcript") or message.get("transcript"))
    summary = _object(message.get("analysis")).get("summary") or message.get("summary")
    report.summary = _text(summary, SUMMARY_MAX)
    report.recording_url = _url(
        artifact.get("recordingUrl")
        or _object(artifact.get("recording")).get("url")
        or message.get("recordingUrl")
        or artifact.get("stereoRecordingUrl")
    )
    report.ended_reason = _text(message.get("endedReason"), REASON_MAX)
    return report


def _parse_retell(payload: dict[str, Any]) -> ProviderReport | None:
    event = payload.get("event")
    if event not in ("call_ended", "call_analyzed"):
        return None  # call_started and transfer_* carry no report
    call = payload.get("call")
    if not isinstance(call, dict):
        raise PayloadError("The body has no call object.", {"call": ["This field is required."]})
    report = ProviderReport(
        provider_call_id=_provider_call_id(call.get("call_id"), "call.call_id"),
        event=event,
        call_id=find_call_id(
            call.get("custom_sip_headers"),
            call.get("retell_llm_dynamic_variables"),
            call.get("collected_dynamic_variables"),
            call.get("metadata"),
        ),
    )
    transcript = call.get("transcript_object")
    if isinstance(transcript, list):
        for item in transcript:
            item = _object(item)
            words = item.get("words")
            first = _object(words[0]) if isinstance(words, list) and words else {}
            turn = _turn(item.get("role"), item.get("content"), first.get("start"))
            if turn:
                report.transcript.append(turn)
    if not report.transcript:
        report.transcript = _transcript_from_text(call.get("transcript"))
    report.summary = _text(_object(call.get("call_analysis")).get("call_summary"), SUMMARY_MAX)
    report.recording_url = _url(call.get("recording_url"))
    report.ended_reason = _text(call.get("disconnection_reason"), REASON_MAX)
    return report


_PARSERS = {
    Provider.ELEVENLABS: _parse_elevenlabs,
    Provider.VAPI: _parse_vapi,
    Provider.RETELL: _parse_retell,
}


def parse_report(provider: str, payload: Any) -> ProviderReport | None:
    """The report in a signed, decoded body; None for events without one. Raises PayloadError."""
    if not isinstance(payload, dict):
        raise PayloadError("The body is not a JSON object.")
    return _PARSERS[provider](payload)
