"""RFC 3261 §25.1 building blocks shared by the Refer-To parser: character sets, %-escapes, the error."""

from __future__ import annotations

import re
import string
from urllib.parse import unquote_to_bytes

from voiso_byob.errors import DomainError


class ReferToError(DomainError):
    """A Refer-To value we refuse; `sip_status` is what the switch answers the REFER with."""

    def __init__(self, code: str, message: str, sip_status: int = 400) -> None:
        super().__init__(code, message, field="refer_to", status=sip_status)
        self.sip_status = sip_status

    def __repr__(self) -> str:
        return f"ReferToError({self.code!r}, {self.message!r}, sip_status={self.sip_status})"


def malformed(message: str) -> ReferToError:
    return ReferToError("malformed_uri", message)


# C0 controls except HTAB, DEL, C1 controls (NEL), Unicode line breaks and lone surrogates: any
# of them could split a header downstream or break a log line or a database write.
FORBIDDEN_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# After %-decoding, a tab is no longer whitespace between tokens but part of a value.
DECODED_FORBIDDEN_RE = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")

# Kept as strings so that the same set both validates input and re-escapes output.
UNRESERVED = string.ascii_letters + string.digits + "-_.!~*'()"
USER_SAFE = UNRESERVED + "&=+$,;?/"
PARAM_SAFE = UNRESERVED + "[]/:&+$"
HEADER_SAFE = UNRESERVED + "[]/?:+$"


def _escaped_run(safe: str) -> re.Pattern[str]:
    return re.compile(f"(?:[{re.escape(safe)}]|%[0-9A-Fa-f]{{2}})+")


USER_RE = _escaped_run(USER_SAFE)
PARAM_RE = _escaped_run(PARAM_SAFE)
HEADER_RE = _escaped_run(HEADER_SAFE)
PLAIN_PARAM_RE = re.compile(f"[{re.escape(PARAM_SAFE)}]+")
TOKEN = r"[A-Za-z0-9\-.!%*_+`'~]+"
# quoted-pair = "\\" (%x00-09 / %x0B-0C / %x0E-7F): an escaped control character is well formed
# (RFC 4475 §3.1.1), a raw one is not (FORBIDDEN_RE refuses it before parsing).
QUOTED_PAIR = r"\\[\x00-\x09\x0b\x0c\x0e-\x7f]"
QUOTED = rf'"(?:[^"\\]|{QUOTED_PAIR})*"'
# `SEMI generic-param` (RFC 3261 §25.1): group 1 is the name, group 2 the value or None for a flag.
GEN_PARAM_RE = re.compile(rf"[ \t]*;[ \t]*({TOKEN})(?:[ \t]*=[ \t]*({TOKEN}|\[[0-9A-Fa-f:.]+\]|{QUOTED}))?")
# Explicit ASCII ranges throughout: `\d`, str.isdigit() and int() all accept "٥٠٦٠".
DIGITS_RE = re.compile(r"[0-9]+")


def put_unique(target: dict[str, str], name: str, value: str, code: str = "malformed_uri") -> None:
    # A repeated name is refused rather than resolved: keeping either copy lets two parsers
    # (ours and the switch's) disagree about the target.
    if name in target:
        raise ReferToError(code, f"Parameter {name!r} appears more than once.")
    target[name] = value


def unescape_octets(text: str) -> str:
    """Decode %HH once, keeping every octet: one that is not UTF-8 text becomes a lone surrogate
    (surrogateescape), so `escape` restores it exactly. For the user part (RFC 4475 §3.1.1,
    "Escaped Nulls in URIs": `%00` is a well-formed user). The result may hold control
    characters: never log or store it as text, write it back with `escape`."""
    return unquote_to_bytes(text).decode("utf-8", "surrogateescape") if "%" in text else text


def unescape(text: str) -> str:
    """Decode %HH once; callers have already checked that every % starts a valid escape."""
    if "%" not in text:
        return text
    try:
        return unquote_to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        raise malformed("A %-escape does not decode to UTF-8 text.") from None


def escape(text: str, safe: str) -> str:
    return "".join(
        ch if ch in safe else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogateescape"))
        for ch in text
    )
