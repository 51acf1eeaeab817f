"""SIP helpers: the URIs we hand out (`handoff`) and the Refer-To values we accept (`refer`).

Import from here (`from voiso_byob.sip import handoff_uri, parse_refer_to`); the submodules
are an implementation detail of keeping each file small.
"""

from voiso_byob.sip.handoff import (
    escape_user,
    external_handoff_uri,
    handoff_name_addr,
    handoff_uri,
    is_valid_bot_uri,
    sip_domain,
)
from voiso_byob.sip.refer import MAX_LENGTH as REFER_TO_MAX_LENGTH
from voiso_byob.sip.refer import Headers, ReferTo, ReferToError, Replaces, parse_refer_to

__all__ = [
    "REFER_TO_MAX_LENGTH",
    "Headers",
    "ReferTo",
    "ReferToError",
    "Replaces",
    "escape_user",
    "external_handoff_uri",
    "handoff_name_addr",
    "handoff_uri",
    "is_valid_bot_uri",
    "parse_refer_to",
    "sip_domain",
]
