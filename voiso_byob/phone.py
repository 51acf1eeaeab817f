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


# phonenumbers' number types by the short names stored in a center's denied list.
NUMBER_TYPES: dict[str, int] = {
    "fixed_line": phonenumbers.PhoneNumberType.FIXED_LINE,
    "mobile": phonenumbers.PhoneNumberType.MOBILE,
    "fixed_line_or_mobile": phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE,
    "toll_free": phonenumbers.PhoneNumberType.TOLL_FREE,
    "premium_rate": phonenumbers.PhoneNumberType.PREMIUM_RATE,
    "shared_cost": phonenumbers.PhoneNumberType.SHARED_COST,
    "voip": phonenumbers.PhoneNumberType.VOIP,
    "personal_number": phonenumbers.PhoneNumberType.PERSONAL_NUMBER,
    "pager": phonenumbers.PhoneNumberType.PAGER,
    "uan": phonenumbers.PhoneNumberType.UAN,
    "voicemail": phonenumbers.PhoneNumberType.VOICEMAIL,
    "unknown": phonenumbers.PhoneNumberType.UNKNOWN,
}


@lru_cache(maxsize=4096)
def number_facts(number: str) -> tuple[str, str]:
    """(region code, number type name) of an E.164 number: ("GB", "premium_rate"); ("", "unknown")
    when it does not parse. Cached like _e164: a center's handoff targets recur."""
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return "", "unknown"
    kind = phonenumbers.number_type(parsed)
    name = next((key for key, value in NUMBER_TYPES.items() if value == kind), "unknown")
    return phonenumbers.region_code_for_number(parsed) or "", name
