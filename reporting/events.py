"""Validation of `POST /api/v1/telephony/events` (the telephony contract in design.md).

A request is one event object or `{"events": [...]}` with 1..1000 of them. A batch is all or
nothing: `validate_events()` checks every event, and any problem rejects the whole request with
the errors of every bad event by its index, before anything is stored.

Each event is `{"id", "type", "call_id", "occurred_at", "data"}`. `data` is checked per type
(`DATA_RULES`); keys the contract does not name are kept as received, never refused, so the
SIP layer can add fields without breaking ingestion. What PostgreSQL cannot store (NUL
characters, unpaired surrogates, NaN / infinite numbers) is refused here, so no input reaches
the database that would make it fail with a 500.
"""

from __future__ import annotations

import json
import math
import re
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db.models import Q

from reporting.models import CALL_ID_MAX, EVENT_ID_MAX, EventType
from routing.models import Queue
from virtual_agents.models import VirtualAgent
from voiso_byob import jsontext
from voiso_byob.models import ContactCenter

MAX_BATCH = 1000
MAX_HEADERS = 50
MAX_DATA_BYTES = 16_384  # one event's `data`, as JSON; a batch of 1000 stays far below the body limit

# RFC 3339 section 5.6, date-time: the offset is required (a naive time is ambiguous).
_RFC3339 = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$"
)
# What switches send nearly always: UTC with a Z and at most microseconds. datetime.fromisoformat
# takes it as is, already in UTC (a fifth of the general path's time); anything else goes that way.
_UTC_Z = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z\Z")
_DIGITS = re.compile(r"^[0-9]{1,20}$")
_url = URLValidator(schemes=["http", "https"])
# The usual recording URL — http(s), an ASCII host name under a top-level domain, a port, a path —
# is a subset of what _url accepts (property-tested), checked with one match instead of _url's
# split, regex and host checks (measured: 10 µs per URL). Anything else goes through _url.
_PLAIN_URL = re.compile(
    r"https?://((?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63})(?::[0-9]{1,5})?(?:[/?#][^\s]*)?\Z",
    re.IGNORECASE,
)


def is_http_url(value: str) -> bool:
    """Whether `value` is an http(s) URL Django's URLValidator accepts."""
    plain = _PLAIN_URL.match(value)
    if plain is not None and len(plain.group(1)) <= 253:
        return True
    try:
        _url(value)
    except ValidationError:
        return False
    return True


class EventsRejected(Exception):
    """The request as a whole is refused: a 400 (or 413/415) in the API's error shape."""

    def __init__(self, code: str, message: str, *, status: int = 400, **extra: Any) -> None:
        super().__init__(message)
        self.code, self.message, self.status, self.extra = code, message, status, extra

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.extra}}


@dataclass(frozen=True, slots=True)
class EventIn:
    """One valid event. `data` is as received (unknown keys included)."""

    event_id: str
    type: str
    call_id: str
    occurred_at: datetime  # aware, UTC
    data: dict[str, Any]
    # `data` as JSON text, when validation made it (storage then sends it as is, not encoded again).
    data_json: str | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class AgentInfo:
    """A virtual agent as events name it (by id or by extension)."""

    id: str
    name: str
    extension: str


@dataclass(frozen=True, slots=True)
class QueueInfo:
    """A queue as a queue.entered event names it (by id or by extension)."""

    id: str
    name: str
    extension: str


# --- the body -------------------------------------------------------------------------------


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _no_constant(text: str) -> Any:
    raise ValueError(f"{text} is not valid JSON")


def parse_body(raw: bytes) -> Any:
    """The JSON body, refusing what JSON allows but PostgreSQL's jsonb cannot hold."""
    try:
        return json.loads(raw, parse_float=_finite_float, parse_constant=_no_constant)
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        message = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise EventsRejected("parse_error", f"JSON parse error - {message}") from None


def event_list(body: Any) -> list[Any]:
    """One event or `{"events": [...]}` → the list of (unchecked) events."""
    if not isinstance(body, dict):
        raise EventsRejected(
            "invalid_body", 'Send one event object, or {"events": [...]} with 1 to 1000 events.'
        )
    if "events" not in body:
        return [body]
    events = body["events"]
    if not isinstance(events, list):
        raise EventsRejected("invalid_body", '"events" must be a list of event objects.')
    if not events:
        raise EventsRejected("empty_batch", '"events" must hold at least one event.')
    if len(events) > MAX_BATCH:
        raise EventsRejected(
            "batch_too_large", f"At most {MAX_BATCH} events per request; this one has {len(events)}."
        )
    return events


# --- fields ---------------------------------------------------------------------------------


class _Errors:
    def __init__(self) -> None:
        self.fields: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        self.fields.setdefault(name, []).append(message)


def _storable(text: str) -> bool:
    """Whether PostgreSQL can keep this text: no NUL character, valid UTF-8 (no unpaired surrogate)."""
    if "\x00" in text:
        return False
    if text.isascii():  # no surrogate in it: no need to encode it to know
        return True
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # an unpaired surrogate such as "\ud800"
        return False
    return True


def _storable_json(data: dict[str, Any]) -> str | None:
    """`data` as JSON text if PostgreSQL's jsonb can keep it, else None.

    One pass in C instead of walking the structure: json.dumps escapes a NUL as \\u0000 (refused;
    a caller's literal backslash-u0000 text is refused with it, harmlessly rare) and keeps unpaired
    surrogates, which then fail to encode as UTF-8.
    """
    text = jsontext.dumps(data)
    if "\\u0000" in text:
        return None
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return None
    return text


def _text(
    data: Mapping[str, Any],
    key: str,
    errors: _Errors,
    *,
    max_length: int,
    required: bool = True,
    allow_blank: bool = False,
    label: str | None = None,
) -> str | None:
    value = data.get(key)
    # The usual case first, in one expression: a valid value needs no error bookkeeping.
    if (
        value.__class__ is str
        and len(value) <= max_length
        and (allow_blank or value.strip())
        and "\x00" not in value
        and (value.isascii() or _storable(value))
    ):
        return value
    name = label or key
    if key not in data or data[key] is None:
        if required:
            errors.add(name, "This field is required.")
        return None
    value = data[key]
    if not isinstance(value, str):
        errors.add(name, "Not a valid string.")
        return None
    if not value.strip() and not allow_blank:
        errors.add(name, "This field may not be blank.")
        return None
    if len(value) > max_length:
        errors.add(name, f"Ensure this field has no more than {max_length} characters.")
        return None
    if not _storable(value):
        errors.add(name, "Contains characters that cannot be stored (NUL or unpaired surrogates).")
        return None
    return value


def _reference(data: Mapping[str, Any], key: str, errors: _Errors) -> None:
    """campaign_id / lead_id: the dialer's reference, a string or an integer."""
    if key not in data or data[key] is None:
        return
    value = data[key]
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.strip():
        errors.add(f"data.{key}", "Must be a non-blank string or an integer.")
    elif len(value) > 64:
        errors.add(f"data.{key}", "Ensure this field has no more than 64 characters.")


def _sip_status(data: Mapping[str, Any], errors: _Errors, *, required: bool) -> None:
    if "sip_status" not in data or data["sip_status"] is None:
        if required:
            errors.add("data.sip_status", "This field is required.")
        return
    value = data["sip_status"]
    if isinstance(value, bool) or not isinstance(value, int) or not 100 <= value <= 699:
        errors.add("data.sip_status", "Must be a SIP status code, an integer from 100 to 699.")


def _virtual_agent(data: Mapping[str, Any], errors: _Errors) -> None:
    value = _text(data, "virtual_agent", errors, max_length=64, label="data.virtual_agent")
    if value is not None and agent_ref_key(value) is None:
        errors.add("data.virtual_agent", "Must be a virtual agent's id (UUID) or its extension.")


def _call_started(data: Mapping[str, Any], errors: _Errors) -> None:
    direction = data.get("direction")
    if direction is None:
        errors.add("data.direction", "This field is required.")
    elif direction not in ("inbound", "outbound"):
        errors.add("data.direction", '"inbound" or "outbound".')
    _text(data, "from", errors, max_length=64, allow_blank=True, label="data.from")
    _text(data, "to", errors, max_length=64, label="data.to")
    _reference(data, "campaign_id", errors)
    _reference(data, "lead_id", errors)


def _bot_connected(data: Mapping[str, Any], errors: _Errors) -> None:
    _virtual_agent(data, errors)
    _text(data, "provider_call_id", errors, max_length=200, required=False, label="data.provider_call_id")


def _handoff_requested(data: Mapping[str, Any], errors: _Errors) -> None:
    _virtual_agent(data, errors)
    _text(data, "refer_to", errors, max_length=2048, label="data.refer_to")
    _text(
        data,
        "referred_by",
        errors,
        max_length=2048,
        required=False,
        allow_blank=True,
        label="data.referred_by",
    )
    headers = data.get("headers")
    if headers is None:
        return
    if not isinstance(headers, dict):
        errors.add("data.headers", "Must be an object of header name → text.")
    elif len(headers) > MAX_HEADERS:
        errors.add("data.headers", f"At most {MAX_HEADERS} headers.")
    else:
        for name, value in headers.items():
            if not isinstance(value, str) or len(name) > 100 or len(value) > 1024:
                errors.add(
                    "data.headers", f"{name[:100]}: must be text (name ≤ 100, value ≤ 1024 characters)."
                )


def _queue_entered(data: Mapping[str, Any], errors: _Errors) -> None:
    # The X-Voiso-Target-Id of the route answer's dial (the queue's id), or the queue's extension.
    value = _text(data, "queue", errors, max_length=64, label="data.queue")
    if value is not None and agent_ref_key(value) is None:
        errors.add("data.queue", "Must be a queue's id (UUID) or its extension.")


def _handoff_accepted(data: Mapping[str, Any], errors: _Errors) -> None:
    _sip_status(data, errors, required=True)


def _handoff_completed(data: Mapping[str, Any], errors: _Errors) -> None:
    _text(
        data, "answered_by", errors, max_length=64, required=False, allow_blank=True, label="data.answered_by"
    )


def _handoff_failed(data: Mapping[str, Any], errors: _Errors) -> None:
    _text(data, "reason", errors, max_length=200, label="data.reason")
    _sip_status(data, errors, required=False)


def _agent_connected(data: Mapping[str, Any], errors: _Errors) -> None:
    value = _text(data, "extension", errors, max_length=20, label="data.extension")
    if value is not None and not _DIGITS.match(value):
        errors.add("data.extension", "An extension is digits only.")


def _call_ended(data: Mapping[str, Any], errors: _Errors) -> None:
    _text(data, "end_reason", errors, max_length=64, label="data.end_reason")
    hangup_by = data.get("hangup_by")
    if hangup_by is not None and hangup_by not in ("caller", "bot", "agent", "system"):
        errors.add("data.hangup_by", 'One of "caller", "bot", "agent", "system".')


def _recording_ready(data: Mapping[str, Any], errors: _Errors) -> None:
    url = _text(data, "url", errors, max_length=2000, label="data.url")
    if url is not None and not is_http_url(url):
        errors.add("data.url", "Enter a valid http(s) URL.")


DATA_RULES: dict[str, Callable[[Mapping[str, Any], _Errors], None]] = {
    EventType.CALL_STARTED: _call_started,
    EventType.BOT_CONNECTED: _bot_connected,
    EventType.HANDOFF_REQUESTED: _handoff_requested,
    EventType.HANDOFF_ACCEPTED: _handoff_accepted,
    EventType.HANDOFF_COMPLETED: _handoff_completed,
    EventType.HANDOFF_FAILED: _handoff_failed,
    EventType.QUEUE_ENTERED: _queue_entered,
    EventType.AGENT_CONNECTED: _agent_connected,
    EventType.CALL_ENDED: _call_ended,
    EventType.RECORDING_READY: _recording_ready,
}


def parse_occurred_at(value: Any) -> datetime | None:
    """RFC 3339 with an offset → an aware UTC datetime; None when it is not one."""
    if not isinstance(value, str):
        return None
    if _UTC_Z.match(value):
        try:
            return datetime.fromisoformat(value)
        except ValueError:  # 2026-02-30, 25:00
            return None
    match = _RFC3339.match(value)
    if match is None:
        return None
    fraction = (match.group(7) or "")[:7]  # Python keeps microseconds; more digits are truncated
    offset = match.group(8).upper()
    text = f"{value[:10]}T{value[11:19]}{fraction}{'+00:00' if offset == 'Z' else offset}"
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError):  # 2026-02-30, 25:00, or a year-1 time pushed past the range
        return None


def agent_ref_key(ref: str) -> str | None:
    """How an event names a virtual agent (or a queue), canonical: 'id:<uuid>' or 'ext:<digits>';
    None if neither."""
    if _DIGITS.match(ref):
        return f"ext:{ref}"
    try:
        return f"id:{uuid.UUID(ref)}"
    except ValueError:
        return None


def check_event(item: Any) -> tuple[EventIn | None, dict[str, list[str]]]:
    """One event's shape (no database); the event, or its field errors."""
    errors = _Errors()
    if not isinstance(item, dict):
        return None, {"non_field_errors": ["Each event must be an object."]}
    event_id = _text(item, "id", errors, max_length=EVENT_ID_MAX)
    event_type = item.get("type")
    if event_type is None:
        errors.add("type", "This field is required.")
    elif not isinstance(event_type, str) or event_type not in DATA_RULES:  # a list is not hashable
        errors.add("type", f"Unknown event type; one of: {', '.join(DATA_RULES)}.")
        event_type = None
    call_id = _text(item, "call_id", errors, max_length=CALL_ID_MAX)
    occurred_at = None
    if item.get("occurred_at") is None:
        errors.add("occurred_at", "This field is required.")
    else:
        occurred_at = parse_occurred_at(item["occurred_at"])
        if occurred_at is None:
            errors.add("occurred_at", "Use RFC 3339 with an offset, e.g. 2026-05-01T09:30:00.250Z.")
    data = item.get("data", {})
    if data is None:
        data = {}
    text: str | None = None
    if not isinstance(data, dict):
        errors.add("data", "Must be an object.")
    elif (text := _storable_json(data)) is None:
        errors.add("data", "Holds characters that cannot be stored (NUL or unpaired surrogates).")
    elif len(text) > MAX_DATA_BYTES:
        errors.add("data", f"At most {MAX_DATA_BYTES} characters of JSON per event.")
    elif event_type is not None:
        DATA_RULES[event_type](data, errors)
    if errors.fields:
        return None, errors.fields
    assert event_id is not None and call_id is not None and occurred_at is not None
    return EventIn(event_id, str(event_type), call_id, occurred_at, data, text), {}


class RecentLookups:
    """Names that resolved in the last few seconds, per process: a switch repeats the same few.

    Only successes are kept, never misses or refusals: a bot, queue or extension created a moment
    ago is found at once, and nothing is ever recorded as unknown because of this memo. What it
    can do is keep a deleted or renamed object's answer for up to `SECONDS` (the write paths then
    store NULL for a deleted row: see reporting.ingest_sql._existing). Keyed by contact center.
    """

    SECONDS = 10.0
    MAX_ENTRIES = 50_000

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str, str], tuple[float, Any]] = {}

    def get(self, kind: str, center: ContactCenter, keys: Iterable[str]) -> tuple[dict[str, Any], set[str]]:
        """(what is known, what to look up)."""
        now = time.monotonic()
        found: dict[str, Any] = {}
        missing: set[str] = set()
        for key in keys:
            entry = self._entries.get((kind, str(center.pk), key))
            if entry is not None and entry[0] > now:
                found[key] = entry[1]
            else:
                missing.add(key)
        return found, missing

    def put(self, kind: str, center: ContactCenter, values: Mapping[str, Any]) -> None:
        if len(self._entries) > self.MAX_ENTRIES:
            self._entries.clear()
        expires = time.monotonic() + self.SECONDS
        for key, value in values.items():
            self._entries[(kind, str(center.pk), key)] = (expires, value)


recent_lookups = RecentLookups()


def find_virtual_agents(center: ContactCenter, refs: Iterable[str]) -> dict[str, AgentInfo]:
    """Virtual agents of `center` named by these refs (ids or extensions) → by canonical key."""
    keys = {key for ref in refs if (key := agent_ref_key(ref)) is not None}
    known, missing = recent_lookups.get("agent", center, keys)
    if missing:
        looked_up = _find_virtual_agents(center, missing)
        recent_lookups.put("agent", center, looked_up)
        known.update(looked_up)
    return known


def _split_keys(keys: set[str]) -> tuple[set[str], set[str]]:
    """Canonical keys (agent_ref_key) → (ids, extensions)."""
    ids: set[str] = set()
    digits: set[str] = set()
    for key in keys:
        kind, value = key.split(":", 1)
        (ids if kind == "id" else digits).add(value)
    return ids, digits


def find_queues(center: ContactCenter, refs: Iterable[str]) -> dict[str, QueueInfo]:
    """Queues of `center` named by these refs (ids or extensions) → by canonical key."""
    keys = {key for ref in refs if (key := agent_ref_key(ref)) is not None}
    known, missing = recent_lookups.get("queue", center, keys)
    if missing:
        ids, digits = _split_keys(missing)
        rows = (
            Queue.objects.for_center(center)
            .filter(Q(id__in=ids) | Q(extension__digits__in=digits))
            .values_list("id", "name", "extension__digits")
        )
        looked_up: dict[str, QueueInfo] = {}
        for pk, name, extension in rows:
            info = QueueInfo(str(pk), name, extension)
            looked_up[f"id:{pk}"] = looked_up[f"ext:{extension}"] = info
        recent_lookups.put("queue", center, looked_up)
        known.update(looked_up)
    return known


def _find_virtual_agents(center: ContactCenter, keys: set[str]) -> dict[str, AgentInfo]:
    ids, digits = _split_keys(keys)
    found: dict[str, AgentInfo] = {}
    rows = (
        VirtualAgent.objects.for_center(center)
        .filter(Q(id__in=ids) | Q(extension__digits__in=digits))
        .values_list("id", "name", "extension__digits")
    )
    for pk, name, extension in rows:
        info = AgentInfo(str(pk), name, extension or "")
        found[f"id:{pk}"] = info
        if extension:
            found[f"ext:{extension}"] = info
    return found


def validate_events(center: ContactCenter, body: Any) -> tuple[list[EventIn], dict[str, AgentInfo]]:
    """Every event of the request checked, or EventsRejected with each bad event's errors by index.

    Returns the events in request order and the virtual agents they name (looked up once).
    """
    items = event_list(body)
    checked: list[tuple[int, EventIn]] = []
    errors: list[dict[str, Any]] = []
    for index, item in enumerate(items):
        event, fields = check_event(item)
        if event is None:
            errors.append({"index": index, "fields": fields})
        else:
            checked.append((index, event))
    refs = {e.data["virtual_agent"] for _, e in checked if "virtual_agent" in e.data}
    agents = find_virtual_agents(center, refs) if refs else {}
    for index, event in checked:
        ref = event.data.get("virtual_agent")
        if ref is not None and agent_ref_key(ref) not in agents:
            message = "No such virtual agent in this contact center."
            errors.append({"index": index, "fields": {"data.virtual_agent": [message]}})
    queue_refs = {e.data["queue"] for _, e in checked if e.type == EventType.QUEUE_ENTERED}
    queues = find_queues(center, queue_refs) if queue_refs else {}
    for index, event in checked:
        if event.type == EventType.QUEUE_ENTERED and agent_ref_key(event.data["queue"]) not in queues:
            errors.append(
                {"index": index, "fields": {"data.queue": ["No such queue in this contact center."]}}
            )
    if errors:
        errors.sort(key=lambda error: error["index"])
        first = errors[0]
        name, messages = next(iter(first["fields"].items()))
        raise EventsRejected(
            "invalid_events",
            f"{len(errors)} of {len(items)} event(s) are invalid; nothing was stored "
            f"(first: event {first['index']}, {name}: {messages[0]})",
            errors=errors,
        )
    return [event for _, event in checked], agents
