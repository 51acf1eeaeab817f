"""Where a bot's REFER goes: a Refer-To value → a queue, a user, a virtual agent or an external number.

The parser (`voiso_byob.sip.parse_refer_to`) refuses anything malformed; this module
applies the contact center's rules: our domain only, a live extension, external numbers
only where the center allows them. Every refusal carries the SIP status the switch
answers the REFER with. Reads only.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from voiso_byob.models import ContactCenter, Extension, ExtensionKind
from voiso_byob.sip import ReferTo, ReferToError, handoff_uri, parse_refer_to


class ReferRefused(ReferToError):
    """A well-formed Refer-To this contact center will not transfer to."""


@dataclass(frozen=True)
class Destination:
    type: str  # queue | user | virtual_agent | external
    extension: str | None = None
    number: str | None = None
    name: str | None = None
    sip_uri: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def resolve_refer(center: ContactCenter, refer_to: str) -> tuple[ReferTo, Destination]:
    """The destination of `refer_to` in `center`, or ReferToError with its `sip_status`."""
    target = parse_refer_to(refer_to)
    if target.scheme != "tel" and target.host.rstrip(".") != center.sip_domain:
        raise ReferRefused(
            "foreign_domain",
            f"{target.host} is not this contact center's SIP domain ({center.sip_domain}).",
            sip_status=403,
        )
    if target.number is not None:
        return target, _external(center, target.number)
    if target.extension is None:
        raise ReferRefused(
            "unknown_extension", f"{target.user or 'An empty user'} is not an extension here.", sip_status=404
        )
    return target, _extension(center, target.extension)


def _external(center: ContactCenter, number: str) -> Destination:
    if not center.allows_external_transfers:
        raise ReferRefused(
            "external_not_allowed",
            "This contact center does not allow handing calls to external numbers.",
            sip_status=403,
        )
    return Destination(type="external", number=number)


def _extension(center: ContactCenter, digits: str) -> Destination:
    extension = (
        Extension.objects.filter(contact_center=center, digits=digits)
        .select_related("queue", "membership__user", "virtual_agent")
        .first()
    )
    owner: Any = None
    if extension is not None:
        owner = {
            ExtensionKind.QUEUE: lambda: getattr(extension, "queue", None),
            ExtensionKind.AGENT: lambda: getattr(extension, "membership", None),
            ExtensionKind.VIRTUAL_AGENT: lambda: getattr(extension, "virtual_agent", None),
        }[extension.kind]()
    if owner is None:
        raise ReferRefused("unknown_extension", f"Extension {digits} does not exist here.", sip_status=404)
    if extension.kind == ExtensionKind.QUEUE:
        return Destination("queue", digits, name=owner.name, sip_uri=handoff_uri(digits, center.slug))
    if extension.kind == ExtensionKind.AGENT:
        return Destination(
            "user", digits, name=owner.user.display_name, sip_uri=handoff_uri(digits, center.slug)
        )
    if not (owner.is_enabled and owner.is_connected and owner.sip_uri):
        raise ReferRefused(
            "target_unavailable", f"Virtual agent {owner.name} is disabled or disconnected.", sip_status=480
        )
    # A bot is reached at its own INVITE target, not through our domain.
    return Destination("virtual_agent", digits, name=owner.name, sip_uri=owner.sip_uri)


__all__ = ["Destination", "ReferRefused", "resolve_refer"]
