"""Leads written by an import read back as given, whichever way the database takes them (COPY on
PostgreSQL, bulk_create elsewhere): run this file with DATABASE_URL on PostgreSQL for the COPY."""

from __future__ import annotations

import uuid

import pytest
from django.utils import timezone

from campaigns.models import Campaign, Lead, LeadStatus
from campaigns.services import LeadRow, import_leads

pytestmark = pytest.mark.django_db

AWKWARD = 'Tab\there, back\\slash, new\nline, return\r, "quotes", ünïcødé, \\N'


def test_leads_read_back_as_given_in_the_files_order(campaign: Campaign) -> None:
    before = timezone.now()
    rows = [
        LeadRow("+12125550100", name=AWKWARD, source="a\\tb", priority=7, is_active=False,
                context={"X-Note": 'say "hi"\\ \t', "X-Empty-Not": "x"}),
        LeadRow("+442079460958", name="Ann"),
        LeadRow("+18885550100"),  # toll free: every US zone
        *(LeadRow(f"+1212555{n:04d}", priority=500) for n in range(200, 230)),
    ]  # fmt: skip
    result = import_leads(campaign=campaign, rows=rows, by="tests")

    assert [item["index"] for item in result.created] == list(range(len(rows)))
    ids = [item["id"] for item in result.created]
    assert all(uuid.UUID(value).version == 4 for value in ids) and len(set(ids)) == len(ids)
    leads = {str(lead.pk): lead for lead in Lead.objects.all()}
    first = leads[ids[0]]
    assert (first.phone, first.name, first.source, first.priority, first.is_active) == (
        "+12125550100", AWKWARD, "a\\tb", 7, False,
    )  # fmt: skip
    assert first.context == {"X-Note": 'say "hi"\\ \t', "X-Empty-Not": "x"}
    assert first.timezones == ["America/New_York"]
    assert (first.status, first.attempts, first.last_outcome) == (LeadStatus.NEW, 0, "")
    assert first.contact_center_id == campaign.contact_center_id
    assert leads[ids[1]].timezones == ["Europe/London"] and leads[ids[1]].context == {}
    assert len(leads[ids[2]].timezones) > 4
    # Due at once, and listed and dialled in the file's order within a priority.
    now = timezone.now()
    assert all(
        before - timezone.timedelta(seconds=1) <= lead.next_attempt_at <= now for lead in leads.values()
    )
    same_priority = [
        str(pk) for pk in Lead.objects.filter(priority=500).order_by("created").values_list("pk", flat=True)
    ]
    assert same_priority == ids[1:]
    due = Lead.objects.due(now).filter(priority=500).values_list("pk", flat=True)
    assert [str(pk) for pk in due] == ids[1:]
