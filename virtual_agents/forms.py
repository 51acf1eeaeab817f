from __future__ import annotations

from typing import Any

from django import forms

from virtual_agents.models import ProviderIntegration, VirtualAgent
from virtual_agents.providers.base import ProviderAgent
from virtual_agents.services import MAX_CAPACITY
from voiso_byob.forms import ExtensionField
from voiso_byob.models import ContactCenter, Extension, ExtensionKind


class IntegrationForm(forms.Form):
    label = forms.CharField(
        max_length=100, help_text="How you will recognise this account, e.g. “Vapi production”."
    )
    # Write-only: never rendered back, not even after a failed submit.
    api_key = forms.CharField(
        label="API key",
        max_length=512,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
    )


class IntegrationEditForm(forms.Form):
    label = forms.CharField(max_length=100)
    api_key = forms.CharField(
        label="New API key",
        max_length=512,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="Leave empty to keep the current key. A new key is verified before it is saved.",
    )
    # Write-only like the key: the page says only whether one is set.
    webhook_secret = forms.CharField(
        label="Webhook secret",
        max_length=512,
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text="The signing secret of the provider's post-call webhook. Leave empty to keep it.",
    )


def _extension_choices(center: ContactCenter, *, exclude: Extension | None = None) -> list[tuple[str, str]]:
    choices = []
    extensions = (
        Extension.objects.for_center(center)
        .select_related("queue", "membership__user", "virtual_agent")
        .order_by("kind", "digits")
    )
    for ext in extensions:
        if exclude is not None and ext.pk == exclude.pk:
            continue
        if ext.kind == ExtensionKind.QUEUE and hasattr(ext, "queue"):
            label = f"Queue {ext.queue.name} · {ext.digits}"
        elif ext.kind == ExtensionKind.AGENT and hasattr(ext, "membership"):
            label = f"{ext.membership.user.display_name} · {ext.digits}"
        elif ext.kind == ExtensionKind.VIRTUAL_AGENT and hasattr(ext, "virtual_agent"):
            label = f"Virtual agent {ext.virtual_agent.name} · {ext.digits}"
        else:
            continue
        choices.append((ext.digits, label))
    return choices


class VirtualAgentForm(forms.Form):
    name = forms.CharField(max_length=100)
    max_concurrent_calls = forms.IntegerField(
        label="Capacity (concurrent calls)", min_value=1, max_value=MAX_CAPACITY, initial=10
    )
    is_enabled = forms.BooleanField(label="Enabled", required=False, initial=True)
    external_numbers = forms.CharField(
        label="External numbers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="One E.164 number per line, e.g. +12125550199.",
    )
    default_handoff = forms.CharField(
        label="Default handoff",
        required=False,
        max_length=32,
        help_text="Extension or +E.164 number used when the bot cannot take a call.",
    )

    def __init__(
        self,
        *args: Any,
        center: ContactCenter,
        integration: ProviderIntegration,
        agents: list[ProviderAgent] | None = None,
        instance: VirtualAgent | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.center = center
        if instance is None and integration.has_api:
            self.fields["provider_agent_id"] = forms.ChoiceField(
                label=f"{integration.get_provider_display()} agent",
                choices=[(a.id, f"{a.name} ({a.id})") for a in agents or []],
                widget=forms.RadioSelect,
            )
        if not integration.has_api:
            self.fields["sip_uri"] = forms.CharField(
                label="Bot SIP URI",
                max_length=256,
                help_text="Where calls for this bot are sent, e.g. sip:bot@sip.example.com;transport=tls",
            )
        self.fields["extension"] = ExtensionField(
            center, help_text="Optional: lets flows and queues reach the bot, and makes it a REFER target."
        )
        self.fields["handoff_targets"] = forms.MultipleChoiceField(
            label="Hand off to",
            choices=_extension_choices(center, exclude=instance.extension if instance else None),
            required=False,
            widget=forms.CheckboxSelectMultiple,
            help_text="The queues and people the bot may transfer callers to by SIP REFER.",
        )
        if not center.allows_external_transfers:
            del self.fields["external_numbers"]
        order = [
            "provider_agent_id",
            "sip_uri",
            "name",
            "extension",
            "max_concurrent_calls",
            "is_enabled",
            "handoff_targets",
            "external_numbers",
            "default_handoff",
        ]
        self.order_fields([name for name in order if name in self.fields])

    def targets(self) -> list[str]:
        numbers = self.cleaned_data.get("external_numbers") or ""
        return list(self.cleaned_data.get("handoff_targets") or []) + [
            line.strip() for line in numbers.splitlines() if line.strip()
        ]
