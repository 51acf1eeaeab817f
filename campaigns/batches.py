"""The lead import's and the bulk do-not-call add's bodies, checked by hand, all or nothing.

10,000 items through a DRF serializer each would cost seconds; these check each item's shape in
plain Python and report every bad item by index (the API answers them in one 400). What a number
means (invalid, do-not-call, duplicate) is for campaigns.services, not for these.
"""

from __future__ import annotations

import re
from typing import Any

from campaigns.models import Campaign
from campaigns.services import MAX_LEADS_PER_REQUEST, DoNotCallRow, LeadRow

# A SIP header name (RFC 3261 token) starting X-; ours (X-Voiso-…) cannot be set by a lead.
CONTEXT_HEADER = re.compile(r"X-[A-Za-z0-9!#$%&'*+.^_`|~-]{1,62}")
RESERVED_HEADER_PREFIX = "x-voiso-"
MAX_CONTEXT_HEADERS = 20
MAX_CONTEXT_VALUE = 1024
MAX_PHONE_TEXT = 64


class ShapeErrors(Exception):
    """Items of a batch that are not the declared shape: {index: {field: [messages]}}; nothing is stored."""

    def __init__(
        self, problems: dict[int, dict[str, list[str]]] | None = None, *, total: int = 0, message: str = ""
    ) -> None:
        super().__init__(message)
        self.problems = problems or {}
        self.total = total
        self.message = message


def _batch(data: object, *, what: str) -> list[Any]:
    if not isinstance(data, list):
        raise ShapeErrors(message=f"Send a JSON array of {what}.")
    if not data:
        raise ShapeErrors(message=f"Send at least one {what[:-1]}.")
    if len(data) > MAX_LEADS_PER_REQUEST:
        raise ShapeErrors(message=f"At most {MAX_LEADS_PER_REQUEST} {what} per request.")
    return data


def _text(
    item: dict[str, Any], name: str, errors: dict[str, list[str]], *, limit: int, required: bool = False
) -> str:
    if name not in item:
        if required:
            errors[name] = ["This field is required."]
        return ""
    value = item[name]
    if not isinstance(value, str):
        errors[name] = ["Not a valid string."]
        return ""
    if len(value) > limit:
        errors[name] = [f"Ensure this field has no more than {limit} characters."]
        return ""
    if "\x00" in value:  # PostgreSQL's text cannot hold NUL
        errors[name] = ["Null characters are not allowed."]
        return ""
    return value


def _context(value: object, errors: dict[str, list[str]]) -> dict[str, str]:
    if not isinstance(value, dict):
        errors["context"] = ["An object of X- header names to text values."]
        return {}
    if len(value) > MAX_CONTEXT_HEADERS:
        errors["context"] = [f"At most {MAX_CONTEXT_HEADERS} headers."]
        return {}
    problems = []
    seen: set[str] = set()
    for name, text in value.items():
        if not CONTEXT_HEADER.fullmatch(name):
            problems.append(f"{name[:70]!r} is not a header name starting X-.")
        elif name.lower().startswith(RESERVED_HEADER_PREFIX):
            problems.append(f"{name} is reserved: X-Voiso- headers are set by the dialer.")
        elif name.lower() in seen:
            problems.append(f"{name} is given twice (header names ignore case).")
        elif not isinstance(text, str) or len(text) > MAX_CONTEXT_VALUE:
            problems.append(f"{name}: text of at most {MAX_CONTEXT_VALUE} characters.")
        elif "\r" in text or "\n" in text or "\x00" in text:
            problems.append(f"{name}: a header value cannot contain CR, LF or NUL.")
        seen.add(name.lower())
    if problems:
        errors["context"] = problems
    return value  # type: ignore[return-value]


def lead_rows(data: object) -> list[LeadRow]:
    """A lead import's body as rows; raises ShapeErrors (every bad item, by index) on any shape problem."""
    items = _batch(data, what="leads")
    rows: list[LeadRow] = []
    problems: dict[int, dict[str, list[str]]] = {}
    for index, item in enumerate(items):
        errors: dict[str, list[str]] = {}
        if not isinstance(item, dict):
            problems[index] = {"non_field_errors": ["Each lead is an object."]}
            continue
        phone = _text(item, "phone_number", errors, limit=MAX_PHONE_TEXT, required=True)
        name = _text(item, "name", errors, limit=150)
        source = _text(item, "source", errors, limit=150)
        priority = item.get("priority", 500)
        if isinstance(priority, bool) or not isinstance(priority, int) or not 1 <= priority <= 1000:
            errors["priority"] = ["A whole number from 1 to 1000."]
        active = item.get("active", True)
        if not isinstance(active, bool):
            errors["active"] = ["Must be true or false."]
        context = _context(item["context"], errors) if "context" in item else {}
        if errors:
            problems[index] = errors
        elif not problems:
            rows.append(LeadRow(phone, name, source, priority, active, dict(context)))
    if problems:
        raise ShapeErrors(problems, total=len(items))
    return rows


def do_not_call_rows(data: object, *, campaigns: dict[str, Campaign]) -> list[DoNotCallRow]:
    """A bulk add's body as rows; raises ShapeErrors by index. `campaigns`: the center's, by id text."""
    items = _batch(data, what="numbers")
    rows: list[DoNotCallRow] = []
    problems: dict[int, dict[str, list[str]]] = {}
    for index, item in enumerate(items):
        errors: dict[str, list[str]] = {}
        if not isinstance(item, dict):
            problems[index] = {"non_field_errors": ["Each number is an object."]}
            continue
        phone = _text(item, "phone", errors, limit=MAX_PHONE_TEXT, required=True)
        reason = _text(item, "reason", errors, limit=255)
        campaign = None
        given = item.get("campaign")
        if given is not None:
            campaign = campaigns.get(given.lower()) if isinstance(given, str) else None
            if campaign is None:
                errors["campaign"] = ["No such campaign in this contact center."]
        if errors:
            problems[index] = errors
        elif not problems:
            rows.append(DoNotCallRow(phone=phone, reason=reason, campaign=campaign))
    if problems:
        raise ShapeErrors(problems, total=len(items))
    return rows
