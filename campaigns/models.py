"""Dialer campaigns: bots as the agents of outbound calls.

A campaign dials its leads with its virtual agents as the agents. Every dial is one `CallAttempt`;
what happened to it comes back through the events API (reporting calls `campaigns.services`).
Legal limits that no campaign may widen live per center in `DialerPolicy` and, per region, in
`RegionalCallingRule` (data staff edit in Django admin, not code: the state tables disagree and change).
"""

from __future__ import annotations

import uuid
from datetime import datetime, time
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone as dj_timezone

from routing.models import PhoneNumber, Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter, validate_timezone

E164_REGEX = r"^\+[1-9][0-9]{1,14}$"

# Outcomes that may be retried after the campaign's delay for that outcome; `rejected` and
# `invalid_number` never are (the number or the callee said no), `completed` needs no retry.
RETRYABLE_OUTCOMES = ("busy", "no_answer", "machine", "failed")
DEFAULT_RETRY_MINUTES = {"busy": 30, "no_answer": 60, "machine": 240, "failed": 15}
# Every call the dialer places has an id with this prefix; ingestion routes its events to the attempt.
DIALER_CALL_ID_PREFIX = "dial-"
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


class DialerPolicy(models.Model):
    """A center's legal frame for every campaign: the window in the lead's local time and the daily cap.

    A campaign's own calling hours are intersected with this window, never widen it.
    """

    contact_center = models.OneToOneField(
        ContactCenter, on_delete=models.CASCADE, primary_key=True, related_name="dialer_policy"
    )
    # ISO 3166 region for numbers written without a country code at import.
    default_region = models.CharField(max_length=2, default="US")
    legal_start = models.TimeField(default=time(8, 0))
    legal_end = models.TimeField(default=time(21, 0))
    daily_cap = models.PositiveSmallIntegerField(
        default=3,
        validators=[MinValueValidator(1), MaxValueValidator(15)],
        help_text="Attempts per number per rolling 24 h across all of the center's campaigns.",
    )

    class Meta:
        verbose_name_plural = "dialer policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(daily_cap__gte=1) & Q(daily_cap__lte=15), name="campaigns_dialerpolicy_daily_cap"
            ),
            models.CheckConstraint(
                condition=Q(legal_start__lt=models.F("legal_end")), name="campaigns_dialerpolicy_window"
            ),
        ]

    def __str__(self) -> str:
        return f"Dialer policy of {self.contact_center}"


class RegionalCallingRule(models.Model):
    """A region's own limits (e.g. Florida: 08:00-20:00, 3 attempts per 24 h), matched by number prefix.

    Shipped as data (a migration fills the known ones) that staff edit in admin. The strictest
    matching rule wins; none can be wider than the center's policy.
    """

    region = models.CharField(max_length=32, help_text="e.g. US-FL")
    # E.164 prefixes ("+1305", "+1786", …): area codes, since a number carries no state.
    prefixes = models.JSONField(default=list)
    start = models.TimeField()
    end = models.TimeField()
    max_attempts_per_24h = models.PositiveSmallIntegerField(null=True, blank=True)
    source = models.CharField(max_length=255, blank=True)
    effective_from = models.DateField(null=True, blank=True)

    class Meta:
        ordering = ["region"]
        constraints = [
            models.UniqueConstraint(fields=["region"], name="campaigns_regionalcallingrule_region_unique"),
            models.CheckConstraint(
                condition=Q(start__lt=models.F("end")), name="campaigns_regionalrule_window"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.region} {self.start:%H:%M}-{self.end:%H:%M}"


class CampaignQuerySet(models.QuerySet["Campaign"]):
    def for_center(self, center: ContactCenter) -> CampaignQuerySet:
        return self.filter(contact_center=center)

    def dialling(self) -> CampaignQuerySet:
        """Campaigns a worker looks at each tick: auto-paused ones resume by themselves."""
        return self.filter(status__in=[CampaignStatus.ACTIVE, CampaignStatus.AUTO_PAUSED])

    def with_progress(self, *, since: datetime) -> CampaignQuerySet:
        """Each campaign's lead totals and its attempts, connects and handoffs since `since`.

        Correlated subqueries, so the Campaigns page is one query however many campaigns it shows
        (a join of leads and attempts would multiply the rows before counting them).
        """

        def count(queryset: models.QuerySet[Any], **conditions: Any) -> models.Subquery:
            rows = queryset.filter(campaign=models.OuterRef("pk"), **conditions)
            counted = rows.order_by().values("campaign").annotate(n=models.Count("*")).values("n")
            return Coalesce(models.Subquery(counted), 0)

        attempts_since = CallAttempt.objects.filter(claimed_at__gte=since)
        return self.annotate(
            leads_total=count(Lead.objects.all()),
            leads_finished=count(Lead.objects.exclude(status__in=OPEN_LEAD_STATUSES)),
            attempts_today=count(attempts_since),
            connects_today=count(attempts_since, answered_at__isnull=False),
            handoffs_today=count(attempts_since, handed_off=True),
        )


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


class DoNotCall(models.Model):
    """A number never to dial: center-wide (no campaign) or for one campaign."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(
        Campaign, null=True, blank=True, on_delete=models.CASCADE, related_name="do_not_call"
    )
    phone = models.CharField(max_length=16)
    reason = models.CharField(max_length=255, blank=True)
    added_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created = models.DateTimeField(default=dj_timezone.now)

    class Meta:
        verbose_name = "do-not-call entry"
        verbose_name_plural = "do-not-call list"
        ordering = ["phone"]
        constraints = [
            models.CheckConstraint(
                condition=Q(phone__regex=E164_REGEX), name="campaigns_donotcall_phone_e164"
            ),
            models.UniqueConstraint(
                fields=["contact_center", "phone"],
                condition=Q(campaign__isnull=True),
                name="campaigns_donotcall_center_phone_unique",
            ),
            models.UniqueConstraint(
                fields=["campaign", "phone"],
                condition=Q(campaign__isnull=False),
                name="campaigns_donotcall_campaign_phone_unique",
            ),
        ]
        indexes = [models.Index(fields=["contact_center", "phone"], name="campaigns_donotcall_lookup")]

    def __str__(self) -> str:
        return self.phone


class CallAttempt(models.Model):
    """One dial of one lead. (lead, number) is unique: the same attempt can never be dialled twice."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # Without indexes of their own: the unique (center, call id) and (lead, number) lead with them,
    # and every index is written by each dial (bench/dialer.py).
    contact_center = models.ForeignKey(
        ContactCenter, on_delete=models.CASCADE, related_name="+", db_index=False
    )
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="attempts")
    lead = models.ForeignKey(Lead, on_delete=models.CASCADE, related_name="call_attempts", db_index=False)
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


# ---------------------------------------------------------------------------------------------
# CSV lead imports from the portal: stored in chunks, processed in the background by the dialer
# workers (campaigns.lead_imports), so a file of a million rows never sits in one process's memory.


class LeadImportStatus(models.TextChoices):
    PENDING = "pending", "Waiting"
    RUNNING = "running", "Importing"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"


class LeadImportQuerySet(models.QuerySet["LeadImport"]):
    def for_center(self, center: ContactCenter) -> LeadImportQuerySet:
        return self.filter(contact_center=center)


class LeadImport(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    contact_center = models.ForeignKey(ContactCenter, on_delete=models.CASCADE, related_name="+")
    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="lead_imports")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    filename = models.CharField(max_length=255, blank=True)
    # The file's header row as uploaded; every chunk holds data rows only.
    columns = models.JSONField(default=list)
    status = models.CharField(
        max_length=16, choices=LeadImportStatus.choices, default=LeadImportStatus.PENDING
    )
    rows = models.PositiveIntegerField(default=0, help_text="Data rows in the file.")
    chunks = models.PositiveIntegerField(default=0)
    chunks_done = models.PositiveIntegerField(default=0)
    processed = models.PositiveIntegerField(default=0)
    created_leads = models.PositiveIntegerField(default=0)
    rejected = models.PositiveIntegerField(default=0)
    duplicates = models.PositiveIntegerField(default=0)
    error = models.CharField(max_length=255, blank=True)
    created = models.DateTimeField(default=dj_timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = LeadImportQuerySet.as_manager()

    class Meta:
        ordering = ["-created"]
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=LeadImportStatus.values), name="campaigns_leadimport_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(chunks_done__lte=models.F("chunks")), name="campaigns_leadimport_chunks_done"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.filename or 'import'} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in (LeadImportStatus.DONE, LeadImportStatus.FAILED)

    @property
    def percent(self) -> int:
        return 100 if self.is_finished or not self.rows else min(100, self.processed * 100 // self.rows)


class LeadImportChunk(models.Model):
    """Up to CHUNK_ROWS data rows of an uploaded file as CSV text; deleted once imported."""

    lead_import = models.ForeignKey(LeadImport, on_delete=models.CASCADE, related_name="+")
    index = models.PositiveIntegerField()
    # The file's row number of the chunk's first data row (the header is row 1).
    first_row = models.PositiveIntegerField()
    text = models.TextField()

    class Meta:
        ordering = ["lead_import", "index"]
        constraints = [
            models.UniqueConstraint(fields=["lead_import", "index"], name="campaigns_leadimportchunk_unique")
        ]

    def __str__(self) -> str:
        return f"chunk {self.index} of {self.lead_import_id}"


class LeadImportReject(models.Model):
    """A row of an import that did not become a lead, with why; downloadable as CSV."""

    lead_import = models.ForeignKey(LeadImport, on_delete=models.CASCADE, related_name="rejects")
    row = models.PositiveIntegerField(help_text="Row number in the file; the header is row 1.")
    number = models.CharField(max_length=64, blank=True)
    reason = models.CharField(max_length=32)

    class Meta:
        ordering = ["lead_import", "row"]
        indexes = [models.Index(fields=["lead_import", "row"], name="campaigns_leadimportreject_row")]

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"
