"""RFC 3966 telephone-subscriber (tel: URIs and sip user=phone users) → E.164 via phonenumbers."""

from __future__ import annotations

import re

import phonenumbers

from voiso_byob.sip.syntax import (
    DECODED_FORBIDDEN_RE,
    DIGITS_RE,
    PARAM_RE,
    PLAIN_PARAM_RE,
    ReferToError,
    put_unique,
    unescape,
)

_PHONEDIGITS_RE = re.compile(r"[0-9().\-]+")
_LOCAL_DIGITS_RE = re.compile(r"[0-9A-Fa-f*#().\-]+")
_PNAME_RE = re.compile(r"[A-Za-z0-9-]+")
_VISUAL_SEPARATORS = str.maketrans("", "", "().-")


def telephone_subscriber(text: str, *, is_escaped: bool, syntax_code: str) -> tuple[str, dict[str, str]]:
    """(E.164 number, parameters other than phone-context).

    `is_escaped` is False for a sip user=phone user, which was already unescaped once and must
    not be decoded twice. `syntax_code` is the error for text that is not a telephone-subscriber.
    """
    digits, *param_parts = text.split(";")
    params = _params(param_parts, is_escaped=is_escaped, syntax_code=syntax_code)
    context = params.pop("phone-context", None)
    if digits.startswith("+"):
        if context is not None:
            raise ReferToError(syntax_code, "phone-context belongs only to local numbers.")
        if not is_phonedigits(digits[1:]):
            raise ReferToError(syntax_code, "Invalid global telephone number.")
        return e164(digits[1:]), params
    local = digits.translate(_VISUAL_SEPARATORS)
    if not _LOCAL_DIGITS_RE.fullmatch(digits) or not local:
        raise ReferToError(syntax_code, "Invalid telephone number.")
    if context is None:
        raise ReferToError("invalid_number", "A local number needs a phone-context.")
    # A domain context names a private numbering plan; only a digits prefix yields E.164, and
    # we route external transfers to E.164 numbers only.
    if not context.startswith("+") or not is_phonedigits(context[1:]) or not DIGITS_RE.fullmatch(local):
        raise ReferToError("invalid_number", "This local number cannot be turned into an E.164 number.")
    return e164(context[1:] + local), params


def _params(parts: list[str], *, is_escaped: bool, syntax_code: str) -> dict[str, str]:
    value_re = PARAM_RE if is_escaped else PLAIN_PARAM_RE
    params: dict[str, str] = {}
    for part in parts:
        name, has_value, value = part.partition("=")
        if not _PNAME_RE.fullmatch(name) or (has_value and not value_re.fullmatch(value)):
            raise ReferToError(syntax_code, "Invalid telephone number parameter.")
        name, value = name.lower(), unescape(value) if is_escaped else value
        if DECODED_FORBIDDEN_RE.search(value) or (name == "ext" and not is_phonedigits(value)):
            raise ReferToError(syntax_code, "Invalid telephone number parameter.")
        put_unique(params, name, value, code=syntax_code)
    return params


def is_phonedigits(text: str) -> bool:
    """At least one ASCII digit, optionally with visual separators `- . ( )`."""
    return bool(_PHONEDIGITS_RE.fullmatch(text)) and bool(text.translate(_VISUAL_SEPARATORS))


def e164(digits_with_separators: str) -> str:
    digits = digits_with_separators.translate(_VISUAL_SEPARATORS)
    if len(digits) > 15:
        raise ReferToError("invalid_number", "An E.164 number has at most 15 digits.")
    try:
        parsed = phonenumbers.parse(f"+{digits}", None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        raise ReferToError("invalid_number", f"+{digits} is not a valid phone number.")
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
