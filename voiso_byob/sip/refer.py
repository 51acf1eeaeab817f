"""Parse the Refer-To value of a REFER (RFC 3515 §2.1) into what the REFER resolver needs.

A REFER moves a live call, so the parser is strict: anything ambiguous is refused with a
`ReferToError` whose `sip_status` the switch answers the REFER with. It never guesses a target.

Decisions a sloppy or hostile sender runs into:
- The whole value is bounded (`MAX_LENGTH`), no part of it separately: a 1.5 kB display name is
  well formed (RFC 4475 §3.1.1, "Long Values in Header Fields"; RFC 3261 §18.1.1 handles
  messages up to 65,535 bytes).
- A value without a scheme (Bland's bare `2001`) is `malformed_uri`: a Refer-To header carries a
  URI, and completing it with a host would choose a target on the sender's behalf.
- The URI grammar is ASCII. Raw non-ASCII outside a quoted display name is `malformed_uri`
  (`sip:٤٣٢٣@…`); %-escaped UTF-8 decodes and is kept as-is in `user`. Either way Unicode digits
  never become an `extension`, which is ASCII `0-9` only.
- Any escaped octet is a well-formed user (RFC 4475 §3.1.1, "Escaped Nulls in URIs"): the user
  of `sip:4323%00@…` is "4323\\x00", not extension 4323; it is answered as an unknown user, never
  shortened.
  A quoted-pair may escape a control character in a display name (not CR or LF); a raw control
  character anywhere is refused.
- Without `<>`, `;params` after the URI are header parameters (RFC 3261 §20) and `?headers` are
  refused, because the RFC requires `<>` for them.
- URI headers (RFC 3261 §19.1.5) are honoured one by one: `X-*`, `User-to-User` and `Replaces`
  are kept, those that only describe the request (`Subject`, `Priority`, …) are ignored (their
  names are in `ignored_headers`), any other (`Route`, `Call-ID`, `From`, `body`, …) is refused
  with 403 `header_not_allowed`: honouring it would steer or forge the new call.
- Refusals of well-formed values carry their own SIP status: 403 for a header we will not honour,
  404 (or 484 when digits are missing) for a number no numbering plan assigns. 400 is for text
  that does not parse.
- A repeated parameter or header name is `malformed_uri`.
- Every accepted `tel:` has an E.164 `number` or a `local_number` with its `phone_context`. The
  context is never prefixed to the local number (RFC 3966 §5.1.5); a local number in a domain
  context that is all ASCII digits is an `extension` candidate, which the resolver accepts only
  when the context is its own SIP domain. `ext` and `isub` are reported, never dropped.
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
    QUOTED_PAIR,
    TOKEN,
    USER_RE,
    USER_SAFE,
    ReferToError,
    escape,
    malformed,
    put_unique,
    unescape,
    unescape_octets,
)
from voiso_byob.sip.tel import Subscriber, e164, is_phonedigits, telephone_subscriber

__all__ = ["MAX_LENGTH", "Headers", "ReferTo", "ReferToError", "Replaces", "parse_refer_to"]

# The whole value's bound: the handoff event's `refer_to` and the Handoff row that stores it
# (reporting) take as much, so every REFER answered here can be reported and kept.
MAX_LENGTH = 2048

_SCHEME_RE = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")
_QUOTED_RE = re.compile(QUOTED)
_QUOTED_PAIR_RE = re.compile(QUOTED_PAIR)
_TOKEN_RE = re.compile(TOKEN)
_TOKENS_RE = re.compile(rf"{TOKEN}(?:[ \t]+{TOKEN})*")
_LABEL_RE = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_TOP_LABEL_RE = re.compile(r"[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
# re.ASCII so that IGNORECASE cannot let the Kelvin sign "\u212a" stand in for "k".
_ALLOWED_HEADER_RE = re.compile(r"X-[A-Za-z0-9-]+|User-to-User|Replaces", re.IGNORECASE | re.ASCII)
# Headers that describe the request but cannot steer it, forge an identity or a dialog, or change
# its body: ignored one by one as RFC 3261 §19.1.5 allows (it lists Accept*, Allow, Organization,
# Supported and User-Agent among those an implementation SHOULD NOT honour). Compact forms: s, k.
_IGNORED_HEADERS = frozenset(
    {
        "subject",
        "s",
        "priority",
        "organization",
        "user-agent",
        "date",
        "timestamp",
        "accept",
        "accept-encoding",
        "accept-language",
        "allow",
        "supported",
        "k",
        "call-info",
        "alert-info",
        "in-reply-to",
        "reply-to",
    }
)
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
    user: str  # decoded once; may hold any octet (see unescape_octets): write it back with `uri`
    host: str
    port: int | None
    uri_params: dict[str, str] = field(hash=False)
    headers: Headers = field(hash=False)
    display_name: str
    header_params: dict[str, str] = field(hash=False)
    number: str | None
    replaces: Replaces | None
    extension: str | None
    local_number: str | None = None  # a local telephone number, within `phone_context`
    phone_context: str | None = None  # "+<digits>" or a lower-case domain name
    phone_ext: str | None = None  # ";ext=" of a telephone number (digits): dialled after connect
    isub: str | None = None  # ";isub=" of a telephone number: the ISDN subaddress
    ignored_headers: tuple[str, ...] = ()  # URI headers declined one by one (RFC 3261 §19.1.5)

    @property
    def escaped_user(self) -> str:
        """`user` as written in a URI: printable, safe in a message or a log line."""
        return escape(self.user, USER_SAFE)

    @property
    def uri(self) -> str:
        """The normalised addr-spec; a tel: URI in its global form."""
        params = "".join(
            f";{escape(name, PARAM_SAFE)}" + (f"={escape(value, PARAM_SAFE)}" if value else "")
            for name, value in self.uri_params.items()
        )
        if self.scheme == "tel":
            if self.number is None:
                context = f";phone-context={escape(self.phone_context or '', PARAM_SAFE)}"
                return f"tel:{self.local_number}{context}{params}"
            return f"tel:{self.number}{params}"
        userinfo = f"{self.escaped_user}@" if self.user else ""
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
    # A quoted-pair may escape a control character (not CR or LF); a raw one is refused anywhere.
    # Outside a quoted string a backslash is invalid anyway, so removing the pairs first is safe.
    if FORBIDDEN_RE.search(_QUOTED_PAIR_RE.sub("", value) if "\\" in value else value):
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
    subscriber = telephone_subscriber(rest, is_escaped=True, syntax_code="malformed_uri")
    return ReferTo(
        scheme="tel",
        user="",
        host="",
        port=None,
        uri_params=subscriber.params,
        headers=Headers(),
        display_name="",
        header_params={},
        replaces=None,
        **_subscriber_fields(subscriber),
    )


def _subscriber_fields(subscriber: Subscriber) -> dict[str, str | None]:
    local = subscriber.local_number
    # Only a domain names a numbering plan that may be ours; "+1-201" is a public area's plan.
    is_ours_maybe = local is not None and not (subscriber.phone_context or "+").startswith("+")
    return {
        "number": subscriber.number,
        "extension": local if is_ours_maybe and DIGITS_RE.fullmatch(local or "") else None,
        "local_number": local,
        "phone_context": subscriber.phone_context,
        "phone_ext": subscriber.ext,
        "isub": subscriber.isub,
    }


def _parse_sip(scheme: str, rest: str) -> ReferTo:
    user, hostpart = _userinfo(rest)
    hostport, has_headers, headers_text = hostpart.partition("?")
    host_text, *param_parts = hostport.split(";")
    host, port = _hostport(host_text)
    uri_params = _uri_params(param_parts)
    headers, ignored = _uri_headers(headers_text) if has_headers else (Headers(), ())
    if uri_params.get("user") == "phone":
        subscriber = telephone_subscriber(user, is_escaped=False, syntax_code="invalid_number")
        telephone = _subscriber_fields(subscriber)
    elif user.startswith("+") and is_phonedigits(user[1:]):
        telephone = {"number": e164(user[1:]), "extension": None}
    else:
        telephone = {"number": None, "extension": user if DIGITS_RE.fullmatch(user) else None}
    return ReferTo(
        scheme=scheme,
        user=user,
        host=host,
        port=port,
        uri_params=uri_params,
        headers=headers,
        display_name="",
        header_params={},
        replaces=parse_replaces(headers.get("Replaces")),
        ignored_headers=ignored,
        **telephone,
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
    return unescape_octets(userinfo), hostpart


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


def _uri_headers(text: str) -> tuple[Headers, tuple[str, ...]]:
    """(the headers kept, the names of those ignored); a header we will not honour is a 403."""
    headers: dict[str, str] = {}
    ignored: list[str] = []
    seen: set[str] = set()
    for part in text.split("&"):
        name_text, has_value, value_text = part.partition("=")
        if not has_value or not HEADER_RE.fullmatch(name_text):
            raise malformed("Invalid URI header.")
        if value_text and not HEADER_RE.fullmatch(value_text):
            raise malformed("Invalid URI header value (reserved characters must be %-escaped).")
        name, value = unescape(name_text), unescape(value_text)
        # Syntax first: a header name is a token, a value holds no line break or control character.
        # TOKEN's classes are ASCII, so the Kelvin sign in a name does not parse as one.
        if not _TOKEN_RE.fullmatch(name) or DECODED_FORBIDDEN_RE.search(value):
            raise malformed(
                "A URI header must decode to a header name and a value without control characters."
            )
        if name.lower() in seen:
            raise malformed(f"The {name} header appears more than once.")
        seen.add(name.lower())
        if _ALLOWED_HEADER_RE.fullmatch(name):
            headers[name] = value
        elif name.lower() in _IGNORED_HEADERS:
            ignored.append(name)
        else:
            raise ReferToError(
                "header_not_allowed",
                f"The {name[:64]} URI header is not honoured: only X-*, User-to-User and Replaces are "
                "carried, and headers that only describe the request (Subject, Priority, …) are ignored.",
                sip_status=403,
            )
    return Headers(headers), tuple(ignored)
