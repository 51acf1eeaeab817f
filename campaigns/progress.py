"""How far campaigns have got: one definition for the portal's pages and the API's `progress`.

- **Leads**: every lead of the campaign by status; *finished* are those no longer open (done,
  failed, do-not-call, exhausted), the progress bar's "done / total".
- **Attempts**: calls the dialer placed (a claim released before dialling is no call).
- **Connects**: attempts a bot answered (a person, not a machine, picked up and talked to it).
- **Handoffs**: attempts the bot handed to a person.
- **Today** counts the attempts placed since midnight in the center's time zone, and of those
  the ones that connected and were handed off, so today's connects never exceed today's
  attempts; the unsuffixed counts are the same over the campaign's whole life.
- **Calls in progress**: attempts not ended yet, whenever they were placed.

Read for a whole page of campaigns at once, in two grouped queries whatever the page's length:
one over the leads, one over the attempts.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Q
from django.utils import timezone

from campaigns.models import (
    OPEN_LEAD_STATUSES,
    AttemptOutcome,
    CallAttempt,
    Campaign,
    Lead,
    LeadStatus,
)
from voiso_byob.models import ContactCenter


@dataclass(slots=True)
class Progress:
    leads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LeadStatus.values, 0))
    total: int = 0
    attempts_today: int = 0
    connects_today: int = 0
    handoffs_today: int = 0
    attempts: int = 0
    connects: int = 0
    handoffs: int = 0
    calls_in_progress: int = 0

    @property
    def finished(self) -> int:
        return self.total - sum(self.leads[status] for status in OPEN_LEAD_STATUSES)

    @property
    def by_status(self) -> list[tuple[str, int]]:
        """(label, count) for every lead status, in the statuses' order."""
        return [(label, self.leads[value]) for value, label in LeadStatus.choices]


def start_of_day(center: ContactCenter, now: datetime) -> datetime:
    """Midnight of `now`'s day in the center's time zone: where "today" begins."""
    local = now.astimezone(ZoneInfo(center.timezone))
    return datetime.combine(local.date(), time.min, tzinfo=local.tzinfo)


def campaign_progress(
    campaigns: Iterable[Campaign], *, center: ContactCenter, now: datetime | None = None
) -> dict[Any, Progress]:
    """Campaign id → its progress, for campaigns of `center`."""
    progress = {campaign.pk: Progress() for campaign in campaigns}
    if not progress:
        return progress
    # order_by(): the models' default orderings would join the GROUP BY.
    leads = (
        Lead.objects.filter(campaign_id__in=progress)
        .values_list("campaign_id", "status")
        .annotate(count=Count("pk"))
        .order_by()
    )
    for campaign_id, status, count in leads:
        progress[campaign_id].leads[status] = count
        progress[campaign_id].total += count
    placed = ~Q(outcome=AttemptOutcome.RELEASED)
    today = placed & Q(claimed_at__gte=start_of_day(center, now or timezone.now()))
    connected = Q(answered_at__isnull=False)
    handed_off = Q(handed_off=True)
    counted = {
        "attempts_today": today,
        "connects_today": today & connected,
        "handoffs_today": today & handed_off,
        "attempts": placed,
        "connects": placed & connected,
        "handoffs": placed & handed_off,
        "calls_in_progress": placed & Q(ended_at__isnull=True),
    }
    attempts = (
        CallAttempt.objects.filter(campaign_id__in=progress)
        .values("campaign_id")
        .annotate(**{name: Count("pk", filter=condition) for name, condition in counted.items()})
        .order_by()
    )
    for row in attempts:
        for name in counted:
            setattr(progress[row["campaign_id"]], name, row[name])
    return progress
