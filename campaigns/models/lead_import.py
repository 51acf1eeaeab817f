"""CSV lead imports from the portal: stored in chunks, processed in the background by the dialer
workers (campaigns.lead_imports), so a file of a million rows never sits in one process's memory."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from campaigns.models.campaign import Campaign
from voiso_byob.models import ContactCenter


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
