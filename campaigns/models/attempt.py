"""Call attempts: one row per dial, moved by the call's events."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from campaigns.models.campaign import Campaign
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter

# Every call the dialer places has an id with this prefix; ingestion routes its events to the attempt.
DIALER_CALL_ID_PREFIX = "dial-"


class AttemptOutcome(models.TextChoices):
    COMPLETED = "completed", "Completed"
    BUSY = "busy", "Busy"
    NO_ANSWER = "no_answer", "No answer"
    MACHINE = "machine", "Answering machine"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"
    INVALID_NUMBER = "invalid_number", "Invalid number"
    # Claimed by a worker that died before originating: the lead goes back without an attempt used.
    RELEASED = "released", "Released (never dialled)"


class CallAttempt(models.Model):
    """One dial of one lead. (lead, number) is unique: the same attempt can never be dialled twice."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Without indexes of their own: the unique (center, call id) and (lead, number) lead with them,
    # and every index is written by each dial (bench/dialer.py).
    contact_center = models.ForeignKey(
        ContactCenter, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="attempts")
    # By name: the lead module imports AttemptOutcome from this one.
    lead = models.ForeignKey(
        "campaigns.Lead", on_delete=models.CASCADE, related_name="call_attempts", db_index=False
    )
    number = models.PositiveSmallIntegerField(help_text="1 for the lead's first attempt.")
    phone = models.CharField(max_length=16)
    virtual_agent = models.ForeignKey(
        VirtualAgent, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    call_id = models.CharField(max_length=128)
    claimed_at = models.DateTimeField(default=dj_timezone.now)
    originated_at = models.DateTimeField(null=True, blank=True)
    answered_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    outcome = models.CharField(max_length=16, choices=AttemptOutcome.choices, blank=True)
    sip_status = models.PositiveSmallIntegerField(null=True, blank=True)
    handed_off = models.BooleanField(default=False)

    class Meta:
        ordering = ["-claimed_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["lead", "number"], name="campaigns_callattempt_lead_number_unique"
            ),
            models.UniqueConstraint(
                fields=["contact_center", "call_id"], name="campaigns_callattempt_call_id_unique"
            ),
            models.CheckConstraint(
                condition=Q(outcome="") | Q(outcome__in=AttemptOutcome.values),
                name="campaigns_callattempt_outcome_valid",
            ),
        ]
        indexes = [
            # The daily cap: attempts per number across the center's campaigns in the last 24 h.
            models.Index(
                fields=["contact_center", "phone", "claimed_at"], name="campaigns_attempt_daily_cap"
            ),
            # Each tick's count of the dials in progress per bot (and the silent-dial sweep).
            models.Index(
                fields=["virtual_agent"], condition=Q(ended_at__isnull=True), name="campaigns_attempt_open"
            ),
            # Each tick's sweep of claims never dialled.
            models.Index(
                fields=["claimed_at"],
                condition=Q(originated_at__isnull=True),
                name="campaigns_attempt_undialled",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.phone} #{self.number} ({self.outcome or 'open'})"
