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
