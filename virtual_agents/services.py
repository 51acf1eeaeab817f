"""Writes on integrations and virtual agents. Provider calls happen here, never in views.

Rule: when a provider call fails, the database is left as it was. Calls that change
the provider run inside the transaction that records the change, after every local
check has passed, and a failure after the provider changed is undone at the provider.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError
from django.utils import timezone

from virtual_agents.models import (
    HandoffTarget,
    IntegrationStatus,
    Provider,
    ProviderIntegration,
    VirtualAgent,
)
from virtual_agents.providers import adapter_for
from virtual_agents.providers.base import ProviderAdapter, ProviderAgent, ProviderError, TransferTarget
from virtual_agents.webhooks import WEBHOOK_PROVIDERS
from voiso_byob.crypto import mask
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, ContactCenter, Extension, ExtensionKind
from voiso_byob.phone import normalise_e164
from voiso_byob.services import Actor, bump_routing_revision, diff, set_extension, unique_name
from voiso_byob.sip import external_handoff_uri, handoff_uri, is_valid_bot_uri

logger = logging.getLogger(__name__)

MAX_CAPACITY = 10_000


def require_byob(center: ContactCenter) -> None:
    if not center.byob_enabled:
        raise DomainError(
            "byob_disabled",
            "Bring Your Own Bot is not enabled for this contact center. Voiso staff can switch it on.",
            status=403,
        )


def _provider_failed(exc: ProviderError, field: str | None = None) -> DomainError:
    return DomainError(
        f"provider_{exc.code}",
        exc.message,
        field=field,
        status=502
        if exc.code
        in {
            "provider_unavailable",
            "timeout",
            "unreachable",
            "bad_response",
            "rate_limited",
            "unexpected",
        }
        else 400,
    )


def adapter(integration: ProviderIntegration) -> ProviderAdapter:
    return adapter_for(integration.provider, integration.credentials)


# --- integrations ------------------------------------------------------------------------


def _clean_credentials(provider: str, credentials: dict[str, Any] | None) -> dict[str, str]:
    if provider == Provider.GENERIC_SIP:
        return {}
    api_key = str((credentials or {}).get("api_key") or "").strip()
    if not api_key:
        raise DomainError("required", "Paste the provider's API key.", field="api_key")
    if len(api_key) > 512 or any(ch.isspace() for ch in api_key):
        raise DomainError("invalid", "That does not look like an API key.", field="api_key")
    return {"api_key": api_key}


def _clean_webhook_secret(provider: str, secret: str) -> str:
    if provider not in WEBHOOK_PROVIDERS:
        raise DomainError(
            "invalid", "This provider sends no webhooks, so it has no webhook secret.", field="webhook_secret"
        )
    secret = secret.strip()
    if not 8 <= len(secret) <= 512 or any(ch.isspace() for ch in secret):
        raise DomainError(
            "invalid", "Paste the signing secret exactly as the provider shows it.", field="webhook_secret"
        )
    return secret


@transaction.atomic
def create_integration(
    *,
    center: ContactCenter,
    provider: str,
    label: str,
    credentials: dict[str, Any] | None,
    by: Actor,
    webhook_secret: str | None = None,
) -> ProviderIntegration:
    """Verify the credentials live, then store them encrypted. A refused key stores nothing."""
    require_byob(center)
    if provider not in Provider.values:
        raise DomainError("invalid_choice", "Unknown provider.", field="provider")
    label = unique_name(
        label, among=ProviderIntegration.objects.for_center(center), field="label", what="integration"
    )
    credentials = _clean_credentials(provider, credentials)
    extra = {"webhook_secret": _clean_webhook_secret(provider, webhook_secret)} if webhook_secret else {}
    integration = ProviderIntegration(
        contact_center=center, provider=provider, label=label, credentials={**credentials, **extra}
    )
    try:
        adapter(integration).verify()
    except ProviderError as exc:
        raise _provider_failed(exc, field="api_key") from None
    integration.credentials_hint = mask(credentials["api_key"]) if credentials else ""
    integration.status = IntegrationStatus.CONNECTED
    integration.last_verified_at = timezone.now()
    integration.save()
    AuditEvent.record(
        center=center,
        by=by,
        action="integration.created",
        target=integration,
        # Never the credentials; the hint says which key without revealing it.
        changes={
            "provider": provider,
            "label": label,
            "credentials": integration.credentials_hint or None,
            **({"webhook_secret": "set"} if extra else {}),
        },
    )
    return integration


@transaction.atomic
def verify_integration(*, integration: ProviderIntegration, by: Actor) -> ProviderIntegration:
    """Check the stored credentials again; records the outcome on the integration."""
    require_byob(integration.contact_center)
    integration = ProviderIntegration.objects.select_for_update().get(pk=integration.pk)
    before = integration.status
    try:
        adapter(integration).verify()
    except ProviderError as exc:
        integration.status = IntegrationStatus.ERROR
        integration.last_error = exc.message
    else:
        integration.status = IntegrationStatus.CONNECTED
        integration.last_error = ""
        integration.last_verified_at = timezone.now()
    integration.save(update_fields=["status", "last_error", "last_verified_at"])
    if before != integration.status:
        AuditEvent.record(
            center=integration.contact_center,
            by=by,
            action="integration.verified",
            target=integration,
            changes={"status": {"from": before, "to": integration.status}},
        )
    return integration


@transaction.atomic
def update_integration(
    *,
    integration: ProviderIntegration,
    by: Actor,
    label: str | None = None,
    credentials: dict[str, Any] | None = None,
    webhook_secret: str | None = None,
) -> ProviderIntegration:
    """Rename, replace the key (verified live before it is stored), or set the webhook secret.

    The webhook secret signs the provider's post-call reports (reporting.webhooks). It is
    stored encrypted with the key, set or replaced, never shown: the audit row says only that
    it changed.
    """
    require_byob(integration.contact_center)
    if webhook_secret:
        webhook_secret = _clean_webhook_secret(integration.provider, webhook_secret)
    changes: dict[str, Any] = {}
    if label is not None and label.strip() != integration.label:
        new_label = unique_name(
            label,
            among=ProviderIntegration.objects.for_center(integration.contact_center),
            field="label",
            what="integration",
            exclude=integration,
        )
        changes["label"] = {"from": integration.label, "to": new_label}
        integration.label = new_label
    if credentials:
        cleaned = _clean_credentials(integration.provider, credentials)
        if cleaned:
            candidate = ProviderIntegration(provider=integration.provider, credentials=cleaned)
            try:
                adapter(candidate).verify()
            except ProviderError as exc:
                raise _provider_failed(exc, field="api_key") from None
            hint = mask(cleaned["api_key"])
            changes["credentials"] = {"from": integration.credentials_hint or None, "to": hint}
            # A new API key keeps the webhook secret: they are set separately.
            integration.credentials = {**integration.credentials, **cleaned}
            integration.credentials_hint = hint
            integration.status = IntegrationStatus.CONNECTED
            integration.last_error = ""
            integration.last_verified_at = timezone.now()
    if webhook_secret and webhook_secret != integration.credentials.get("webhook_secret"):
        was_set = bool(integration.credentials.get("webhook_secret"))
        changes["webhook_secret"] = "replaced" if was_set else "set"
        integration.credentials = {**integration.credentials, "webhook_secret": webhook_secret}
    if changes:
        integration.save()
        AuditEvent.record(
            center=integration.contact_center,
            by=by,
            action="integration.updated",
            target=integration,
            changes=changes,
        )
    return integration


@transaction.atomic
def delete_integration(*, integration: ProviderIntegration, by: Actor) -> None:
    require_byob(integration.contact_center)
    names = list(integration.virtual_agents.values_list("name", flat=True))
    if names:
        raise DomainError(
            "integration_in_use",
            f"Virtual agents {', '.join(names)} use this integration; delete them first.",
        )
    AuditEvent.record(
        center=integration.contact_center,
        by=by,
        action="integration.deleted",
        target=integration,
        changes={"provider": integration.provider, "label": integration.label},
    )
    try:
        integration.delete()
    except ProtectedError as exc:  # pragma: no cover - raced with a new virtual agent
        raise DomainError("integration_in_use", "A virtual agent uses this integration.") from exc


def list_provider_agents(*, integration: ProviderIntegration) -> list[ProviderAgent]:
    require_byob(integration.contact_center)
    try:
        return adapter(integration).list_agents()
    except ProviderError as exc:
        raise _provider_failed(exc) from None


# --- handoff targets ---------------------------------------------------------------------


@dataclass(frozen=True)
class ResolvedTarget:
    label: str
    sip_uri: str
    extension: Extension | None
    number: str


def _extension_label(extension: Extension) -> str:
    owner: Any
    if extension.kind == ExtensionKind.QUEUE and (owner := getattr(extension, "queue", None)):
        return f"Queue {owner.name} ({extension.digits})"
    if extension.kind == ExtensionKind.AGENT and (owner := getattr(extension, "membership", None)):
        return f"{owner.user.display_name} ({extension.digits})"
    if extension.kind == ExtensionKind.VIRTUAL_AGENT and (owner := getattr(extension, "virtual_agent", None)):
        return f"Virtual agent {owner.name} ({extension.digits})"
    return f"Extension {extension.digits}"


def resolve_targets(
    center: ContactCenter, values: list[str], *, field: str = "handoff_targets"
) -> list[ResolvedTarget]:
    """Extension digits or E.164 numbers → handoff URIs on the center's SIP domain."""
    resolved: list[ResolvedTarget] = []
    seen: set[str] = set()
    values = [str(v).strip() for v in values or [] if str(v).strip()]
    if len(values) > 50:
        raise DomainError("too_many_targets", "At most 50 handoff targets.", field=field)
    extensions = {
        ext.digits: ext
        for ext in Extension.objects.for_center(center)
        .filter(digits__in=[v for v in values if not v.startswith("+")])
        .select_related("queue", "membership__user", "virtual_agent")
    }
    for value in values:
        if value.startswith("+"):
            if not center.allows_external_transfers:
                raise DomainError(
                    "external_not_allowed",
                    "This contact center does not allow handing calls to external numbers.",
                    field=field,
                )
            number = normalise_e164(value, field=field)
            refusal = center.external_refusal(number)
            if refusal is not None:
                # The switch would refuse this REFER (routing.refer): do not configure it on a bot.
                raise DomainError("destination_denied", refusal, field=field)
            target = ResolvedTarget(number, external_handoff_uri(number, center.slug), None, number)
        else:
            extension = extensions.get(value)
            if extension is None:
                raise DomainError(
                    "unknown_extension", f"No queue or user has extension {value}.", field=field
                )
            target = ResolvedTarget(
                _extension_label(extension), handoff_uri(value, center.slug), extension, ""
            )
        if target.sip_uri not in seen:
            seen.add(target.sip_uri)
            resolved.append(target)
    return resolved


def _default_handoff(center: ContactCenter, value: str | None) -> tuple[Extension | None, str]:
    value = (value or "").strip()
    if not value:
        return None, ""
    target = resolve_targets(center, [value], field="default_handoff")[0]
    return target.extension, target.number


def _store_targets(agent: VirtualAgent, targets: list[ResolvedTarget]) -> None:
    agent.handoff_targets.all().delete()
    HandoffTarget.objects.bulk_create(
        HandoffTarget(
            virtual_agent=agent, extension=t.extension, number=t.number, label=t.label, sip_uri=t.sip_uri
        )
        for t in targets
    )


def _transfer_targets(targets: list[ResolvedTarget]) -> list[TransferTarget]:
    return [TransferTarget(label=t.label, sip_uri=t.sip_uri) for t in targets]


# --- virtual agents ----------------------------------------------------------------------


def _check_agent_fields(
    center: ContactCenter, *, name: str, max_concurrent_calls: int, exclude: VirtualAgent | None = None
) -> str:
    name = unique_name(
        name,
        among=VirtualAgent.objects.for_center(center),
        field="name",
        what="virtual agent",
        exclude=exclude,
    )
    if not (1 <= int(max_concurrent_calls) <= MAX_CAPACITY):
        raise DomainError(
            "invalid", f"Capacity is between 1 and {MAX_CAPACITY} calls.", field="max_concurrent_calls"
        )
    return name


def bot_identifier(agent_id: uuid.UUID) -> str:
    """The 'number' the provider knows this bot by: the user part of our INVITE's R-URI.

    A pseudo number (+1999 and ten digits from the id): digits only, so every provider
    accepts it with its E.164 check off, and stable, so a reconnect reuses it.
    """
    return f"+1999{agent_id.int % 10**10:010d}"


@transaction.atomic
def create_virtual_agent(
    *,
    integration: ProviderIntegration,
    by: Actor,
    name: str,
    provider_agent_id: str = "",
    sip_uri: str = "",
    extension: str | None = None,
    max_concurrent_calls: int = 10,
    is_enabled: bool = True,
    handoff_targets: list[str] | None = None,
    default_handoff: str | None = None,
    connect: bool = False,
) -> VirtualAgent:
    """Create a virtual agent; with connect=True also set it up at the provider, all or nothing."""
    center = integration.contact_center
    require_byob(center)
    name = _check_agent_fields(center, name=name, max_concurrent_calls=max_concurrent_calls)
    provider_agent_id = (provider_agent_id or "").strip()
    sip_uri = (sip_uri or "").strip()
    if integration.has_api:
        if not provider_agent_id:
            raise DomainError("required", "Pick the provider's agent.", field="provider_agent_id")
        if len(provider_agent_id) > 200:
            raise DomainError("invalid", "That agent id is too long.", field="provider_agent_id")
        sip_uri = ""  # set by connect: the provider's own INVITE target
    elif not is_valid_bot_uri(sip_uri):
        raise DomainError(
            "invalid_sip_uri",
            "Enter the bot's SIP URI, e.g. sip:bot@sip.example.com;transport=tls",
            field="sip_uri",
        )
    targets = resolve_targets(center, handoff_targets or [])
    default_ext, default_number = _default_handoff(center, default_handoff)
    agent = VirtualAgent(
        contact_center=center,
        integration=integration,
        provider_agent_id=provider_agent_id,
        name=name,
        sip_uri=sip_uri,
        max_concurrent_calls=max_concurrent_calls,
        is_enabled=is_enabled,
        default_handoff_extension=default_ext,
        default_handoff_number=default_number,
    )
    agent.extension = set_extension(
        center=center, current=None, digits=extension, kind=ExtensionKind.VIRTUAL_AGENT
    )
    try:
        with transaction.atomic():
            agent.save()
    except IntegrityError:
        raise DomainError("name_taken", f"A virtual agent named {name!r} exists.", field="name") from None
    _store_targets(agent, targets)
    AuditEvent.record(
        center=center,
        by=by,
        action="virtual_agent.created",
        target=agent,
        changes={
            "integration": integration.label,
            "provider_agent_id": provider_agent_id or None,
            "extension": agent.extension.digits if agent.extension else None,
            "handoff_targets": [t.sip_uri for t in targets],
        },
    )
    if connect:
        agent = connect_virtual_agent(agent=agent, by=by)
    return agent


@transaction.atomic
def connect_virtual_agent(*, agent: VirtualAgent, by: Actor) -> VirtualAgent:
    """Set the bot up at the provider: SIP trunk/number for our INVITEs, transfer tool by REFER.

    The provider calls are the last thing before commit; if one fails, what the
    provider already made is undone there and the transaction rolls back here.
    """
    center = agent.contact_center
    require_byob(center)
    agent = (
        VirtualAgent.objects.select_for_update(of=("self",)).select_related("integration").get(pk=agent.pk)
    )
    if agent.is_connected:
        # A second setup would orphan the first at the provider (or be refused by it).
        raise DomainError("already_connected", f"{agent.name} is already connected.")
    targets = [
        TransferTarget(label=t.label, sip_uri=t.sip_uri)
        for t in agent.handoff_targets.order_by("created", "pk")
    ]
    provider = adapter(agent.integration)
    state: dict[str, Any] = {}
    try:
        if agent.integration.has_api:
            identifier = bot_identifier(agent.pk)
            connection = provider.connect(
                agent_id=agent.provider_agent_id,
                identifier=identifier,
                sip_domain=center.sip_domain,
                name=f"voiso {center.slug} / {agent.name}",
                proxy_addresses=_proxy_addresses(),
            )
            state = {**connection.state, "identifier": identifier}
            agent.sip_uri = connection.sip_uri
        state = provider.configure_transfers(agent_id=agent.provider_agent_id, state=state, targets=targets)
    except ProviderError as exc:
        if state:
            _undo_at_provider(provider, agent, state)
        raise _provider_failed(exc) from None
    agent.provider_state = state
    agent.is_connected = True
    agent.save(update_fields=["sip_uri", "provider_state", "is_connected"])
    bump_routing_revision(agent.contact_center)
    AuditEvent.record(
        center=center,
        by=by,
        action="virtual_agent.connected",
        target=agent,
        changes={"sip_uri": agent.sip_uri, "handoff_targets": [t.sip_uri for t in targets]},
    )
    return agent


def _proxy_addresses() -> list[str]:
    from django.conf import settings

    return list(settings.SIP_PROXY_ADDRESSES)


def _undo_at_provider(provider: ProviderAdapter, agent: VirtualAgent, state: dict[str, Any]) -> None:
    try:
        left = provider.disconnect(agent_id=agent.provider_agent_id, state=state)
    except ProviderError as exc:
        # Leftovers at the provider are named in the log (ids only, no secrets) for cleanup.
        logger.warning(
            "Could not undo %s setup of virtual agent %s (state %s): %s",
            provider.name,
            agent.pk,
            state,
            exc.code,
        )
    else:
        for what in left:
            logger.warning("Left at %s after undoing virtual agent %s: %s", provider.name, agent.pk, what)


@transaction.atomic
def update_virtual_agent(
    *,
    agent: VirtualAgent,
    by: Actor,
    name: str | None = None,
    extension: str | type[Ellipsis] | None = ...,
    max_concurrent_calls: int | None = None,
    is_enabled: bool | None = None,
    handoff_targets: list[str] | None = None,
    default_handoff: str | type[Ellipsis] | None = ...,
    sip_uri: str | None = None,
) -> VirtualAgent:
    center = agent.contact_center
    require_byob(center)
    agent = (
        VirtualAgent.objects.select_for_update(of=("self",))
        .select_related("integration", "extension")
        .get(pk=agent.pk)
    )
    before = _snapshot(agent)
    agent.name = _check_agent_fields(
        center,
        name=agent.name if name is None else name,
        max_concurrent_calls=agent.max_concurrent_calls
        if max_concurrent_calls is None
        else max_concurrent_calls,
        exclude=agent,
    )
    if max_concurrent_calls is not None:
        agent.max_concurrent_calls = max_concurrent_calls
    if is_enabled is not None:
        agent.is_enabled = is_enabled
    if sip_uri is not None and not agent.integration.has_api:
        if not is_valid_bot_uri(sip_uri.strip()):
            raise DomainError("invalid_sip_uri", "Enter the bot's SIP URI.", field="sip_uri")
        agent.sip_uri = sip_uri.strip()
    if default_handoff is not ...:
        agent.default_handoff_extension, agent.default_handoff_number = _default_handoff(
            center, default_handoff
        )
    if extension is not ...:
        if not (extension or "").strip() and agent.extension_id:
            # The reverse relation from routing.Queue: read by name, not imported (apps point one way).
            queues = sorted(agent.queues.values_list("name", flat=True))
            if queues:
                raise DomainError(
                    "extension_in_use",
                    f"{agent.name} is a member of {', '.join(queues)}; a queue cannot ring a bot without "
                    "an extension. Take it out of those queues first.",
                    field="extension",
                )
        agent.extension = set_extension(
            center=center, current=agent.extension, digits=extension, kind=ExtensionKind.VIRTUAL_AGENT
        )
    if handoff_targets is not None:
        targets = resolve_targets(center, handoff_targets)
        if [t.sip_uri for t in targets] != before["handoff_targets"]:
            if agent.is_connected:
                # The provider first: if it refuses, nothing here changes.
                try:
                    agent.provider_state = adapter(agent.integration).configure_transfers(
                        agent_id=agent.provider_agent_id,
                        state=agent.provider_state,
                        targets=_transfer_targets(targets),
                    )
                except ProviderError as exc:
                    raise _provider_failed(exc, field="handoff_targets") from None
            _store_targets(agent, targets)
    agent.save()
    changes = diff(before, _snapshot(agent))
    if changes:
        bump_routing_revision(agent.contact_center)
        AuditEvent.record(center=center, by=by, action="virtual_agent.updated", target=agent, changes=changes)
    return agent


def _snapshot(agent: VirtualAgent) -> dict[str, Any]:
    return {
        "name": agent.name,
        "extension": agent.extension.digits if agent.extension else None,
        "max_concurrent_calls": agent.max_concurrent_calls,
        "is_enabled": agent.is_enabled,
        "sip_uri": agent.sip_uri,
        "default_handoff": (
            agent.default_handoff_extension.digits
            if agent.default_handoff_extension
            else agent.default_handoff_number
        )
        or None,
        "handoff_targets": list(
            agent.handoff_targets.order_by("created", "pk").values_list("sip_uri", flat=True)
        ),
    }


@transaction.atomic
def disconnect_virtual_agent(*, agent: VirtualAgent, by: Actor) -> VirtualAgent:
    """Undo the provider setup; the virtual agent stays, disabled, and can be connected again."""
    require_byob(agent.contact_center)
    agent = (
        VirtualAgent.objects.select_for_update(of=("self",)).select_related("integration").get(pk=agent.pk)
    )
    if not agent.is_connected:
        return agent  # nothing to undo, nothing to record
    try:
        left = adapter(agent.integration).disconnect(
            agent_id=agent.provider_agent_id, state=agent.provider_state
        )
    except ProviderError as exc:
        raise _provider_failed(exc) from None
    agent.is_connected = False
    agent.is_enabled = False
    # What the provider refused to delete stays on record, for the page and for cleanup by hand.
    agent.provider_state = {"left_at_provider": left} if left else {}
    if agent.integration.has_api:
        agent.sip_uri = ""
    agent.save(update_fields=["is_connected", "is_enabled", "provider_state", "sip_uri"])
    bump_routing_revision(agent.contact_center)
    AuditEvent.record(
        center=agent.contact_center,
        by=by,
        action="virtual_agent.disconnected",
        target=agent,
        changes={"left_at_provider": left} if left else None,
    )
    return agent


@transaction.atomic
def delete_virtual_agent(*, agent: VirtualAgent, by: Actor) -> None:
    require_byob(agent.contact_center)
    if agent.is_connected:
        raise DomainError("still_connected", "Disconnect the virtual agent before deleting it.")
    bump_routing_revision(agent.contact_center)
    AuditEvent.record(
        center=agent.contact_center,
        by=by,
        action="virtual_agent.deleted",
        target=agent,
        changes={"name": agent.name, "extension": agent.extension.digits if agent.extension else None},
    )
    extension = agent.extension
    agent.delete()
    if extension is not None:
        extension.delete()


# --- handoff check -----------------------------------------------------------------------


@dataclass(frozen=True)
class HandoffCheckRow:
    sip_uri: str
    is_ok: bool
    resolves_to: str
    problem: str


def check_handoffs(*, agent: VirtualAgent) -> list[HandoffCheckRow]:
    """Compare the transfer targets configured at the provider with the live extensions.

    A target that no longer resolves (deleted queue, renumbered extension, foreign
    domain) is a caller lost at handoff time, so it is reported now.
    """
    center = agent.contact_center
    require_byob(center)
    if not agent.is_connected:
        raise DomainError("not_connected", "Connect the virtual agent first.")
    try:
        configured = adapter(agent.integration).configured_transfers(
            agent_id=agent.provider_agent_id, state=agent.provider_state
        )
    except ProviderError as exc:
        raise _provider_failed(exc) from None
    live = {
        handoff_uri(ext.digits, center.slug): ext
        for ext in Extension.objects.for_center(center).select_related(
            "queue", "membership__user", "virtual_agent"
        )
    }
    recorded = {t.sip_uri: t for t in agent.handoff_targets.select_related("extension")}
    rows = []
    for uri in configured:
        if uri in live:
            rows.append(HandoffCheckRow(uri, True, _extension_label(live[uri]), ""))
            continue
        target = recorded.get(uri)
        if target is not None and target.number:
            refusal = center.external_refusal(target.number)
            if center.allows_external_transfers and refusal is not None:
                rows.append(HandoffCheckRow(uri, False, "", refusal))
            elif center.allows_external_transfers:
                rows.append(HandoffCheckRow(uri, True, f"External {target.number}", ""))
            else:
                rows.append(
                    HandoffCheckRow(uri, False, "", "External handoffs are blocked for this contact center.")
                )
        elif target is not None and target.extension is None:
            rows.append(HandoffCheckRow(uri, False, "", f"{target.label} was deleted."))
        elif target is not None and target.extension is not None:
            rows.append(
                HandoffCheckRow(
                    uri,
                    False,
                    "",
                    f"{target.label} now has extension {target.extension.digits}; update the targets.",
                )
            )
        else:
            rows.append(HandoffCheckRow(uri, False, "", "Not an extension of this contact center."))
    for uri, target in recorded.items():
        if uri not in configured:
            rows.append(HandoffCheckRow(uri, False, target.label, "Chosen here but missing at the provider."))
    return rows
