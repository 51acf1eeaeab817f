"""Parse the Refer-To value of a REFER (RFC 3515 §2.1) into what the REFER resolver needs.

A REFER moves a live call, so the parser is strict: anything ambiguous is refused with a
`ReferToError` whose `sip_status` the switch answers the REFER with. It never guesses a target.

Decisions a sloppy or hostile sender runs into:
- A value without a scheme (Bland's bare `2001`) is `malformed_uri`: a Refer-To header carries a
  URI, and completing it with a host would choose a target on the sender's behalf.
- The URI grammar is ASCII. Raw non-ASCII outside a quoted display name is `malformed_uri`
  (`sip:٤٣٢٣@…`); %-escaped UTF-8 decodes and is kept as-is in `user`. Either way Unicode digits
  never become an `extension`, which is ASCII `0-9` only.
- Without `<>`, `;params` after the URI are header parameters (RFC 3261 §20) and `?headers` are
  refused, because the RFC requires `<>` for them.
- A repeated parameter or header name is `malformed_uri`.
- Every accepted `tel:` has an E.164 `number`. A local number needs a global-digits
  `phone-context` (the context digits come first); a domain context cannot be made E.164.
- URI parameters such as `maddr` are reported, not acted on: the resolver builds its own target.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace

from voiso_byob.sip.replaces import Replaces, parse_replaces
from voiso_byob.sip.syntax import (
    DECODED_FORBIDDEN_RE,
    DIGITS_RE,
    FORBIDDEN_RE,
    GEN_PARAM_RE,
    HEADER_RE,
    HEADER_SAFE,
    PARAM_RE,
    PARAM_SAFE,
    QUOTED,
    TOKEN,
    USER_RE,
    USER_SAFE,
    ReferToError,
    escape,
    malformed,
    put_unique,
    unescape,
)
from voiso_byob.sip.tel import e164, is_phonedigits, telephone_subscriber

__all__ = ["MAX_LENGTH", "Headers", "ReferTo", "ReferToError", "Replaces", "parse_refer_to"]

MAX_LENGTH = 1024

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_QUOTED_RE = re.compile(QUOTED)
_TOKENS_RE = re.compile(rf"{TOKEN}(?:[ \t]+{TOKEN})*")
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TOP_LABEL_RE = re.compile(r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# re.ASCII so that IGNORECASE cannot let the Kelvin sign "\u212a" stand in for "k".
_ALLOWED_HEADER_RE = re.compile(r"X-[A-Za-z0-9-]+|User-to-User|Replaces", re.IGNORECASE | re.ASCII)
# Tokens compared case-insensitively (RFC 3261 §19.1.4) that the resolver reads.
_LOWERCASE_VALUES = frozenset({"transport", "user"})


class Headers(Mapping[str, str]):
    """URI headers in the order given; names keep their spelling, lookups ignore case."""

    __slots__ = ("_index", "_items")

    def __init__(self, items: Mapping[str, str] | None = None) -> None:
        self._items = dict(items or {})
        self._index = {_fold(name): name for name in self._items}

    def __getitem__(self, name: str) -> str:
        if not isinstance(name, str) or _fold(name) not in self._index:
            raise KeyError(name)
        return self._items[self._index[_fold(name)]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __repr__(self) -> str:
        return f"Headers({self._items!r})"


def _fold(name: str) -> str:
    # ASCII only: str.lower() would let the Kelvin sign look up an "X-k…" header.
    return name.lower() if name.isascii() else name


@dataclass(frozen=True, kw_only=True, slots=True)
class ReferTo:
    """A parsed Refer-To, shaped for the resolver.

    `extension` (ASCII digits only) is what it looks up on our domain, `number` (E.164) is an
    external target, `host` is compared with our domains exactly. An IPv6 `host` keeps its
    brackets (`[2001:db8::1]`). `header_params` belong to the Refer-To header, not the URI.
    """

    scheme: str
    user: str
    host: str
    port: int | None
    uri_params: dict[str, str] = field(hash=False)
    headers: Headers = field(hash=False)
    display_name: str
    header_params: dict[str, str] = field(hash=False)
    number: str | None
    replaces: Replaces | None
    extension: str | None

    @property
    def uri(self) -> str:
        """The normalised addr-spec; a tel: URI in its global form."""
        params = "".join(
            f";{escape(name, PARAM_SAFE)}" + (f"={escape(value, PARAM_SAFE)}" if value else "")
            for name, value in self.uri_params.items()
        )
        if self.scheme == "tel":
            return f"tel:{self.number}{params}"
        userinfo = f"{escape(self.user, USER_SAFE)}@" if self.user else ""
        port = "" if self.port is None else f":{self.port}"
        headers = "&".join(
            f"{escape(name, HEADER_SAFE)}={escape(value, HEADER_SAFE)}"
            for name, value in self.headers.items()
        )
        return f"{self.scheme}:{userinfo}{self.host}{port}{params}" + (f"?{headers}" if headers else "")


def parse_refer_to(value: str) -> ReferTo:
    """Parse one Refer-To header value (name-addr or addr-spec, then header params)."""
    if not isinstance(value, str):
        raise malformed("Refer-To must be a string.")
    # Before anything else, so a megabyte of junk costs one len().
    if len(value) > MAX_LENGTH:
        raise ReferToError("too_long", f"Refer-To is longer than {MAX_LENGTH} characters.")
    if FORBIDDEN_RE.search(value):
        raise malformed("Refer-To contains a line break or control character.")
    text = value.strip(" \t")
    if not text:
        raise malformed("Refer-To is empty.")
    display_name, addr_spec, tail, is_bracketed = _split_value(text)
    target = _parse_addr_spec(addr_spec, is_bracketed=is_bracketed)
    return replace(target, display_name=display_name, header_params=_header_params(tail))


def _split_value(text: str) -> tuple[str, str, str, bool]:
    """(display name, addr-spec, header-param tail, was in <>); refuses lists and unbalanced <> or quotes."""
    opened = closed = -1
    in_quotes = after_backslash = False
    for i, ch in enumerate(text):
        if in_quotes:
            if after_backslash:
                after_backslash = False
            elif ch == "\\":
                after_backslash = True
            elif ch == '"':
                in_quotes = False
        elif opened >= 0 and closed < 0:
            if ch == "<":
                raise malformed("'<' inside <...>.")
            if ch == ">":
                closed = i
        elif ch == '"':
            in_quotes = True
        elif ch == ",":
            raise ReferToError("multiple_values", "Refer-To must carry exactly one value.")
        elif ch == "<":
            if opened >= 0:
                raise malformed("Refer-To has more than one <...>.")
            opened = i
        elif ch == ">":
            raise malformed("'>' without a matching '<'.")
    if in_quotes:
        raise malformed("Unterminated quoted string.")
    if opened >= 0 and closed < 0:
        raise malformed("'<' without a matching '>'.")
    if opened >= 0:
        return _display_name(text[:opened]), text[opened + 1 : closed], text[closed + 1 :], True
    # RFC 3261 §20: without <>, the URI ends at the first ';' and the rest are header params.
    end = text.find(";")
    if end < 0:
        return "", text, "", False
    return "", text[:end].rstrip(" \t"), text[end:], False


def _display_name(prefix: str) -> str:
    prefix = prefix.strip(" \t")
    if _QUOTED_RE.fullmatch(prefix):
        return _unquote(prefix)
    if not prefix or _TOKENS_RE.fullmatch(prefix):
        return " ".join(prefix.split())
    raise malformed("A display name must be a quoted string or plain words.")


def _unquote(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1], flags=re.DOTALL)


def _header_params(tail: str) -> dict[str, str]:
    params: dict[str, str] = {}
    pos = 0
    while pos < len(tail):
        match = GEN_PARAM_RE.match(tail, pos)
        if match is None:
            raise malformed("Unexpected text after the URI.")
        value = match.group(2) or ""
        put_unique(params, match.group(1).lower(), _unquote(value) if value.startswith('"') else value)
        pos = match.end()
    return params


def _parse_addr_spec(addr: str, *, is_bracketed: bool) -> ReferTo:
    scheme_match = _SCHEME_RE.match(addr)
    if scheme_match is None:
        raise malformed("Refer-To must be a sip:, sips: or tel: URI.")
    scheme = scheme_match.group(1).lower()
    if scheme not in {"sip", "sips", "tel"}:
        raise ReferToError(
            "unsupported_scheme", f"Only sip:, sips: and tel: targets are accepted, not {scheme[:32]}:."
        )
    rest = addr[scheme_match.end() :]
    if " " in rest or "\t" in rest:
        raise malformed("Whitespace inside the URI.")
    if scheme == "tel":
        return _parse_tel(rest)
    if "?" in rest and not is_bracketed:
        raise malformed("A URI with ?headers must be enclosed in <...>.")
    return _parse_sip(scheme, rest)


def _parse_tel(rest: str) -> ReferTo:
    number, params = telephone_subscriber(rest, is_escaped=True, syntax_code="malformed_uri")
    return ReferTo(
        scheme="tel",
        user="",
        host="",
        port=None,
        uri_params=params,
        headers=Headers(),
        display_name="",
        header_params={},
        number=number,
        replaces=None,
        extension=None,
    )


def _parse_sip(scheme: str, rest: str) -> ReferTo:
    user, hostpart = _userinfo(rest)
    hostport, has_headers, headers_text = hostpart.partition("?")
    host_text, *param_parts = hostport.split(";")
    host, port = _hostport(host_text)
    uri_params = _uri_params(param_parts)
    headers = _uri_headers(headers_text) if has_headers else Headers()
    if uri_params.get("user") == "phone":
        number, _ = telephone_subscriber(user, is_escaped=False, syntax_code="invalid_number")
    elif user.startswith("+") and is_phonedigits(user[1:]):
        number = e164(user[1:])
    else:
        number = None
    return ReferTo(
        scheme=scheme,
        user=user,
        host=host,
        port=port,
        uri_params=uri_params,
        headers=headers,
        display_name="",
        header_params={},
        number=number,
        replaces=parse_replaces(headers.get("Replaces")),
        extension=user if DIGITS_RE.fullmatch(user) else None,
    )


def _userinfo(rest: str) -> tuple[str, str]:
    """(unescaped user, the rest). No `@` may follow the userinfo unescaped, so the first one ends it."""
    userinfo, has_user, hostpart = rest.partition("@")
    if not has_user:
        return "", rest
    if "@" in hostpart:
        raise malformed("More than one '@' in the URI.")
    if ":" in userinfo:
        raise ReferToError("credentials_in_uri", "A password in the URI is not accepted.")
    if not USER_RE.fullmatch(userinfo):
        raise malformed("Invalid characters or %-escapes in the user part.")
    user = unescape(userinfo)
    if DECODED_FORBIDDEN_RE.search(user):
        raise malformed("The user part decodes to a control character.")
    return user, hostpart


def _hostport(text: str) -> tuple[str, int | None]:
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise malformed("'[' without a matching ']' in the host.")
        host, after = _ipv6(text[1:end]), text[end + 1 :]
    else:
        host_text, colon, port_text = text.partition(":")
        host, after = _hostname(host_text), colon + port_text
    if not after:
        return host, None
    if not after.startswith(":") or not re.fullmatch(r"[0-9]{1,5}", after[1:]):
        raise malformed("Invalid port.")
    port = int(after[1:])
    if not 1 <= port <= 65535:
        raise malformed("Port must be between 1 and 65535.")
    return host, port


def _ipv6(text: str) -> str:
    # The character check also refuses zone ids ("%eth0"), which ipaddress would accept.
    if re.fullmatch(r"[0-9A-Fa-f:.]+", text):
        try:
            return f"[{ipaddress.IPv6Address(text).compressed}]"
        except ValueError:
            pass
    raise malformed("Invalid IPv6 address.")


def _hostname(text: str) -> str:
    """A DNS name (lower-cased, trailing dot dropped) or an IPv4 address.

    IDNA is not accepted: the resolver compares hosts with our domains exactly, and a Unicode
    host whose Cyrillic letters look like our Latin ones would pass for ours while naming another
    domain. Validation runs before lower-casing, because str.lower() maps the Kelvin sign to "k".
    """
    if re.fullmatch(r"[0-9.]+", text):
        try:
            return str(ipaddress.IPv4Address(text))
        except ValueError:
            raise malformed("Invalid IPv4 address.") from None
    name = text[:-1] if text.endswith(".") else text
    labels = name.split(".")
    if (
        len(name) > 253
        or not all(_LABEL_RE.fullmatch(label) for label in labels)
        or not _TOP_LABEL_RE.fullmatch(labels[-1])
    ):
        raise malformed("Missing or invalid host (plain DNS name, IPv4 or [IPv6]).")
    return name.lower()


def _uri_params(parts: list[str]) -> dict[str, str]:
    params: dict[str, str] = {}
    for part in parts:
        name_text, has_value, value_text = part.partition("=")
        if not PARAM_RE.fullmatch(name_text) or (has_value and not PARAM_RE.fullmatch(value_text)):
            raise malformed("Invalid URI parameter.")
        name, value = unescape(name_text), unescape(value_text)
        if not name.isascii() or DECODED_FORBIDDEN_RE.search(name + value):
            raise malformed("Invalid URI parameter.")
        name = name.lower()
        if name in _LOWERCASE_VALUES and value.isascii():
            value = value.lower()
        put_unique(params, name, value)
    return params


def _uri_headers(text: str) -> Headers:
    headers: dict[str, str] = {}
    seen: set[str] = set()
    for part in text.split("&"):
        name_text, has_value, value_text = part.partition("=")
        if not has_value or not HEADER_RE.fullmatch(name_text):
            raise malformed("Invalid URI header.")
        if value_text and not HEADER_RE.fullmatch(value_text):
            raise malformed("Invalid URI header value (reserved characters must be %-escaped).")
        name, value = unescape(name_text), unescape(value_text)
        if not _ALLOWED_HEADER_RE.fullmatch(name):
            raise ReferToError(
                "header_not_allowed", "Only X-*, User-to-User and Replaces URI headers are accepted."
            )
        if DECODED_FORBIDDEN_RE.search(value):
            raise ReferToError("header_not_allowed", f"The {name} header value contains a control character.")
        if name.lower() in seen:
            raise malformed(f"The {name} header appears more than once.")
        seen.add(name.lower())
        headers[name] = value
    return Headers(headers)
