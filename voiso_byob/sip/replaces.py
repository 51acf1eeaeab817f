"""The Replaces header of an attended transfer (RFC 3891), as carried inside a Refer-To URI."""

from __future__ import annotations

import re
from dataclasses import dataclass

from voiso_byob.sip.syntax import GEN_PARAM_RE, TOKEN, ReferToError

_WORD = r"[A-Za-z0-9\-.!%*_+`'~()<>:\\\"/\[\]?{}]+"
_CALLID_RE = re.compile(rf"{_WORD}(?:@{_WORD})?")
_TOKEN_RE = re.compile(TOKEN)


@dataclass(frozen=True, kw_only=True, slots=True)
class Replaces:
    """The dialog the transfer target should replace."""

    call_id: str
    to_tag: str
    from_tag: str
    early_only: bool = False


def parse_replaces(value: str | None) -> Replaces | None:
    """`callid *(SEMI replaces-param)` with exactly one to-tag and one from-tag (RFC 3891 §6.1).

    `value` is the URI header value, already unescaped once.
    """
    if value is None:
        return None
    callid = _CALLID_RE.match(value)
    if callid is None:
        raise ReferToError("malformed_replaces", "Replaces must start with a Call-ID.")
    # A flag maps to None, so "early-only=1" can be told apart from "early-only".
    params: dict[str, str | None] = {}
    pos = callid.end()
    while pos < len(value):
        match = GEN_PARAM_RE.match(value, pos)
        if match is None or match.group(1).lower() in params:
            raise ReferToError("malformed_replaces", "Invalid or repeated Replaces parameter.")
        params[match.group(1).lower()] = match.group(2)
        pos = match.end()
    to_tag, from_tag = params.get("to-tag"), params.get("from-tag")
    # Both tags are required to match one dialog; a quoted or IPv6-shaped value is not a token.
    if not (to_tag and from_tag and _TOKEN_RE.fullmatch(to_tag) and _TOKEN_RE.fullmatch(from_tag)):
        raise ReferToError("malformed_replaces", "Replaces needs one to-tag and one from-tag.")
    if params.get("early-only") is not None:
        raise ReferToError("malformed_replaces", "early-only takes no value.")
    return Replaces(
        call_id=callid.group(0), to_tag=to_tag, from_tag=from_tag, early_only="early-only" in params
    )
