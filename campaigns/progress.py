"""How far campaigns have got: leads by status, attempts today, connects and handoffs.

Read for a whole page of campaigns at once (the API's list, the portal's list), in two grouped
queries whatever the page's length: one over the leads, one over the attempts.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from django.db.models import Count, Q
from django.utils import timezone

from campaigns.models import AttemptOutcome, CallAttempt, Campaign, Lead, LeadStatus
from voiso_byob.models import ContactCenter


@dataclass(slots=True)
class Progress:
    leads: dict[str, int] = field(default_factory=lambda: dict.fromkeys(LeadStatus.values, 0))
    total: int = 0
    attempts_today: int = 0
    connects: int = 0
    handoffs: int = 0


def start_of_day(center: ContactCenter, now: datetime) -> datetime:
    """Midnight of `now`'s day in the center's time zone: where "today" begins."""
    local = now.astimezone(ZoneInfo(center.timezone))
    return datetime.combine(local.date(), time.min, tzinfo=local.tzinfo)


def campaign_progress(
    campaigns: Sequence[Campaign], *, center: ContactCenter, now: datetime | None = None
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
    # Attempts released unplaced (a worker died before dialling) were never calls.
    today = start_of_day(center, now or timezone.now())
    attempts = (
        CallAttempt.objects.filter(campaign_id__in=progress)
        .values_list("campaign_id")
        .annotate(
            today=Count("pk", filter=Q(claimed_at__gte=today) & ~Q(outcome=AttemptOutcome.RELEASED)),
            connects=Count("pk", filter=Q(answered_at__isnull=False)),
            handoffs=Count("pk", filter=Q(handed_off=True)),
        )
        .order_by()
    )
    for campaign_id, today_count, connects, handoffs in attempts:
        row = progress[campaign_id]
        row.attempts_today, row.connects, row.handoffs = today_count, connects, handoffs
    return progress
