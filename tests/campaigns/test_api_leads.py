"""A campaign's leads through the REST API: the import (Voiso's shape) and the keyset pages."""

from __future__ import annotations

from typing import Any

import pytest

from campaigns.models import Campaign, DoNotCall, Lead, LeadStatus
from campaigns.services import start_campaign, stop_campaign
from tests.campaigns.conftest import add_leads
from tests.campaigns.test_api import detail, last_event, nothing_changes
from tests.conftest import Caller, error_code
from voiso_byob.models import ContactCenter


def leads_url(campaign: Campaign) -> str:
    return detail(campaign, "leads/")


# --- import -------------------------------------------------------------------------------------------


def test_import_reports_created_rejected_and_duplicates(
    caller: Caller, acme: ContactCenter, campaign: Campaign
) -> None:
    add_leads(campaign, "+442079460101")
    DoNotCall.objects.create(contact_center=acme, phone="+442079460102")
    body = [
        {
            "phone_number": "+44 20 7946 0103",
            "name": "Ada",
            "source": "web",
            "priority": 5,
            "active": False,
            "context": {"X-Customer-Id": "42", "X-Plan": "gold"},
        },
        {"phone_number": "+442079460101"},  # already in the campaign
        {"phone_number": "+442079460102"},  # on the center's do-not-call list
        {"phone_number": "not a number"},
        {"phone_number": "+442079460103"},  # the first item again
        {"phone_number": "+447911123456"},
    ]

    response = caller.post(leads_url(campaign), body)

    assert response.status_code == 201, response.content
    result = response.json()
    created = {item["index"]: item["id"] for item in result["created"]}
    assert sorted(created) == [0, 5]
    assert result["rejected"] == [
        {"index": 2, "phone_number": "+442079460102", "reason": "dnc"},
        {"index": 3, "phone_number": "not a number", "reason": "invalid_number"},
    ]
    assert result["duplicates"] == [
        {"index": 1, "phone_number": "+442079460101"},
        {"index": 4, "phone_number": "+442079460103"},
    ]
    lead = Lead.objects.get(pk=created[0])
    assert (lead.phone, lead.name, lead.source, lead.priority, lead.is_active) == (
        "+442079460103",
        "Ada",
        "web",
        5,
        False,
    )
    assert lead.context == {"X-Customer-Id": "42", "X-Plan": "gold"}
    assert lead.timezones == ["Europe/London"] and lead.campaign == campaign
    event = last_event("campaign.leads_imported")
    assert event.changes == {"created": 2, "rejected": 2, "duplicates": 2}
    caller.assert_acted(event)


def test_a_retried_import_adds_nothing_twice(caller: Caller, campaign: Campaign) -> None:
    body = [{"phone_number": "+442079460101"}, {"phone_number": "+442079460102"}]
    first = caller.post(leads_url(campaign), body).json()

    second = caller.post(leads_url(campaign), body)

    assert second.status_code == 201
    assert len(first["created"]) == 2
    assert second.json() == {
        "created": [],
        "rejected": [],
        "duplicates": [
            {"index": 0, "phone_number": "+442079460101"},
            {"index": 1, "phone_number": "+442079460102"},
        ],
    }
    assert Lead.objects.count() == 2


def test_ten_thousand_leads_in_one_request(caller: Caller, campaign: Campaign) -> None:
    body = [{"phone_number": f"+4479111{n:05d}"} for n in range(10_000)]

    response = caller.post(leads_url(campaign), body)

    assert response.status_code == 201
    result = response.json()
    assert len(result["created"]) + len(result["rejected"]) == 10_000
    assert Lead.objects.filter(campaign=campaign).count() == len(result["created"]) > 9_000


@pytest.mark.parametrize(
    ("body", "code", "errors"),
    [
        ({"phone_number": "+442079460101"}, "invalid_body", None),
        ([], "invalid_body", None),
        ('"leads"', "invalid_body", None),
        ([{"phone_number": "+442079460101"}] * 10_001, "invalid_body", None),
        (
            [{"phone_number": "+442079460101"}, "x"],
            "invalid_leads",
            [{"index": 1, "fields": {"non_field_errors": ["Each lead is an object."]}}],
        ),
        (
            [{"name": "Ada"}],
            "invalid_leads",
            [{"index": 0, "fields": {"phone_number": ["This field is required."]}}],
        ),
        (
            [{"phone_number": 442079460101}],
            "invalid_leads",
            [{"index": 0, "fields": {"phone_number": ["Not a valid string."]}}],
        ),
        (
            [{"phone_number": "+442079460101", "priority": 0}],
            "invalid_leads",
            [{"index": 0, "fields": {"priority": ["A whole number from 1 to 1000."]}}],
        ),
        (
            [{"phone_number": "+442079460101", "priority": 1001}],
            "invalid_leads",
            [{"index": 0, "fields": {"priority": ["A whole number from 1 to 1000."]}}],
        ),
        (
            [{"phone_number": "+442079460101", "priority": True}],
            "invalid_leads",
            [{"index": 0, "fields": {"priority": ["A whole number from 1 to 1000."]}}],
        ),
        (
            [{"phone_number": "+442079460101", "priority": "5"}],
            "invalid_leads",
            [{"index": 0, "fields": {"priority": ["A whole number from 1 to 1000."]}}],
        ),
        (
            [{"phone_number": "+442079460101", "active": "yes"}],
            "invalid_leads",
            [{"index": 0, "fields": {"active": ["Must be true or false."]}}],
        ),
        (
            [{"phone_number": "+442079460101", "name": ["Ada"]}],
            "invalid_leads",
            [{"index": 0, "fields": {"name": ["Not a valid string."]}}],
        ),
        (
            [{"phone_number": "+442079460101", "name": "Ada\x00"}],
            "invalid_leads",
            [{"index": 0, "fields": {"name": ["Null characters are not allowed."]}}],
        ),
        (
            [{"phone_number": "+442079460101", "context": ["X-A"]}],
            "invalid_leads",
            [{"index": 0, "fields": {"context": ["An object of X- header names to text values."]}}],
        ),
    ],
)
def test_shape_errors_refuse_the_whole_import(
    caller: Caller, campaign: Campaign, body: Any, code: str, errors: list[dict[str, Any]] | None
) -> None:
    with nothing_changes():
        response = caller.post(leads_url(campaign), body)

    assert response.status_code == 400, response.content
    assert error_code(response) == code
    if errors is not None:
        assert response.json()["error"]["errors"] == errors


@pytest.mark.parametrize(
    "context",
    [
        {"Customer-Id": "42"},  # not an X- header
        {"X-Bad Name": "42"},  # not a header token
        {"X-Voiso-Lead-Id": "forged"},  # ours
        {"X-Plan": "gold\r\nX-Injected: 1"},  # header injection
        {"X-Plan": "gold\n"},
        {"X-Plan": 7},
        {"X-Plan": "x" * 1025},
        {"X-Plan": "a", "x-plan": "b"},
        {f"X-H{n}": "v" for n in range(21)},
    ],
)
def test_context_must_be_safe_sip_headers(
    caller: Caller, campaign: Campaign, context: dict[str, Any]
) -> None:
    body = [{"phone_number": "+442079460101"}, {"phone_number": "+442079460102", "context": context}]

    with nothing_changes():
        response = caller.post(leads_url(campaign), body)

    assert response.status_code == 400
    assert error_code(response) == "invalid_leads"
    assert [(e["index"], set(e["fields"])) for e in response.json()["error"]["errors"]] == [(1, {"context"})]


def test_every_bad_item_is_reported_by_index(caller: Caller, campaign: Campaign) -> None:
    body = [{"phone_number": "+442079460101"}, {"priority": 0}, {"phone_number": "+442079460103"}, 5]

    with nothing_changes():
        response = caller.post(leads_url(campaign), body)

    error = response.json()["error"]
    assert [e["index"] for e in error["errors"]] == [1, 3]
    assert error["errors"][0]["fields"] == {
        "phone_number": ["This field is required."],
        "priority": ["A whole number from 1 to 1000."],
    }
    assert error["message"].startswith("2 of 4 lead(s) are invalid; nothing was stored")


def test_a_finished_campaign_takes_no_leads(caller: Caller, campaign: Campaign) -> None:
    add_leads(campaign, "+442079460101")
    stop_campaign(campaign=start_campaign(campaign=campaign, by="tests"), by="tests")

    with nothing_changes():
        response = caller.post(leads_url(campaign), [{"phone_number": "+442079460102"}])

    assert response.status_code == 409
    assert error_code(response) == "campaign_closed"


# --- pages --------------------------------------------------------------------------------------------


def test_pages_follow_next_in_number_order(caller: Caller, campaign: Campaign) -> None:
    phones = [f"+4420794601{n:02d}" for n in range(7)]
    add_leads(campaign, *reversed(phones))

    seen: list[str] = []
    url: str | None = f"{leads_url(campaign)}?page_size=3"
    pages = 0
    while url:
        body = caller.get(url).json()
        seen += [row["phone_number"] for row in body["results"]]
        url = body["next"]
        pages += 1

    assert seen == phones and pages == 3


def test_filters(caller: Caller, campaign: Campaign) -> None:
    ids = add_leads(campaign, "+442079460101", "+442079460102", "+447911123456")
    Lead.objects.filter(pk=ids[0]).update(status=LeadStatus.DONE, name="Ada Lovelace")
    Lead.objects.filter(pk=ids[1]).update(is_active=False)

    def phones(query: str) -> list[str]:
        response = caller.get(f"{leads_url(campaign)}?{query}")
        assert response.status_code == 200, response.content
        return [row["phone_number"] for row in response.json()["results"]]

    assert phones("status=done") == ["+442079460101"]
    assert phones("active=false") == ["+442079460102"]
    assert phones("active=true&status=new") == ["+447911123456"]
    assert phones("q=lovelace") == ["+442079460101"]
    assert phones("q=7911 123") == ["+447911123456"]
    row = caller.get(f"{leads_url(campaign)}?status=done").json()["results"][0]
    assert row["id"] == ids[0] and row["status"] == "done" and row["last_outcome"] == ""


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=gone", "status"),
        ("active=maybe", "active"),
        ("after=not-a-cursor", "after"),
        ("page_size=0", "page_size"),
        ("page_size=201", "page_size"),
    ],
)
def test_bad_filters_are_400(caller: Caller, campaign: Campaign, query: str, field: str) -> None:
    response = caller.get(f"{leads_url(campaign)}?{query}")

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {field}


def test_pages_cost_the_same_at_any_size(
    caller: Caller, campaign: Campaign, django_assert_max_num_queries: Any
) -> None:
    add_leads(campaign, *[f"+4420794601{n:02d}" for n in range(60)])
    caller.get(leads_url(campaign))

    # auth + membership/key, the campaign, one page: never per lead.
    with django_assert_max_num_queries(7):
        response = caller.get(f"{leads_url(campaign)}?page_size=200")

    assert len(response.json()["results"]) == 60
