"""A center's legal frame for dialling, and the regional rules that narrow it (data, edited in admin)."""

from __future__ import annotations

from datetime import time

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from voiso_byob.models import ContactCenter


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
