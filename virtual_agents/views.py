"""Virtual agents pages: the list, the connect wizard, integration and agent detail."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from virtual_agents import services
from virtual_agents.forms import IntegrationEditForm, IntegrationForm, VirtualAgentForm
from virtual_agents.models import Provider, ProviderIntegration, VirtualAgent
from virtual_agents.webhooks import WEBHOOK_PROVIDERS, has_webhook_secret, webhook_url
from voiso_byob.access import member_required, require_membership
from voiso_byob.errors import DomainError
from voiso_byob.forms import run_service
from voiso_byob.models import ContactCenter, Extension, ExtensionKind
from voiso_byob.sip import handoff_uri
from voiso_byob.views import confirm_delete

PROVIDER_NOTES = {
    Provider.ELEVENLABS: "Imports a SIP-trunk number for the agent and adds a SIP REFER transfer tool.",
    Provider.VAPI: "Creates a BYO SIP trunk and number for the assistant and a transferCall tool (REFER).",
    Provider.RETELL: "Imports a number on Retell's SIP trunk and adds cold-transfer (SIP REFER) tools.",
    Provider.GENERIC_SIP: "No provider API: type the bot's SIP URI and paste the handoff URIs into the bot.",
}


def get_integration_for_user(request: HttpRequest, pk: UUID, *, write: bool = False) -> ProviderIntegration:
    membership = require_membership(request, write=write)
    return get_object_or_404(ProviderIntegration.objects.for_center(membership.contact_center), pk=pk)


def get_virtual_agent_for_user(request: HttpRequest, pk: UUID, *, write: bool = False) -> VirtualAgent:
    membership = require_membership(request, write=write)
    return get_object_or_404(VirtualAgent.objects.for_center(membership.contact_center).with_details(), pk=pk)


def _byob_off(request: HttpRequest, center: ContactCenter) -> HttpResponse:
    return render(request, "virtual_agents/byob_disabled.html", {"center": center}, status=403)


def byob_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Every page but the index needs BYOB on, as every API endpoint does: without it, the
    explanation (403). A center switched off keeps its bots, but nobody changes them here."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        center = require_membership(request).contact_center
        if not center.byob_enabled:
            return _byob_off(request, center)
        return view(request, *args, **kwargs)

    return wrapper


def _redirect(request: HttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def handoff_uris(center: ContactCenter, *, bot: VirtualAgent) -> list[dict[str, str]]:
    """Every queue, user and other virtual agent with an extension, with the URI a bot REFERs to.

    Another bot is as valid a REFER target as a queue (routing.refer resolves it); the bot
    itself is left out: a transfer to itself goes nowhere.
    """
    rows = []
    for ext in (
        Extension.objects.for_center(center)
        .filter(kind__in=[ExtensionKind.QUEUE, ExtensionKind.AGENT, ExtensionKind.VIRTUAL_AGENT])
        .exclude(virtual_agent=bot)
        .select_related("queue", "membership__user", "virtual_agent")
        .order_by("kind", "digits")
    ):
        if ext.kind == ExtensionKind.QUEUE and hasattr(ext, "queue"):
            rows.append({"kind": "Queue", "name": ext.queue.name, "digits": ext.digits})
        elif ext.kind == ExtensionKind.VIRTUAL_AGENT and hasattr(ext, "virtual_agent"):
            other = ext.virtual_agent
            # Listed all the same (it may be switched on later), but a REFER to it answers 480 now.
            if not other.is_enabled:
                name = f"{other.name} (disabled)"
            elif not other.is_connected:
                name = f"{other.name} (not connected)"
            else:
                name = other.name
            rows.append({"kind": "Virtual agent", "name": name, "digits": ext.digits})
        elif hasattr(ext, "membership"):
            rows.append({"kind": "User", "name": ext.membership.user.display_name, "digits": ext.digits})
    for row in rows:
        row["uri"] = handoff_uri(row["digits"], center.slug)
    return rows


@member_required
def index(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    center = membership.contact_center
    if not center.byob_enabled:
        return render(request, "virtual_agents/byob_disabled.html", {"center": center})
    return render(
        request,
        "virtual_agents/virtualagent_list.html",
        {
            "integrations": ProviderIntegration.objects.for_center(center),
            "agents": VirtualAgent.objects.for_center(center).select_related("integration", "extension"),
        },
    )


@member_required
@byob_required
@require_http_methods(["GET", "POST"])
def connect_start(request: HttpRequest) -> HttpResponse:
    """Wizard steps 1 and 2: choose the provider, paste the key, verify live."""
    membership = require_membership(request, write=True)
    center = membership.contact_center
    provider = request.POST.get("provider") or request.GET.get("provider") or ""
    if provider not in Provider.values:
        return render(request, "virtual_agents/connect_provider.html", {"providers": _provider_cards()})
    form = IntegrationForm(request.POST or None, initial={"label": Provider(provider).label})
    if request.method == "POST" and form.is_valid():
        integration = run_service(
            form,
            lambda: services.create_integration(
                center=center,
                provider=provider,
                label=form.cleaned_data["label"],
                credentials={"api_key": form.cleaned_data["api_key"]},
                by=request.user,
            ),
        )
        if integration is not None:
            return _redirect(request, reverse("virtual_agents:agent_create", args=[integration.pk]))
    template = "virtual_agents/connect_credentials.html"
    if request.htmx:
        template += "#step"
    return render(
        request,
        template,
        {"form": form, "provider": Provider(provider), "note": PROVIDER_NOTES[provider]},
        # htmx swaps only 2xx answers; the step with its errors is the answer.
        status=400 if form.errors and not request.htmx else 200,
    )


def _provider_cards() -> list[dict[str, str]]:
    return [{"value": p.value, "label": p.label, "note": PROVIDER_NOTES[p]} for p in Provider]


@member_required
@byob_required
@require_http_methods(["GET", "POST"])
def agent_create(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Wizard step 3: pick the provider's agent, name it, choose capacity and handoff targets."""
    integration = get_integration_for_user(request, pk, write=True)
    center = integration.contact_center
    agents, error = None, None
    if integration.has_api:
        try:
            agents = services.list_provider_agents(integration=integration)
        except DomainError as exc:
            error = exc.message
    form = VirtualAgentForm(request.POST or None, center=center, integration=integration, agents=agents)
    if request.method == "POST" and error is None and form.is_valid():
        data = form.cleaned_data
        agent = run_service(
            form,
            lambda: services.create_virtual_agent(
                integration=integration,
                by=request.user,
                name=data["name"],
                provider_agent_id=data.get("provider_agent_id", ""),
                sip_uri=data.get("sip_uri", ""),
                extension=data["extension"],
                max_concurrent_calls=data["max_concurrent_calls"],
                is_enabled=data["is_enabled"],
                handoff_targets=form.targets(),
                default_handoff=data["default_handoff"],
                connect=True,
            ),
        )
        if agent is not None:
            messages.success(request, f"{agent.name} is connected.")
            return _redirect(request, reverse("virtual_agents:agent_detail", args=[agent.pk]))
    if agents is not None and not agents and error is None:
        error = (
            f"There are no agents in this {integration.get_provider_display()} account yet; "
            "create one there first."
        )
    return render(
        request,
        "virtual_agents/virtualagent_form.html",
        {"form": form, "integration": integration, "error": error, "creating": True},
        status=400 if form.errors else 200,
    )


@member_required
@byob_required
def agent_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    agent = get_virtual_agent_for_user(request, pk)
    center = agent.contact_center
    return render(
        request,
        "virtual_agents/virtualagent_detail.html",
        {
            "agent": agent,
            "center": center,
            "targets": agent.handoff_targets.all(),
            "handoff_uris": handoff_uris(center, bot=agent),
            "state_rows": _state_rows(agent),
            "agent_handoff_uri": handoff_uri(agent.extension.digits, center.slug)
            if agent.extension
            else None,
        },
    )


STATE_LABELS = {
    "identifier": "Bot number at the provider",
    "phone_number_id": "Imported phone number id",
    "phone_number": "Imported phone number",
    "credential_id": "SIP trunk credential id",
    "tool_id": "Transfer tool id",
    "llm_id": "Retell LLM id",
}


def _state_rows(agent: VirtualAgent) -> list[tuple[str, str]]:
    return [
        (label, str(agent.provider_state[key]))
        for key, label in STATE_LABELS.items()
        if agent.provider_state.get(key)
    ]


@member_required
@byob_required
@require_http_methods(["GET", "POST"])
def agent_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    agent = get_virtual_agent_for_user(request, pk, write=True)
    center = agent.contact_center
    targets = list(agent.handoff_targets.all())
    initial: dict[str, Any] = {
        "name": agent.name,
        "sip_uri": agent.sip_uri,
        "extension": agent.extension.digits if agent.extension else "",
        "max_concurrent_calls": agent.max_concurrent_calls,
        "is_enabled": agent.is_enabled,
        "handoff_targets": [t.extension.digits for t in targets if t.extension],
        "external_numbers": "\n".join(t.number for t in targets if t.number),
        "default_handoff": agent.default_handoff_extension.digits
        if agent.default_handoff_extension
        else agent.default_handoff_number,
    }
    form = VirtualAgentForm(
        request.POST or None, initial=initial, center=center, integration=agent.integration, instance=agent
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        updated = run_service(
            form,
            lambda: services.update_virtual_agent(
                agent=agent,
                by=request.user,
                name=data["name"],
                sip_uri=data.get("sip_uri"),
                extension=data["extension"],
                max_concurrent_calls=data["max_concurrent_calls"],
                is_enabled=data["is_enabled"],
                handoff_targets=form.targets(),
                default_handoff=data["default_handoff"],
            ),
        )
        if updated is not None:
            messages.success(request, f"{updated.name} saved.")
            return redirect("virtual_agents:agent_detail", pk=agent.pk)
    return render(
        request,
        "virtual_agents/virtualagent_form.html",
        {"form": form, "integration": agent.integration, "agent": agent},
        status=400 if form.errors else 200,
    )


@require_POST
@member_required
@byob_required
def agent_check(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Handoff target check: which configured transfers no longer resolve. Changes nothing."""
    agent = get_virtual_agent_for_user(request, pk)
    try:
        rows, error = services.check_handoffs(agent=agent), None
    except DomainError as exc:
        rows, error = [], exc.message
    template = "virtual_agents/virtualagent_detail.html"
    context = {"agent": agent, "check_rows": rows, "check_error": error, "checked": True}
    if request.htmx:
        return render(request, f"{template}#check", context)
    return render(
        request,
        template,
        {
            **context,
            "center": agent.contact_center,
            "targets": agent.handoff_targets.all(),
            "handoff_uris": handoff_uris(agent.contact_center, bot=agent),
            "state_rows": _state_rows(agent),
        },
    )


def _agent_action(request: HttpRequest, pk: UUID, action: str) -> HttpResponse:
    agent = get_virtual_agent_for_user(request, pk, write=True)
    try:
        if action == "disconnect":
            agent = services.disconnect_virtual_agent(agent=agent, by=request.user)
            left = agent.provider_state.get("left_at_provider") or []
            if left:
                messages.warning(
                    request,
                    f"{agent.name} is disconnected; the rest of its setup at the provider was removed, "
                    "but not all of it. " + " ".join(left),
                )
            else:
                messages.success(
                    request, f"{agent.name} is disconnected; its setup at the provider was removed."
                )
        else:
            services.connect_virtual_agent(agent=agent, by=request.user)
            messages.success(request, f"{agent.name} is connected again.")
    except DomainError as exc:
        messages.error(request, exc.message)
    return redirect("virtual_agents:agent_detail", pk=agent.pk)


@require_POST
@member_required
@byob_required
def agent_disconnect(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _agent_action(request, pk, "disconnect")


@require_POST
@member_required
@byob_required
def agent_reconnect(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _agent_action(request, pk, "reconnect")


@member_required
@byob_required
@require_http_methods(["GET", "POST"])
def agent_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    agent = get_virtual_agent_for_user(request, pk, write=True)
    return confirm_delete(
        request,
        what=f"virtual agent {agent.name}",
        delete=lambda: services.delete_virtual_agent(agent=agent, by=request.user),
        done=f"Virtual agent {agent.name} deleted.",
        success_url="virtual_agents:index",
        cancel="virtual_agents:index",
    )


@member_required
@byob_required
def integration_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    integration = get_integration_for_user(request, pk)
    return render(
        request,
        "virtual_agents/providerintegration_detail.html",
        {
            "integration": integration,
            "agents": integration.virtual_agents.select_related("extension"),
            "webhook_url": webhook_url(integration, request),
            "has_webhook_secret": has_webhook_secret(integration),
        },
    )


@require_POST
@member_required
@byob_required
def integration_verify(request: HttpRequest, pk: UUID) -> HttpResponse:
    integration = get_integration_for_user(request, pk, write=True)
    try:
        integration = services.verify_integration(integration=integration, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        if integration.status == "connected":
            messages.success(request, f"{integration.get_provider_display()} accepted the API key.")
        else:
            messages.error(request, integration.last_error)
    return redirect("virtual_agents:integration_detail", pk=integration.pk)


@member_required
@byob_required
@require_http_methods(["GET", "POST"])
def integration_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    integration = get_integration_for_user(request, pk, write=True)
    form = IntegrationEditForm(request.POST or None, initial={"label": integration.label})
    if not integration.has_api:
        del form.fields["api_key"]
    if integration.provider not in WEBHOOK_PROVIDERS:
        del form.fields["webhook_secret"]
    elif integration.provider == Provider.RETELL:
        form.fields["webhook_secret"].label = "Webhook key"
        form.fields["webhook_secret"].help_text = (
            "Retell signs webhooks with the API key that has the webhook badge. Paste it only if it "
            "is not the key above; leave empty to keep the current setting."
        )
    if request.method == "POST" and form.is_valid():
        updated = run_service(
            form,
            lambda: services.update_integration(
                integration=integration,
                by=request.user,
                label=form.cleaned_data["label"],
                credentials={"api_key": form.cleaned_data.get("api_key")}
                if form.cleaned_data.get("api_key")
                else None,
                webhook_secret=form.cleaned_data.get("webhook_secret") or None,
            ),
        )
        if updated is not None:
            messages.success(request, f"{updated.label} saved.")
            return redirect("virtual_agents:integration_detail", pk=integration.pk)
    return render(
        request,
        "virtual_agents/providerintegration_form.html",
        {"form": form, "integration": integration},
        status=400 if form.errors else 200,
    )


@member_required
@byob_required
@require_http_methods(["GET", "POST"])
def integration_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    integration = get_integration_for_user(request, pk, write=True)
    return confirm_delete(
        request,
        what=f"integration {integration.label}",
        delete=lambda: services.delete_integration(integration=integration, by=request.user),
        done=f"Integration {integration.label} deleted.",
        success_url="virtual_agents:index",
        cancel="virtual_agents:index",
    )
