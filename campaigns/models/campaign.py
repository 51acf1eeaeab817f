"""Campaigns: their settings, status machine values and the portal's read of their progress."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from routing.models import PhoneNumber, Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter, validate_timezone

# Outcomes that may be retried after the campaign's delay for that outcome; `rejected` and
# `invalid_number` never are (the number or the callee said no), `completed` needs no retry.
RETRYABLE_OUTCOMES = ("busy", "no_answer", "machine", "failed")
DEFAULT_RETRY_MINUTES = {"busy": 30, "no_answer": 60, "machine": 240, "failed": 15}
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class CampaignStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    ACTIVE = "active", "Active"
    PAUSED = "paused", "Paused"
    AUTO_PAUSED = "auto_paused", "Paused automatically"
    STOPPED = "stopped", "Stopped"
    COMPLETED = "completed", "Completed"


class AutoPauseReason(models.TextChoices):
    NO_CAPACITY = "no_capacity", "No free bot capacity"
    OUTSIDE_HOURS = "outside_hours", "Outside calling hours"
    HANDOFF_QUEUE_FULL = "handoff_queue_full", "Handoff queue full"


class CampaignQuerySet(models.QuerySet["Campaign"]):
    def for_center(self, center: ContactCenter) -> CampaignQuerySet:
        return self.filter(contact_center=center)

    def dialling(self) -> CampaignQuerySet:
        """Campaigns a worker looks at each tick: auto-paused ones resume by themselves."""
        return self.filter(status__in=[CampaignStatus.ACTIVE, CampaignStatus.AUTO_PAUSED])


class Campaign(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="campaigns")
    name = models.CharField(max_length=100)
    virtual_agents = models.ManyToManyField(VirtualAgent, related_name="campaigns")
    handoff_queue = models.ForeignKey(
        Queue, null=True, blank=True, on_delete=models.PROTECT, related_name="campaigns"
    )
    # Pause when more handed-off callers than this wait in the handoff queue.
    handoff_queue_threshold = models.PositiveIntegerField(
        default=5, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    caller_ids = models.ManyToManyField(PhoneNumber, blank=True, related_name="campaigns")
    timezone = models.CharField(max_length=64, blank=True, validators=[validate_timezone])
    # [{"days": ["mon", …], "start": "09:00", "end": "20:00"}], in each lead's local time.
    calling_hours = models.JSONField(default=list)
    max_attempts = models.PositiveSmallIntegerField(
        default=3, validators=[MinValueValidator(1), MaxValueValidator(20)]
    )
    retry_minutes = models.JSONField(default=dict)
    priority = models.PositiveSmallIntegerField(
        default=100, validators=[MinValueValidator(1), MaxValueValidator(1000)], help_text="Lower first."
    )
    status = models.CharField(max_length=16, choices=CampaignStatus.choices, default=CampaignStatus.DRAFT)
    status_reason = models.CharField(max_length=32, choices=AutoPauseReason.choices, blank=True)
    status_changed_at = models.DateTimeField(default=dj_timezone.now)
    created = models.DateTimeField(default=dj_timezone.now)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = CampaignQuerySet.as_manager()

    class Meta:
        ordering = ["priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["contact_center", "name"], name="campaigns_campaign_name_unique"),
            models.CheckConstraint(
                condition=Q(status__in=CampaignStatus.values), name="campaigns_campaign_status_valid"
            ),
            # A reason belongs to auto_paused and to nothing else.
            models.CheckConstraint(
                condition=(Q(status=CampaignStatus.AUTO_PAUSED) & Q(status_reason__in=AutoPauseReason.values))
                | (~Q(status=CampaignStatus.AUTO_PAUSED) & Q(status_reason="")),
                name="campaigns_campaign_reason_matches_status",
            ),
            models.CheckConstraint(
                condition=Q(max_attempts__gte=1) & Q(max_attempts__lte=20),
                name="campaigns_campaign_max_attempts_range",
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=1) & Q(priority__lte=1000), name="campaigns_campaign_priority_range"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def zone_name(self) -> str:
        return self.timezone or self.contact_center.timezone

    def retry_delay_minutes(self, outcome: str) -> int | None:
        """Minutes before a lead with this outcome is tried again; None: never."""
        if outcome not in RETRYABLE_OUTCOMES:
            return None
        return int(self.retry_minutes.get(outcome, DEFAULT_RETRY_MINUTES[outcome]))
