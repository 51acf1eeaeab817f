"""Field checks for node configs: each one records a Problem instead of raising.

Shared by the validator (``schema.py``) and, for the value formats, the engine.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import phonenumbers

NODE_ID_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
KEY_RE = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
VARIABLE_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}(?:\.[A-Za-z0-9_-]{1,64})?$")
E164_RE = re.compile(r"^\+[1-9][0-9]{1,14}$")
PREFIX_RE = re.compile(r"^\+[0-9]{1,15}$")
NUMERIC_RE = re.compile(r"^\s*[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?\s*$")
MAX_URL = 2048


@dataclass(frozen=True)
class Problem:
    """One reason a graph cannot be published, pinned to a node (and field) when it has one."""

    node: str | None
    field: str | None
    code: str
    message: str


class TargetIndex(Protocol):
    """Which route targets exist in the contact center; the Django side answers from the database."""

    def has(self, kind: str, ref: str) -> bool: ...


def show(value: Any, limit: int = 40) -> str:
    """A value quoted for a message, cut short: garbage input must not make a huge message."""
    text = repr(value) if not isinstance(value, str) else f'"{value}"'
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_e164(value: Any) -> bool:
    """A canonical, valid E.164 number ('+442079460018', not '+44 20 7946 0018')."""
    if not isinstance(value, str) or not E164_RE.fullmatch(value):
        return False
    try:
        return phonenumbers.is_valid_number(phonenumbers.parse(value, None))
    except phonenumbers.NumberParseException:
        return False


def is_http_url(value: Any) -> bool:
    if not isinstance(value, str) or not value or len(value) > MAX_URL:
        return False
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        return False
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def as_number(text: str) -> float | None:
    """A decimal number in text ('42', '-1.5e3'), or None; never NaN or infinity."""
    if not NUMERIC_RE.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


class ConfigCheck:
    """Checks the fields of one config object of one node, collecting problems."""

    def __init__(self, node: str | None, config: Any, *, prefix: str = "", name: str = "The config") -> None:
        self.node = node
        self.config = config
        self.prefix = prefix
        self.name = name
        self.problems: list[Problem] = []

    def fail(self, field: str | None, code: str, message: str) -> None:
        where = f"{self.prefix}{field}" if field is not None else (self.prefix.rstrip(".") or None)
        self.problems.append(Problem(self.node, where, code, message))

    def is_object(self) -> bool:
        if isinstance(self.config, dict):
            return True
        self.fail(None, "invalid", f"{self.name} is a JSON object.")
        return False

    def no_unknown(self, allowed: set[str]) -> None:
        for key in self.config:
            if key not in allowed:
                self.fail(str(key), "unknown_field", f"Unknown field {show(key)}.")

    def _get(self, field: str, *, is_required: bool) -> Any:
        if field not in self.config:
            if is_required:
                self.fail(field, "required", f"{field} is required.")
            return None
        return self.config[field]

    def text(
        self, field: str, *, max_length: int, min_length: int = 1, is_required: bool = True
    ) -> str | None:
        value = self._get(field, is_required=is_required)
        if value is None and field not in self.config:
            return None
        if not isinstance(value, str) or not min_length <= len(value) <= max_length:
            self.fail(field, "invalid", f"{field} is text of {min_length} to {max_length} characters.")
            return None
        return value

    def number(
        self, field: str, low: float, high: float, *, is_integer: bool = False, is_required: bool = True
    ) -> float | None:
        value = self._get(field, is_required=is_required)
        if field not in self.config:
            return None
        # bool is an int in Python, but `true` is not a number of seconds.
        is_number = isinstance(value, int | float) and not isinstance(value, bool)
        if is_integer and is_number and not isinstance(value, int):
            is_number = False
        if not is_number or not math.isfinite(value) or not low <= value <= high:
            what = "a whole number" if is_integer else "a number"
            self.fail(field, "out_of_range", f"{field} is {what} from {low} to {high}.")
            return None
        return value

    def choice(self, field: str, options: Iterable[str]) -> str | None:
        options = tuple(options)
        value = self._get(field, is_required=True)
        if field in self.config and value not in options:
            self.fail(field, "invalid_choice", f"{field} is one of {', '.join(options)} (not {show(value)}).")
            return None
        return value if field in self.config else None

    def _pattern(self, field: str, pattern: re.Pattern[str], message: str) -> str | None:
        value = self._get(field, is_required=True)
        if field not in self.config:
            return None
        if not isinstance(value, str) or not pattern.fullmatch(value):
            self.fail(field, "invalid", message)
            return None
        return value

    def identifier(self, field: str) -> str | None:
        return self._pattern(
            field, NAME_RE, f"{field} is a lower-case letter, then letters, digits or _ (≤ 40)."
        )

    def variable(self, field: str) -> str | None:
        return self._pattern(
            field, VARIABLE_RE, f"{field} is a variable name such as crm.tier or call.caller."
        )

    def uuid(self, field: str) -> str | None:
        value = self._get(field, is_required=True)
        if field not in self.config:
            return None
        try:
            if not isinstance(value, str):
                raise ValueError
            return str(uuid.UUID(value))
        except ValueError:
            self.fail(field, "invalid", f"{field} is an id (UUID), not {show(value)}.")
            return None

    def url(self, field: str) -> None:
        value = self._get(field, is_required=True)
        if field in self.config and not is_http_url(value):
            self.fail(
                field, "invalid_url", f"{field} is an http:// or https:// URL (≤ {MAX_URL} characters)."
            )

    def e164(self, field: str) -> None:
        value = self._get(field, is_required=True)
        if field in self.config and not is_e164(value):
            self.fail(field, "invalid_number", e164_message(value))

    def numeric_text(self, field: str) -> None:
        value = self._get(field, is_required=True)
        if field in self.config and not (
            isinstance(value, str) and len(value) <= 64 and as_number(value) is not None
        ):
            self.fail(
                field,
                "invalid",
                f'{field} is a number written as text, such as "10" (gt and lt compare numbers).',
            )

    def items(self, field: str, fault: Callable[[Any], tuple[str, str] | None], *, max_items: int) -> None:
        """A list of 1..max_items entries; `fault(item)` gives (code, message) for a bad one."""
        value = self._get(field, is_required=True)
        if field not in self.config:
            return
        if not isinstance(value, list) or not 1 <= len(value) <= max_items:
            self.fail(field, "invalid", f"{field} is a list of 1 to {max_items} entries.")
            return
        for index, item in enumerate(value):
            problem = fault(item)
            if problem is not None:
                self.fail(f"{field}[{index}]", *problem)


def prefix_fault(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str) and PREFIX_RE.fullmatch(value):
        return None
    return "invalid", f'{show(value)} is not a number prefix ("+" and 1 to 15 digits).'


def region_fault(value: Any) -> tuple[str, str] | None:
    if isinstance(value, str) and value in phonenumbers.SUPPORTED_REGIONS:
        return None
    return "invalid", f"{show(value)} is not a region code such as GB or US."


def number_fault(value: Any) -> tuple[str, str] | None:
    return None if is_e164(value) else ("invalid_number", e164_message(value))


def e164_message(value: Any) -> str:
    """Why `value` is not a canonical E.164 number, with the canonical form when there is one."""
    if isinstance(value, str) and len(value) <= 40:
        try:
            parsed = phonenumbers.parse(value, None)
        except phonenumbers.NumberParseException:
            parsed = None
        if parsed is not None and phonenumbers.is_valid_number(parsed):
            canonical = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
            if canonical != value:
                return f"Write {value} as {canonical} (E.164, no spaces)."
    return f"{show(value)} is not a valid phone number in E.164 form (+ and country code)."
