"""RFC 3966 telephone-subscriber (tel: URIs and sip user=phone users) → E.164 via phonenumbers."""

from __future__ import annotations

import re
from dataclasses import dataclass

import phonenumbers

from voiso_byob.sip.syntax import (
    DECODED_FORBIDDEN_RE,
    PARAM_RE,
    PLAIN_PARAM_RE,
    ReferToError,
    put_unique,
    unescape,
)

_PHONEDIGITS_RE = re.compile(r"[0-9().\-]+")
_LOCAL_DIGITS_RE = re.compile(r"[0-9A-Fa-f*#().\-]+")
_PNAME_RE = re.compile(r"[A-Za-z0-9-]+")
# RFC 3966 domainname: labels of letters, digits and inner hyphens, the top one starting with a letter.
_DOMAIN_RE = re.compile(
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?"
)
# An ISDN subaddress is at most 20 octets (Q.931), 40 hex digits as NSAP text.
_ISUB_RE = re.compile(r"[A-Za-z0-9\-_.!~*'()]{1,40}")
_VISUAL_SEPARATORS = str.maketrans("", "", "().-")
# Extensions are stored with the handoff they belong to (reporting.Handoff.target_extension).
MAX_EXT_DIGITS = 32


@dataclass(frozen=True, slots=True)
class Subscriber:
    """A telephone-subscriber: a global number (`number`, E.164) or a local one (`local_number`
    within `phone_context`), with the `ext` and `isub` that must reach the dialled party."""

    number: str | None
    local_number: str | None
    phone_context: str | None  # "+<digits>" or a lower-case domain name, for a local number
    ext: str | None  # digits only, visual separators removed
    isub: str | None
    params: dict[str, str]  # every parameter but phone-context, as given (ext and isub included)


def telephone_subscriber(text: str, *, is_escaped: bool, syntax_code: str) -> Subscriber:
    """Parse `text`; raise `syntax_code` (400) for what is not a telephone-subscriber.

    `is_escaped` is False for a sip user=phone user, which was already unescaped once and must
    not be decoded twice. A local number is NOT turned into E.164 by its context: RFC 3966 §5.1.5
    says the context identifies the numbering plan the number is valid in, not a prefix to dial
    (`555-0123;phone-context=+1-201` may be a private number of a company in +1 201). The resolver
    decides what a local number reaches (routing.refer).
    """
    digits, *param_parts = text.split(";")
    params = _params(param_parts, is_escaped=is_escaped, syntax_code=syntax_code)
    context = params.pop("phone-context", None)
    ext, isub = _ext(params.get("ext")), params.get("isub")
    if digits.startswith("+"):
        if context is not None:
            raise ReferToError(syntax_code, "phone-context belongs only to local numbers.")
        if not is_phonedigits(digits[1:]):
            raise ReferToError(syntax_code, "Invalid global telephone number.")
        return Subscriber(e164(digits[1:]), None, None, ext, isub, params)
    local = digits.translate(_VISUAL_SEPARATORS)
    if not _LOCAL_DIGITS_RE.fullmatch(digits) or not local:
        raise ReferToError(syntax_code, "Invalid telephone number.")
    if context is None:
        raise ReferToError("invalid_number", "A local number needs a phone-context.")
    return Subscriber(None, local.upper(), _context(context, syntax_code), ext, isub, params)


def _context(text: str, syntax_code: str) -> str:
    """`descriptor = domainname / global-number-digits`, normalised for comparison."""
    if text.startswith("+") and is_phonedigits(text[1:]):
        return "+" + text[1:].translate(_VISUAL_SEPARATORS)
    if _DOMAIN_RE.fullmatch(text):
        return text.rstrip(".").lower()
    raise ReferToError(syntax_code, "phone-context must be a domain name or +digits.")


def _ext(value: str | None) -> str | None:
    if value is None:
        return None
    digits = value.translate(_VISUAL_SEPARATORS)
    if len(digits) > MAX_EXT_DIGITS:
        raise ReferToError(
            "invalid_number", f"An extension has at most {MAX_EXT_DIGITS} digits.", sip_status=404
        )
    return digits


def _params(parts: list[str], *, is_escaped: bool, syntax_code: str) -> dict[str, str]:
    value_re = PARAM_RE if is_escaped else PLAIN_PARAM_RE
    params: dict[str, str] = {}
    for part in parts:
        name, has_value, value = part.partition("=")
        if not _PNAME_RE.fullmatch(name) or (has_value and not value_re.fullmatch(value)):
            raise ReferToError(syntax_code, "Invalid telephone number parameter.")
        name, value = name.lower(), unescape(value) if is_escaped else value
        if (
            DECODED_FORBIDDEN_RE.search(value)
            or (name == "ext" and not is_phonedigits(value))
            or (name == "isub" and not _ISUB_RE.fullmatch(value))
        ):
            raise ReferToError(syntax_code, "Invalid telephone number parameter.")
        put_unique(params, name, value, code=syntax_code)
    return params


def is_phonedigits(text: str) -> bool:
    """At least one ASCII digit, optionally with visual separators `- . ( )`."""
    return bool(_PHONEDIGITS_RE.fullmatch(text)) and bool(text.translate(_VISUAL_SEPARATORS))


# phonenumbers' verdicts that mean "digits are missing": SIP's 484 Address Incomplete.
_INCOMPLETE = frozenset(
    {
        phonenumbers.ValidationResult.TOO_SHORT,
        phonenumbers.ValidationResult.IS_POSSIBLE_LOCAL_ONLY,
    }
)


def e164(digits_with_separators: str) -> str:
    """The E.164 form of a global number; a well-formed number that no numbering plan assigns is
    refused as a policy answer, not a syntax error: 484 when digits are missing, else 404."""
    digits = digits_with_separators.translate(_VISUAL_SEPARATORS)
    if len(digits) > 15:
        raise ReferToError("invalid_number", "An E.164 number has at most 15 digits.", sip_status=404)
    try:
        parsed = phonenumbers.parse(f"+{digits}", None)
    except phonenumbers.NumberParseException:
        parsed = None
    if parsed is None or not phonenumbers.is_valid_number(parsed):
        incomplete = parsed is not None and phonenumbers.is_possible_number_with_reason(parsed) in _INCOMPLETE
        raise ReferToError(
            "invalid_number",
            f"+{digits} is {'an incomplete' if incomplete else 'not a valid'} phone number.",
            sip_status=484 if incomplete else 404,
        )
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
