"""Do-not-call lists: the center's and each campaign's."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone as dj_timezone

from campaigns.models.campaign import Campaign
from campaigns.models.lead import E164_REGEX
from voiso_byob.models import ContactCenter


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
