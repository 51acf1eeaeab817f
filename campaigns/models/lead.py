"""Leads: the numbers a campaign dials, with their state in the campaign."""

from __future__ import annotations

import uuid

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from campaigns.models.attempt import AttemptOutcome
from campaigns.models.campaign import Campaign
from voiso_byob.models import ContactCenter

E164_REGEX = r"^\+[1-9][0-9]{1,14}$"


class LeadStatus(models.TextChoices):
    NEW = "new", "New"
    IN_PROGRESS = "in_progress", "In progress"
    RETRY = "retry", "Waiting to retry"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    DNC = "dnc", "Do not call"
    EXHAUSTED = "exhausted", "Attempts exhausted"


# Leads a worker may claim (with an attempt time due).
DIALABLE_LEAD_STATUSES = (LeadStatus.NEW, LeadStatus.RETRY)
# Leads not finished yet: the rest count as done on a campaign's progress bar.
OPEN_LEAD_STATUSES = (LeadStatus.NEW, LeadStatus.RETRY, LeadStatus.IN_PROGRESS)


class LeadQuerySet(models.QuerySet["Lead"]):
    def for_center(self, center: ContactCenter) -> LeadQuerySet:
        return self.filter(contact_center=center)

    def due(self, now) -> LeadQuerySet:
        return self.filter(
            is_active=True, status__in=DIALABLE_LEAD_STATUSES, next_attempt_at__lte=now
        ).order_by("priority", "next_attempt_at")


class Lead(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Denormalised from the campaign: a number put on the center's DNC list retires its leads in
    # every campaign (the (center, phone) index). Neither key has an index of its own: the unique
    # (campaign, phone) and that index lead with them.
    contact_center = models.ForeignKey(
        ContactCenter, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="leads", db_index=False)
    phone = models.CharField(max_length=16)
    name = models.CharField(max_length=150, blank=True)
    source = models.CharField(max_length=150, blank=True)
    priority = models.PositiveSmallIntegerField(
        default=500, validators=[MinValueValidator(1), MaxValueValidator(1000)]
    )
    is_active = models.BooleanField("active", default=True)
    # Sent to the bot as SIP X- headers on the INVITE.
    context = models.JSONField(default=dict, blank=True)
    # IANA zones the number may be in (phonenumbers' mapper); dialled only when the window is open
    # in every one of them. Empty: the campaign's zone.
    timezones = models.JSONField(default=list, blank=True)
    status = models.CharField(max_length=16, choices=LeadStatus.choices, default=LeadStatus.NEW)
    attempts = models.PositiveSmallIntegerField(default=0)
    next_attempt_at = models.DateTimeField(default=dj_timezone.now)
    last_outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, blank=True)
    created = models.DateTimeField(default=dj_timezone.now)

    objects = LeadQuerySet.as_manager()

    class Meta:
        ordering = ["priority", "created"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "phone"], name="campaigns_lead_phone_unique"),
            models.CheckConstraint(condition=Q(phone__regex=E164_REGEX), name="campaigns_lead_phone_e164"),
            models.CheckConstraint(
                condition=Q(status__in=LeadStatus.values), name="campaigns_lead_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=1) & Q(priority__lte=1000), name="campaigns_lead_priority_range"
            ),
        ]
        indexes = [
            # The workers' claim: due leads of one campaign by priority then attempt time.
            models.Index(
                fields=["campaign", "priority", "next_attempt_at"],
                condition=Q(is_active=True, status__in=["new", "retry"]),
                name="campaigns_lead_due",
            ),
            models.Index(fields=["contact_center", "phone"], name="campaigns_lead_center_phone"),
        ]

    def __str__(self) -> str:
        return f"{self.phone} {self.name}".strip()
