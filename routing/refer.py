"""Where a bot's REFER goes: a Refer-To value → a queue, a user, a virtual agent or an external number.

The parser (`voiso_byob.sip.parse_refer_to`) refuses anything malformed; this module
applies the contact center's rules: our domain only, a live extension, external numbers
only where the center allows them and its toll-fraud guard lets them through (allowed countries
and prefixes, denied number types, optionally only the bots' configured targets: 403
`destination_denied`). Every refusal carries the SIP status the switch
answers the REFER with. Reads only.

Decisions (each refusal is an answer on the merits of a well-formed target, never a 400):
- A REFER asks for an INVITE: a target URI whose `method` parameter names another method
  (RFC 3515 §2.1's `;method=SUBSCRIBE`, `BYE`, `REGISTER`; methods are case-sensitive) is
  refused 403 `unsupported_method` — RFC 3261 §19.1.5 says the method MUST be used, and we
  only ever place calls.
- A local telephone number (`tel:555-0123;phone-context=+1-201`, or the same as a
  `sip:…;user=phone` user) is not an E.164 destination: its context names a numbering plan,
  it is not a prefix (RFC 3966 §5.1.5). It reaches an extension of this center when the
  context is the center's own SIP domain (`tel:4323;phone-context=acme.voiso.com`) and the
  extension exists; any other local number is refused 404 `unknown_number` (not 484: nothing
  is missing from the address, it names no subscriber we know, and a caller must never reach
  a subscriber the bot did not name).
- `;ext=` and `;isub=` of an external number are carried, never dropped: the destination has
  `extension` (digits the switch dials after the call connects) and `subaddress` beside
  `number`. Our own extensions have no sub-extensions, so either on one of them is 404.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from django.db.models import Q

from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter, Extension, ExtensionKind
from voiso_byob.sip import ReferTo, ReferToError, handoff_uri, parse_refer_to


class ReferRefused(ReferToError):
    """A well-formed Refer-To this contact center will not transfer to."""


@dataclass(frozen=True)
class Destination:
    type: str  # queue | user | virtual_agent | external
    extension: str | None = None  # ours; for an external number, its ;ext= (dialled after connect)
    number: str | None = None
    name: str | None = None
    sip_uri: str | None = None
    subaddress: str | None = None  # an external number's ;isub=

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
    method = target.uri_params.get("method") if target.scheme != "tel" else None
    if method is not None and method != "INVITE":
        raise ReferRefused(
            "unsupported_method",
            f"A REFER here can only start a call (INVITE), not {method[:32]!r}.",
            sip_status=403,
        )
    if target.scheme != "tel" and target.host != center.sip_domain:
        raise ReferRefused(
            "foreign_domain",
            f"{target.host} is not this contact center's SIP domain ({center.sip_domain}).",
            sip_status=403,
        )
    if target.number is not None:
        return _external(center, target)
    in_our_plan = target.phone_context == center.sip_domain and target.extension is not None
    if target.local_number is not None and not in_our_plan:
        raise ReferRefused(
            "unknown_number",
            f"{target.local_number} in {target.phone_context} is a local number, not one we can reach.",
            sip_status=404,
        )
    if target.extension is None:
        user = target.escaped_user or "An empty user"  # as in the URI: `user` may hold any octet
        raise ReferRefused("unknown_extension", f"{user} is not an extension here.", sip_status=404)
    if target.phone_ext is not None or target.isub is not None:
        raise ReferRefused(
            "unknown_extension",
            f"Extension {target.extension} has no sub-extension or subaddress here.",
            sip_status=404,
        )
    return _extension(center, target.extension, owner)


def _external(center: ContactCenter, target: ReferTo) -> Destination:
    if not center.allows_external_transfers:
        raise ReferRefused(
            "external_not_allowed",
            "This contact center does not allow handing calls to external numbers.",
            sip_status=403,
        )
    assert target.number is not None
    refusal = center.external_refusal(target.number)
    if refusal is None and center.external_only_bot_targets and not _is_bot_target(center, target.number):
        refusal = f"{target.number} is not a handoff target configured on any of this center's bots."
    if refusal is not None:
        raise ReferRefused("destination_denied", refusal, sip_status=403)
    return Destination(
        type="external", number=target.number, extension=target.phone_ext, subaddress=target.isub
    )


def _is_bot_target(center: ContactCenter, number: str) -> bool:
    """Is `number` a handoff target (or the default handoff) of one of the center's bots?

    Any bot of the center, not the one on the call: the REFER does not say which bot sent it, and
    the call's record may not exist yet. One query, made only for external numbers with the option on.
    """
    return (
        VirtualAgent.objects.for_center(center)
        .filter(Q(default_handoff_number=number) | Q(handoff_targets__number=number))
        .exists()
    )


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
