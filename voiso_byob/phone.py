"""E.164 phone numbers, validated with phonenumbers (libphonenumber)."""

from __future__ import annotations

from functools import lru_cache

import phonenumbers

from voiso_byob.errors import DomainError


def normalise_e164(text: str, *, field: str = "number") -> str:
    """'+1 (212) 555-0199' → '+12125550199'; anything not a valid international number raises."""
    text = (text or "").strip()
    number = _e164(text)
    if number is None:
        raise DomainError(
            "invalid_number",
            "Enter the number in international format, starting with + and the country code."
            if not text.startswith("+") or len(text) > 32
            else f"{text} is not a valid phone number.",
            field=field,
        )
    return number


@lru_cache(maxsize=4096)
def _e164(text: str) -> str | None:
    """Parsing with libphonenumber costs ~0.1 ms; the same numbers (a center's DIDs) recur on every call."""
    if not text.startswith("+") or len(text) > 32:
        return None
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed) or parsed.extension:
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
