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


@dataclass(frozen=True, slots=True)
class ExtensionOwner:
    """Who an extension belongs to, as much as a REFER answer needs (blank name: no owner)."""

    kind: str  # ExtensionKind
    digits: str
    name: str | None  # None when the extension row has no owner (a half-deleted object)
    sip_uri: str = ""  # a virtual agent's INVITE target
    is_ready: bool = True  # a virtual agent that is enabled, connected and has a SIP URI

    @classmethod
    def from_columns(
        cls,
        *,
        kind: str,
        digits: str,
        queue_name: str | None,
        user_name: str | None,
        agent_name: str | None,
        agent_sip_uri: str,
        agent_ready: bool,
    ) -> ExtensionOwner:
        name = {
            ExtensionKind.QUEUE: queue_name,
            ExtensionKind.AGENT: user_name,
            ExtensionKind.VIRTUAL_AGENT: agent_name,
        }.get(kind)
        return cls(kind, digits, name, agent_sip_uri, agent_ready and bool(agent_sip_uri))


def extension_owner(center: ContactCenter, digits: str) -> ExtensionOwner | None:
    """The owner of `digits` in `center` through the ORM (the telephony endpoint has its own query)."""
    extension = (
        Extension.objects.filter(contact_center=center, digits=digits)
        .select_related("queue", "membership__user", "virtual_agent")
        .first()
    )
    if extension is None:
        return None
    queue = getattr(extension, "queue", None)
    member = getattr(extension, "membership", None)
    agent = getattr(extension, "virtual_agent", None)
    return ExtensionOwner.from_columns(
        kind=extension.kind,
        digits=digits,
        queue_name=queue.name if queue else None,
        user_name=member.user.display_name if member else None,
        agent_name=agent.name if agent else None,
        agent_sip_uri=agent.sip_uri if agent else "",
        agent_ready=bool(agent and agent.is_enabled and agent.is_connected),
    )


def resolve_refer(center: ContactCenter, refer_to: str) -> tuple[ReferTo, Destination]:
    """The destination of `refer_to` in `center`, or ReferToError with its `sip_status`."""
    target = parse_refer_to(refer_to)
    owner = extension_owner(center, target.extension) if target.extension is not None else None
    return target, destination_for(center, target, owner)


def destination_for(center: ContactCenter, target: ReferTo, owner: ExtensionOwner | None) -> Destination:
    """Apply the center's rules to a parsed Refer-To whose extension's owner was looked up."""
    if target.scheme != "tel" and target.host.rstrip(".") != center.sip_domain:
        raise ReferRefused(
            "foreign_domain",
            f"{target.host} is not this contact center's SIP domain ({center.sip_domain}).",
            sip_status=403,
        )
    if target.number is not None:
        return _external(center, target.number)
    if target.extension is None:
        raise ReferRefused(
            "unknown_extension", f"{target.user or 'An empty user'} is not an extension here.", sip_status=404
        )
    return _extension(center, target.extension, owner)


def _external(center: ContactCenter, number: str) -> Destination:
    if not center.allows_external_transfers:
        raise ReferRefused(
            "external_not_allowed",
            "This contact center does not allow handing calls to external numbers.",
            sip_status=403,
        )
    return Destination(type="external", number=number)


def _extension(center: ContactCenter, digits: str, owner: ExtensionOwner | None) -> Destination:
    if owner is None or owner.name is None:
        raise ReferRefused("unknown_extension", f"Extension {digits} does not exist here.", sip_status=404)
    if owner.kind == ExtensionKind.QUEUE:
        return Destination("queue", digits, name=owner.name, sip_uri=handoff_uri(digits, center.slug))
    if owner.kind == ExtensionKind.AGENT:
        return Destination("user", digits, name=owner.name, sip_uri=handoff_uri(digits, center.slug))
    if not owner.is_ready:
        raise ReferRefused(
            "target_unavailable", f"Virtual agent {owner.name} is disabled or disconnected.", sip_status=480
        )
    # A bot is reached at its own INVITE target, not through our domain.
    return Destination("virtual_agent", digits, name=owner.name, sip_uri=owner.sip_uri)


__all__ = [
    "Destination",
    "ExtensionOwner",
    "ReferRefused",
    "destination_for",
    "extension_owner",
    "resolve_refer",
]
