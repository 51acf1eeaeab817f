"""A campaign's progress: one definition (campaigns.progress), the same figures in the API and the pages."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.urls import reverse

from campaigns.models import AttemptOutcome, CallAttempt, Campaign, Lead, LeadStatus
from campaigns.progress import campaign_progress, start_of_day
from tests.campaigns.conftest import add_leads
from tests.conftest import Persona
from voiso_byob.models import ContactCenter

pytestmark = pytest.mark.django_db

# 01:30 on 11 March in Tokyo, the center's zone: "today" there began at 15:00 UTC on 10 March.
NOW = datetime(2026, 3, 10, 16, 30, tzinfo=UTC)
TOKYO_MIDNIGHT = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


@pytest.fixture
def tokyo(acme: ContactCenter, time_machine) -> ContactCenter:
    time_machine.move_to(NOW, tick=False)
    acme.timezone = "Asia/Tokyo"
    acme.save(update_fields=["timezone"])
    return acme


def attempt(
    campaign: Campaign, lead_id: str, number: int, *, claimed: datetime, **fields: Any
) -> CallAttempt:
    lead = Lead.objects.get(pk=lead_id)
    return CallAttempt.objects.create(
        contact_center=campaign.contact_center,
        campaign=campaign,
        lead=lead,
        number=number,
        phone=lead.phone,
        call_id=f"dial-{lead_id}-{number}",
        claimed_at=claimed,
        originated_at=claimed,
        **fields,
    )


@pytest.fixture
def history(tokyo: ContactCenter, campaign: Campaign) -> Campaign:
    """Two days of calls: yesterday's (in Tokyo) and today's, one of each still on the line."""
    first, second, third, _ = add_leads(
        campaign, "+14155550101", "+14155550102", "+14155550103", "+14155550104"
    )
    Lead.objects.filter(pk=first).update(status=LeadStatus.DONE)
    Lead.objects.filter(pk=second).update(status=LeadStatus.EXHAUSTED)
    Lead.objects.filter(pk=third).update(status=LeadStatus.IN_PROGRESS)
    before_midnight = TOKYO_MIDNIGHT - timedelta(minutes=1)
    after_midnight = TOKYO_MIDNIGHT + timedelta(minutes=1)
    # Yesterday: answered and handed off; busy.
    attempt(campaign, first, 1, claimed=before_midnight, answered_at=before_midnight, handed_off=True,
            ended_at=after_midnight, outcome=AttemptOutcome.COMPLETED)  # fmt: skip
    attempt(
        campaign, second, 1, claimed=before_midnight, ended_at=before_midnight, outcome=AttemptOutcome.BUSY
    )
    # Today: answered without handoff; no answer; one still ringing; one released before dialling.
    attempt(campaign, second, 2, claimed=after_midnight, answered_at=after_midnight,
            ended_at=after_midnight, outcome=AttemptOutcome.COMPLETED)  # fmt: skip
    attempt(campaign, second, 3, claimed=after_midnight, ended_at=NOW, outcome=AttemptOutcome.NO_ANSWER)
    attempt(campaign, third, 1, claimed=NOW)
    attempt(campaign, third, 2, claimed=after_midnight, ended_at=NOW, outcome=AttemptOutcome.RELEASED)
    return campaign


EXPECTED = {
    "leads": {**dict.fromkeys(LeadStatus.values, 0), "new": 1, "done": 1, "exhausted": 1, "in_progress": 1},
    "total": 4,
    "finished": 2,
    "attempts_today": 3,
    "connects_today": 1,
    "handoffs_today": 0,
    "attempts": 5,
    "connects": 2,
    "handoffs": 1,
    "calls_in_progress": 1,
}


def test_today_begins_at_midnight_in_the_centers_zone(tokyo: ContactCenter) -> None:
    assert start_of_day(tokyo, NOW) == TOKYO_MIDNIGHT


def test_one_definition_today_and_all_time(history: Campaign, tokyo: ContactCenter) -> None:
    progress = campaign_progress([history], center=tokyo)[history.pk]

    assert {name: getattr(progress, name) for name in EXPECTED} == EXPECTED
    # A funnel: today's connects and handoffs are among today's attempts, never more.
    assert progress.handoffs_today <= progress.connects_today <= progress.attempts_today
    assert ("Attempts exhausted", 1) in progress.by_status


def test_a_campaign_without_leads_or_calls_is_all_zero(campaign: Campaign, tokyo: ContactCenter) -> None:
    progress = campaign_progress([campaign], center=tokyo)[campaign.pk]

    assert progress.total == progress.finished == progress.attempts == progress.calls_in_progress == 0


def test_the_api_and_both_pages_show_the_same_figures(
    history: Campaign, admin: Persona, api_keys: dict[str, str]
) -> None:
    headers = {"HTTP_AUTHORIZATION": f"Bearer {api_keys['read']}"}
    api = admin.client.get(f"/api/v1/campaigns/{history.pk}/", **headers).json()["progress"]
    listed = admin.client.get(reverse("campaigns:campaign_list"))
    detail = admin.client.get(reverse("campaigns:campaign_detail", args=[history.pk]))

    assert api == EXPECTED
    row = next(campaign for campaign in listed.context["page"] if campaign.pk == history.pk)
    assert {name: getattr(row.progress, name) for name in EXPECTED} == EXPECTED
    assert {name: getattr(detail.context["progress"], name) for name in EXPECTED} == EXPECTED
    page = detail.content.decode()
    for figure, label in (
        (3, "attempts today"),
        (1, "connects today"),
        (0, "handoffs today"),
        (1, "calls in progress"),
        (5, "attempts, all time"),
        (2, "connects, all time"),
        (1, "handoffs, all time"),
    ):
        assert f"<strong>{figure}</strong>{label}</div>" in page
    assert "Connects, all time</th>" in listed.content.decode()
