"""SIP URIs this system hands out (RFC 3261 §19.1).

Bots hand calls back with a REFER to `sip:{extension}@{tenant}.{suffix}`. The URI is
built from structured fields, never from free text, so it is valid by construction.
"""

from __future__ import annotations

import re

from django.conf import settings

# Extensions on the wire may carry DTMF symbols; ours are digits, but a URI for
# "*" or "#" must escape them (`#` is not allowed unescaped in the user part).
_EXTENSION_RE = re.compile(r"^[0-9*#]{1,32}$")
_LABEL_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_ESCAPES = {"#": "%23"}


def sip_domain(tenant: str, *, suffix: str | None = None) -> str:
    tenant = tenant.strip().lower()
    if not _LABEL_RE.fullmatch(tenant):
        raise ValueError(f"{tenant!r} is not a single DNS label")
    return f"{tenant}.{(suffix or settings.SIP_DOMAIN_SUFFIX).lower()}"


def escape_user(extension: str) -> str:
    if not _EXTENSION_RE.fullmatch(extension):
        raise ValueError(f"{extension!r} is not an extension (digits, * or #, 1-32 long)")
    return "".join(_ESCAPES.get(ch, ch) for ch in extension)


def handoff_uri(extension: str, tenant: str, *, transport: str | None = None) -> str:
    """The addr-spec a bot provider is given, e.g. `sip:4323@acme.voiso.com`.

    Providers wrap the addr-spec themselves, so no angle brackets here. A
    transport parameter turns it into a URI that must be sent as name-addr
    (see `handoff_name_addr`).
    """
    uri = f"sip:{escape_user(extension)}@{sip_domain(tenant)}"
    if transport is not None:
        if transport not in {"udp", "tcp", "tls", "ws", "wss"}:
            raise ValueError(f"unsupported transport {transport!r}")
        uri += f";transport={transport}"
    return uri


def handoff_name_addr(extension: str, tenant: str, *, transport: str | None = None) -> str:
    """The same URI as a header value: always `<…>`, so URI parameters stay URI parameters."""
    return f"<{handoff_uri(extension, tenant, transport=transport)}>"


def external_handoff_uri(number: str, tenant: str) -> str:
    """An external E.164 number as a handoff URI on our domain, so our REFER resolver applies
    the center's external-transfer policy: `sip:+12125550199@acme.voiso.com;user=phone`."""
    if not _E164_RE.fullmatch(number):
        raise ValueError(f"{number!r} is not an E.164 number")
    return f"sip:{number}@{sip_domain(tenant)};user=phone"


_E164_RE = re.compile(r"^\+[1-9][0-9]{1,14}$")
# A bot's INVITE target as administrators type it: sip/sips, optional user, host
# (name, IPv4 or [IPv6]), optional port and ;params. No ?headers, no spaces.
_BOT_URI_RE = re.compile(
    r"^sips?:"
    r"(?:[A-Za-z0-9\-_.!~*'()&=+$,;?/%]+@)?"
    r"(?:[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9\-]*[A-Za-z0-9])?)*"
    r"|\[[0-9A-Fa-f:.]+\])"
    r"(?::[0-9]{1,5})?"
    r"(?:;[A-Za-z0-9\-_.!~*'()%]+(?:=[A-Za-z0-9\-_.!~*'()%\[\]/:&+$]+)?)*$"
)


def is_valid_bot_uri(uri: str) -> bool:
    """Whether `uri` is a SIP URI we can send an INVITE to (addr-spec form, ≤ 256 chars)."""
    if not isinstance(uri, str) or len(uri) > 256 or not _BOT_URI_RE.fullmatch(uri):
        return False
    port = re.search(r"^[^;]*:([0-9]{1,5})(?:;|$)", uri.split(":", 1)[1].rsplit("@", 1)[-1])
    return port is None or 0 < int(port.group(1)) < 65536
