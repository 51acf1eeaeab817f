"""E.164 phone numbers, validated with phonenumbers (libphonenumber)."""

from __future__ import annotations

import phonenumbers

from voiso_byob.errors import DomainError


def normalise_e164(text: str, *, field: str = "number") -> str:
    """'+1 (212) 555-0199' → '+12125550199'; anything not a valid international number raises."""
    text = (text or "").strip()
    if not text.startswith("+") or len(text) > 32:
        raise DomainError(
            "invalid_number",
            "Enter the number in international format, starting with + and the country code.",
            field=field,
        )
    try:
        parsed = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed) or parsed.extension:
        raise DomainError("invalid_number", f"{text} is not a valid phone number.", field=field)
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
