"""Do-not-call lists through the REST API: list, add (idempotent), remove, bulk add."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns.models import Campaign, DoNotCall, Lead, LeadStatus
from campaigns.services import create_campaign
from tests.campaigns.conftest import add_leads
from tests.campaigns.test_api import last_event, nothing_changes
from tests.conftest import Caller, error_code
from tests.reporting.factories import make_bot
from voiso_byob.models import ContactCenter

DNC = "/api/v1/dnc/"
BULK = "/api/v1/dnc/bulk/"


def test_add_to_the_center_list_retires_waiting_leads(
    caller: Caller, acme: ContactCenter, campaign: Campaign
) -> None:
    lead_id = add_leads(campaign, "+442079460101")[0]

    response = caller.post(DNC, {"phone": "+44 20 7946 0101", "reason": "asked"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert (body["phone"], body["reason"], body["campaign"]) == ("+442079460101", "asked", None)
    entry = DoNotCall.objects.get(pk=body["id"])
    assert entry.contact_center == acme and entry.campaign is None
    assert Lead.objects.get(pk=lead_id).status == LeadStatus.DNC
    event = last_event("dnc.added")
    assert event.target_id == str(entry.pk)
    caller.assert_acted(event)


def test_add_is_idempotent(caller: Caller, campaign: Campaign) -> None:
    first = caller.post(DNC, {"phone": "+442079460101", "campaign": str(campaign.pk)})
    events = last_event("dnc.added").pk

    second = caller.post(DNC, {"phone": "+442079460101", "campaign": str(campaign.pk)})

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    assert DoNotCall.objects.count() == 1
    assert last_event("dnc.added").pk == events


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"phone": "nope"}, "phone"),
        ({}, "phone"),
        ({"phone": "+442079460101", "campaign": "8d0b4a0e-0000-4000-8000-000000000000"}, "campaign"),
        ({"phone": "+442079460101", "reason": "x" * 256}, "reason"),
    ],
)
def test_add_refuses_bad_input(caller: Caller, body: dict[str, Any], field: str) -> None:
    with nothing_changes():
        response = caller.post(DNC, body)

    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]


def test_add_refuses_another_centers_campaign(caller: Caller, globex: ContactCenter) -> None:
    theirs = create_campaign(center=globex, by="tests", name="Theirs", virtual_agents=[make_bot(globex)])

    with nothing_changes():
        response = caller.post(DNC, {"phone": "+442079460101", "campaign": str(theirs.pk)})

    assert response.status_code == 400
    assert "campaign" in response.json()["error"]["fields"]


def test_remove(caller: Caller, acme: ContactCenter) -> None:
    entry = DoNotCall.objects.create(contact_center=acme, phone="+442079460101")

    response = caller.delete(f"{DNC}{entry.pk}/")

    assert response.status_code == 204
    assert not DoNotCall.objects.exists()
    event = last_event("dnc.removed")
    assert event.target_id == str(entry.pk)
    caller.assert_acted(event)


def test_list_filters_by_campaign_and_text(caller: Caller, acme: ContactCenter, campaign: Campaign) -> None:
    DoNotCall.objects.create(contact_center=acme, phone="+442079460101", reason="complained")
    DoNotCall.objects.create(contact_center=acme, phone="+442079460102", campaign=campaign)

    def phones(query: str = "") -> list[str]:
        response = caller.get(f"{DNC}?{query}")
        assert response.status_code == 200, response.content
        return [row["phone"] for row in response.json()["results"]]

    assert phones() == ["+442079460101", "+442079460102"]
    assert phones(f"campaign={campaign.pk}") == ["+442079460102"]
    assert phones("q=complain") == ["+442079460101"]
    assert phones("q=20 7946 0102") == ["+442079460102"]


@pytest.mark.parametrize("query", ["campaign=nope", "campaign=8d0b4a0e-0000-4000-8000-000000000000"])
def test_list_refuses_unknown_campaign(caller: Caller, query: str) -> None:
    response = caller.get(f"{DNC}?{query}")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"campaign"}


# --- bulk ---------------------------------------------------------------------------------------------


def test_bulk_add_reports_by_index(caller: Caller, acme: ContactCenter, campaign: Campaign) -> None:
    existing = DoNotCall.objects.create(contact_center=acme, phone="+442079460101")
    add_leads(campaign, "+442079460102", "+442079460103")
    body = [
        {"phone": "+442079460101"},  # already listed
        {"phone": "+44 20 7946 0102", "reason": "asked"},
        {"phone": "garbage"},
        {"phone": "+442079460102"},  # repeated in this request
        {"phone": "+442079460103", "campaign": str(campaign.pk)},
    ]

    response = caller.post(BULK, body)

    assert response.status_code == 201, response.content
    result = response.json()
    created = {item["index"]: item["id"] for item in result["created"]}
    assert sorted(created) == [1, 4]
    assert result["existing"] == [
        {"index": 0, "id": str(existing.pk)},
        {"index": 3, "id": created[1]},
    ]
    assert result["rejected"] == [{"index": 2, "phone": "garbage", "reason": "invalid_number"}]
    assert DoNotCall.objects.get(pk=created[1]).reason == "asked"
    assert DoNotCall.objects.get(pk=created[4]).campaign == campaign
    assert set(Lead.objects.values_list("status", flat=True)) == {LeadStatus.DNC}
    event = last_event("dnc.bulk_added")
    assert event.changes == {"created": 2, "existing": 2, "rejected": 1}
    caller.assert_acted(event)


def test_bulk_add_retried_creates_nothing(caller: Caller) -> None:
    body = [{"phone": f"+4420794601{n:02d}"} for n in range(50)]
    first = caller.post(BULK, body).json()
    audits = last_event("dnc.bulk_added").pk

    second = caller.post(BULK, body).json()

    assert len(first["created"]) == 50 and second["created"] == []
    assert [item["id"] for item in second["existing"]] == [item["id"] for item in first["created"]]
    assert DoNotCall.objects.count() == 50
    assert last_event("dnc.bulk_added").pk == audits


def test_bulk_add_of_ten_thousand(caller: Caller, django_assert_max_num_queries: Any) -> None:
    body = [{"phone": f"+4479111{n:05d}"} for n in range(10_000)]

    # Chunks of 1000 (SQLite's insert batches are ~140 rows): never a query per number.
    with django_assert_max_num_queries(130):
        response = caller.post(BULK, body)

    assert response.status_code == 201
    assert DoNotCall.objects.count() == len(response.json()["created"]) == 10_000


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"phone": "+442079460101"}, "invalid_body"),
        ([], "invalid_body"),
        ([{"phone": "+442079460101"}] * 10_001, "invalid_body"),
        ([{"phone": "+442079460101"}, {"phone": 7}], "invalid_numbers"),
        ([{"phone": "+442079460101"}, {"reason": "x"}], "invalid_numbers"),
        ([{"phone": "+442079460101", "campaign": "8d0b4a0e-0000-4000-8000-000000000000"}], "invalid_numbers"),
        ([{"phone": "+442079460101", "campaign": 5}], "invalid_numbers"),
        ([{"phone": "+442079460101", "reason": "x" * 256}], "invalid_numbers"),
        (["+442079460101"], "invalid_numbers"),
        ([{"phone": "+442079460101", "reason": "a\x00b"}], "invalid_numbers"),
    ],
)
def test_bulk_shape_errors_store_nothing(caller: Caller, body: Any, code: str) -> None:
    with nothing_changes():
        response = caller.post(BULK, body)

    assert response.status_code == 400
    assert error_code(response) == code
