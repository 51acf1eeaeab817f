"""Bot providers connected to a contact center, and the virtual agents that stand for their bots."""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from voiso_byob.crypto import EncryptedJSONField
from voiso_byob.models import ContactCenter, Extension


class Provider(models.TextChoices):
    ELEVENLABS = "elevenlabs", "ElevenLabs"
    VAPI = "vapi", "Vapi"
    RETELL = "retell", "Retell AI"
    GENERIC_SIP = "generic_sip", "Any SIP bot"


class IntegrationStatus(models.TextChoices):
    CONNECTED = "connected", "Connected"
    ERROR = "error", "Error"
    DISCONNECTED = "disconnected", "Disconnected"


class ProviderIntegrationQuerySet(models.QuerySet["ProviderIntegration"]):
    def for_center(self, center: ContactCenter) -> ProviderIntegrationQuerySet:
        return self.filter(contact_center=center)


class ProviderIntegration(models.Model):
    """An account at a bot provider. Credentials are encrypted and write-only."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="integrations")
    provider = models.CharField(max_length=16, choices=Provider.choices)
    label = models.CharField(max_length=100)
    credentials = EncryptedJSONField(blank=True, default=dict, editable=False)
    # A recognisable tail of the API key ('…a1f9'); the only part of it ever shown.
    credentials_hint = models.CharField(max_length=8, blank=True, editable=False)
    status = models.CharField(
        max_length=16, choices=IntegrationStatus.choices, default=IntegrationStatus.DISCONNECTED
    )
    last_verified_at = models.DateTimeField(null=True, blank=True)
    # Shown to administrators; adapters build it from the provider's answer, never from secrets.
    last_error = models.TextField(blank=True)
    created = models.DateTimeField(default=timezone.now)

    objects = ProviderIntegrationQuerySet.as_manager()

    class Meta:
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact_center", "label"], name="virtual_agents_integration_unique_label"
            ),
            models.CheckConstraint(
                condition=Q(provider__in=Provider.values),
                name="virtual_agents_integration_provider_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=IntegrationStatus.values),
                name="virtual_agents_integration_status_valid",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.get_provider_display()})"

    @property
    def has_api(self) -> bool:
        return self.provider != Provider.GENERIC_SIP


class VirtualAgentQuerySet(models.QuerySet["VirtualAgent"]):
    def for_center(self, center: ContactCenter) -> VirtualAgentQuerySet:
        return self.filter(contact_center=center)

    def with_details(self) -> VirtualAgentQuerySet:
        return self.select_related("integration", "extension", "default_handoff_extension").prefetch_related(
            "handoff_targets__extension"
        )


class VirtualAgent(models.Model):
    """A third-party bot as a member of the contact center: reachable by INVITE, hands back by REFER."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="virtual_agents")
    # PROTECT: a virtual agent must be disconnected before its integration goes.
    integration = models.ForeignKey(
        ProviderIntegration, on_delete=models.PROTECT, related_name="virtual_agents"
    )
    provider_agent_id = models.CharField(max_length=200, blank=True)
    name = models.CharField(max_length=100)
    extension = models.OneToOneField(
        Extension, null=True, blank=True, on_delete=models.SET_NULL, related_name="virtual_agent"
    )
    sip_uri = models.CharField(
        "Bot SIP URI", max_length=256, help_text="Where calls for this bot are sent (INVITE)."
    )
    max_concurrent_calls = models.PositiveIntegerField(
        default=10, validators=[MinValueValidator(1), MaxValueValidator(10_000)]
    )
    is_enabled = models.BooleanField("enabled", default=True)
    # Where a call goes when the bot cannot take it or hands back without a target.
    default_handoff_extension = models.ForeignKey(
        Extension, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    default_handoff_number = models.CharField(max_length=16, blank=True)
    # Ids of what connect created at the provider (number, tool, credential), to undo it.
    provider_state = models.JSONField(default=dict, blank=True)
    is_connected = models.BooleanField(default=False)
    created = models.DateTimeField(default=timezone.now)

    objects = VirtualAgentQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                fields=["contact_center", "name"], name="virtual_agents_virtualagent_unique_name"
            ),
            models.CheckConstraint(
                condition=Q(max_concurrent_calls__gte=1),
                name="virtual_agents_virtualagent_capacity_positive",
            ),
            models.CheckConstraint(
                condition=Q(default_handoff_extension__isnull=True) | Q(default_handoff_number=""),
                name="virtual_agents_virtualagent_one_default_handoff",
            ),
        ]

    def __str__(self) -> str:
        return self.name


class HandoffTarget(models.Model):
    """A transfer destination configured in the bot's transfer tool at the provider.

    `sip_uri` is what was pushed; `extension` is the live object it was built from.
    When the extension is deleted (SET_NULL) or renumbered, the pushed URI no
    longer resolves: the handoff check reports it before a caller is lost.
    """

    virtual_agent = models.ForeignKey(VirtualAgent, on_delete=models.CASCADE, related_name="handoff_targets")
    extension = models.ForeignKey(
        Extension, null=True, blank=True, on_delete=models.SET_NULL, related_name="handoff_targets"
    )
    number = models.CharField(max_length=16, blank=True)
    label = models.CharField(max_length=150)
    sip_uri = models.CharField(max_length=256)
    created = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["label"]
        constraints = [
            models.UniqueConstraint(
                fields=["virtual_agent", "sip_uri"], name="virtual_agents_handofftarget_unique_uri"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} → {self.sip_uri}"
