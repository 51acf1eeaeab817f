"""Campaigns through the REST API: CRUD, start / pause / stop, progress, roles and tenants."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from campaigns.models import CallAttempt, Campaign, CampaignStatus, DoNotCall, Lead, LeadStatus
from campaigns.services import create_campaign, start_campaign, stop_campaign
from routing.models import PhoneNumber, Queue
from routing.services import create_phone_number
from tests.campaigns.conftest import add_leads
from tests.conftest import Caller, Persona, bearer, error_code
from tests.factories import make_queue
from tests.reporting.factories import make_bot
from virtual_agents.models import VirtualAgent
from voiso_byob.models import AuditEvent, ContactCenter

CAMPAIGNS = "/api/v1/campaigns/"


def detail(campaign: Campaign, suffix: str = "") -> str:
    return f"{CAMPAIGNS}{campaign.pk}/{suffix}"


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("created", "id")


def _counts() -> tuple[int, ...]:
    return (
        Campaign.objects.count(),
        Lead.objects.count(),
        DoNotCall.objects.count(),
        AuditEvent.objects.count(),
        *Campaign.objects.order_by("pk").values_list("status", flat=True),
        *Campaign.objects.order_by("pk").values_list("name", flat=True),
    )


@contextmanager
def nothing_changes() -> Iterator[None]:
    """A refused request writes nothing: no campaign, lead, entry, status change or audit row."""
    before = _counts()
    yield
    assert _counts() == before


@pytest.fixture
def sales(acme: ContactCenter) -> Queue:
    return make_queue(acme, name="Sales", extension="4323")


@pytest.fixture
def number(acme: ContactCenter) -> PhoneNumber:
    return create_phone_number(center=acme, by="tests", number="+442079460018")


@pytest.fixture
def globex_campaign(globex: ContactCenter) -> Campaign:
    return create_campaign(center=globex, by="tests", name="Theirs", virtual_agents=[make_bot(globex)])


# --- create ---------------------------------------------------------------------------------------


def test_create_with_defaults(caller: Caller, acme: ContactCenter, bot: VirtualAgent) -> None:
    response = caller.post(CAMPAIGNS, {"name": "Renewals", "virtual_agents": [str(bot.pk)]})

    assert response.status_code == 201, response.content
    body = response.json()
    campaign = Campaign.objects.get(pk=body["id"])
    assert campaign.contact_center == acme and campaign.status == CampaignStatus.DRAFT
    assert body["virtual_agents"] == [str(bot.pk)]
    assert body["handoff_queue"] is None and body["caller_ids"] == []
    assert body["calling_hours"] == [
        {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "20:00"}
    ]
    assert body["retry_minutes"] == {"busy": 30, "no_answer": 60, "machine": 240, "failed": 15}
    assert (body["max_attempts"], body["priority"], body["handoff_queue_threshold"]) == (3, 100, 5)
    assert (body["status"], body["status_reason"], body["timezone"]) == ("draft", "", "")
    assert body["progress"] == {
        "leads": dict.fromkeys(LeadStatus.values, 0),
        "total": 0,
        "finished": 0,
        "attempts_today": 0,
        "connects_today": 0,
        "handoffs_today": 0,
        "attempts": 0,
        "connects": 0,
        "handoffs": 0,
        "calls_in_progress": 0,
    }
    event = last_event("campaign.created")
    assert event.contact_center == acme and event.target_id == str(campaign.pk)
    caller.assert_acted(event)


def test_create_with_every_field(
    caller: Caller, bot: VirtualAgent, sales: Queue, number: PhoneNumber
) -> None:
    hours = [{"days": ["sat"], "start": "10:00", "end": "14:00"}]
    response = caller.post(
        CAMPAIGNS,
        {
            "name": "Win-back",
            "virtual_agents": [str(bot.pk)],
            "handoff_queue": str(sales.pk),
            "handoff_queue_threshold": 9,
            "caller_ids": [str(number.pk)],
            "timezone": "America/New_York",
            "calling_hours": hours,
            "max_attempts": 5,
            "retry_minutes": {"busy": 10},
            "priority": 7,
        },
    )

    assert response.status_code == 201, response.content
    campaign = Campaign.objects.get(pk=response.json()["id"])
    assert (campaign.handoff_queue, campaign.handoff_queue_threshold) == (sales, 9)
    assert list(campaign.caller_ids.all()) == [number]
    assert (campaign.timezone, campaign.calling_hours) == ("America/New_York", hours)
    assert (campaign.max_attempts, campaign.priority) == (5, 7)
    assert campaign.retry_minutes == {"busy": 10, "no_answer": 60, "machine": 240, "failed": 15}


@pytest.mark.parametrize(
    ("change", "field", "code"),
    [
        ({"virtual_agents": []}, "virtual_agents", "validation_error"),
        ({"name": ""}, "name", "validation_error"),
        ({"timezone": "Mars/Olympus"}, "timezone", "invalid_timezone"),
        (
            {"calling_hours": [{"days": ["mon"], "start": "20:00", "end": "09:00"}]},
            "calling_hours",
            "invalid_calling_hours",
        ),
        (
            {"calling_hours": [{"days": ["funday"], "start": "09:00", "end": "10:00"}]},
            "calling_hours",
            "validation_error",
        ),
        ({"calling_hours": []}, "calling_hours", "invalid_calling_hours"),
        ({"retry_minutes": {"busy": 0}}, "retry_minutes", "validation_error"),
        ({"retry_minutes": {"rejected": 5}}, "retry_minutes", "invalid_retry_minutes"),
        ({"max_attempts": 21}, "max_attempts", "validation_error"),
        ({"priority": 0}, "priority", "validation_error"),
        ({"handoff_queue_threshold": 1001}, "handoff_queue_threshold", "validation_error"),
    ],
)
def test_create_refuses_bad_fields(
    caller: Caller, bot: VirtualAgent, change: dict[str, Any], field: str, code: str
) -> None:
    with nothing_changes():
        response = caller.post(CAMPAIGNS, {"name": "Renewals", "virtual_agents": [str(bot.pk)], **change})

    assert response.status_code == 400, response.content
    assert error_code(response) == code
    assert field in response.json()["error"]["fields"]


def test_create_refuses_another_centers_objects(
    caller: Caller, bot: VirtualAgent, globex: ContactCenter
) -> None:
    theirs = {
        "virtual_agents": [str(make_bot(globex).pk)],
        "handoff_queue": str(make_queue(globex, name="Theirs", extension="4400").pk),
        "caller_ids": [str(create_phone_number(center=globex, by="tests", number="+442079460019").pk)],
    }
    for field, value in theirs.items():
        body = {"name": "Renewals", "virtual_agents": [str(bot.pk)], field: value}
        with nothing_changes():
            response = caller.post(CAMPAIGNS, body)
        assert response.status_code == 400, field
        assert field in response.json()["error"]["fields"]


def test_a_taken_name_is_refused(caller: Caller, campaign: Campaign, bot: VirtualAgent) -> None:
    with nothing_changes():
        response = caller.post(CAMPAIGNS, {"name": campaign.name, "virtual_agents": [str(bot.pk)]})

    assert response.status_code == 400
    assert error_code(response) == "name_taken"


# --- read -------------------------------------------------------------------------------------------


def test_list_and_detail_show_progress(caller: Caller, campaign: Campaign, bot: VirtualAgent) -> None:
    ids = add_leads(campaign, "+442079460101", "+442079460102", "+442079460103")
    Lead.objects.filter(pk=ids[0]).update(status=LeadStatus.DONE, attempts=1)
    lead = Lead.objects.get(pk=ids[0])
    now = timezone.now()
    CallAttempt.objects.create(
        contact_center=campaign.contact_center,
        campaign=campaign,
        lead=lead,
        number=1,
        phone=lead.phone,
        virtual_agent=bot,
        call_id="dial-1",
        claimed_at=now,
        answered_at=now,
        handed_off=True,
        ended_at=now,
        outcome="completed",
    )
    CallAttempt.objects.create(
        contact_center=campaign.contact_center,
        campaign=campaign,
        lead=lead,
        number=2,
        phone=lead.phone,
        virtual_agent=bot,
        call_id="dial-2",
        claimed_at=now - timedelta(days=2),
        ended_at=now - timedelta(days=2),
        outcome="busy",
    )

    listed = caller.get(CAMPAIGNS).json()
    one = caller.get(detail(campaign)).json()

    assert listed["count"] == 1 and listed["results"][0] == one
    assert one["progress"] == {
        "leads": {**dict.fromkeys(LeadStatus.values, 0), "new": 2, "done": 1},
        "total": 3,
        "finished": 1,
        "attempts_today": 1,
        "connects_today": 1,
        "handoffs_today": 1,
        "attempts": 2,
        "connects": 1,
        "handoffs": 1,
        "calls_in_progress": 0,
    }


def test_list_costs_the_same_for_any_number_of_campaigns(
    caller: Caller,
    acme: ContactCenter,
    bot: VirtualAgent,
    number: PhoneNumber,
    django_assert_max_num_queries: Any,
) -> None:
    for n in range(12):
        campaign = create_campaign(
            center=acme, by="tests", name=f"C{n}", virtual_agents=[bot], caller_ids=[number]
        )
        add_leads(campaign, f"+4420794601{n:02d}")
    caller.get(CAMPAIGNS)  # the session's and key's own lookups, once

    # auth + membership/key, count, page, 2 prefetches, leads by status, attempts: never per campaign.
    with django_assert_max_num_queries(9):
        response = caller.get(CAMPAIGNS)

    assert response.status_code == 200
    assert len(response.json()["results"]) == 12
    assert all(row["progress"]["total"] == 1 for row in response.json()["results"])


# --- update -------------------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(caller: Caller, campaign: Campaign, sales: Queue) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(handoff_queue=sales, priority=9)

    response = caller.patch(detail(campaign), {"max_attempts": 6})

    assert response.status_code == 200, response.content
    campaign.refresh_from_db()
    assert (campaign.max_attempts, campaign.priority, campaign.handoff_queue) == (6, 9, sales)
    event = last_event("campaign.updated")
    assert event.changes == {"max_attempts": {"from": 3, "to": 6}}
    caller.assert_acted(event)


def test_put_replaces_the_campaign(
    caller: Caller, campaign: Campaign, sales: Queue, bot: VirtualAgent
) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(handoff_queue=sales, priority=9, timezone="Europe/Paris")

    response = caller.put(detail(campaign), {"name": "Renewals 2", "virtual_agents": [str(bot.pk)]})

    assert response.status_code == 200, response.content
    campaign.refresh_from_db()
    assert campaign.name == "Renewals 2"
    assert (campaign.handoff_queue, campaign.priority, campaign.timezone) == (None, 100, "")


def test_put_without_the_required_fields_is_refused(caller: Caller, campaign: Campaign) -> None:
    with nothing_changes():
        response = caller.put(detail(campaign), {})

    assert response.status_code == 400
    assert set(response.json()["error"]["fields"]) == {"name", "virtual_agents"}


def test_a_stopped_campaign_cannot_change(caller: Caller, campaign: Campaign) -> None:
    add_leads(campaign, "+442079460101")
    stop_campaign(campaign=start_campaign(campaign=campaign, by="tests"), by="tests")

    with nothing_changes():
        response = caller.patch(detail(campaign), {"priority": 1})

    assert response.status_code == 409
    assert error_code(response) == "campaign_closed"


# --- start / pause / stop ----------------------------------------------------------------------


def test_start_pause_resume_stop(caller: Caller, campaign: Campaign) -> None:
    add_leads(campaign, "+442079460101")

    for verb, status in [("start", "active"), ("pause", "paused"), ("start", "active"), ("stop", "stopped")]:
        response = caller.post(detail(campaign, f"{verb}/"), None)
        assert response.status_code == 200, (verb, response.content)
        assert response.json()["status"] == status
        assert response.json()["progress"]["total"] == 1
        campaign.refresh_from_db()
        assert campaign.status == status
        caller.assert_acted(
            last_event(f"campaign.{ {'start': 'started', 'pause': 'paused', 'stop': 'stopped'}[verb] }")
        )


def test_illegal_transitions_are_409(caller: Caller, campaign: Campaign) -> None:
    with nothing_changes():
        pause = caller.post(detail(campaign, "pause/"), None)
        stop = caller.post(detail(campaign, "stop/"), None)

    assert (pause.status_code, stop.status_code) == (409, 409)
    assert error_code(pause) == error_code(stop) == "invalid_transition"


def test_start_needs_leads_and_an_enabled_bot(caller: Caller, campaign: Campaign, bot: VirtualAgent) -> None:
    with nothing_changes():
        no_leads = caller.post(detail(campaign, "start/"), None)
    add_leads(campaign, "+442079460101")
    VirtualAgent.objects.filter(pk=bot.pk).update(is_enabled=False)
    with nothing_changes():
        no_bot = caller.post(detail(campaign, "start/"), None)

    assert (no_leads.status_code, error_code(no_leads)) == (409, "no_leads")
    assert (no_bot.status_code, error_code(no_bot)) == (409, "no_virtual_agent")


# --- delete -------------------------------------------------------------------------------------------


def test_delete_a_draft_with_its_leads(caller: Caller, campaign: Campaign) -> None:
    add_leads(campaign, "+442079460101")

    response = caller.delete(detail(campaign))

    assert response.status_code == 204
    assert not Campaign.objects.filter(pk=campaign.pk).exists() and not Lead.objects.exists()
    event = last_event("campaign.deleted")
    assert event.target_id == str(campaign.pk)
    caller.assert_acted(event)


@pytest.mark.parametrize("verbs", [["start"], ["start", "pause"]])
def test_a_running_campaign_cannot_be_deleted(caller: Caller, campaign: Campaign, verbs: list[str]) -> None:
    add_leads(campaign, "+442079460101")
    for verb in verbs:
        assert caller.post(detail(campaign, f"{verb}/"), None).status_code == 200

    with nothing_changes():
        response = caller.delete(detail(campaign))

    assert response.status_code == 409
    assert error_code(response) == "campaign_running"


def test_a_stopped_campaign_can_be_deleted(caller: Caller, campaign: Campaign) -> None:
    add_leads(campaign, "+442079460101")
    stop_campaign(campaign=start_campaign(campaign=campaign, by="tests"), by="tests")

    assert caller.delete(detail(campaign)).status_code == 204
    assert not Campaign.objects.exists()


# --- roles and tenants (every endpoint) --------------------------------------------------------------


def requests_for(campaign: Campaign, bot: VirtualAgent, entry: DoNotCall) -> tuple[list, list]:
    """(reads, writes): (method, path, body) of every campaigns endpoint on acme's objects."""
    reads = [
        ("get", CAMPAIGNS, None),
        ("get", detail(campaign), None),
        ("get", detail(campaign, "leads/"), None),
        ("get", "/api/v1/dnc/", None),
        ("get", f"/api/v1/dnc/{entry.pk}/", None),
    ]
    writes = [
        ("post", CAMPAIGNS, {"name": "New", "virtual_agents": [str(bot.pk)]}),
        ("put", detail(campaign), {"name": "X", "virtual_agents": [str(bot.pk)]}),
        ("patch", detail(campaign), {"name": "X"}),
        ("post", detail(campaign, "start/"), None),
        ("post", detail(campaign, "pause/"), None),
        ("post", detail(campaign, "stop/"), None),
        ("post", detail(campaign, "leads/"), [{"phone_number": "+442079460155"}]),
        ("post", "/api/v1/dnc/", {"phone": "+442079460156"}),
        ("post", "/api/v1/dnc/bulk/", [{"phone": "+442079460157"}]),
        ("delete", f"/api/v1/dnc/{entry.pk}/", None),
        ("delete", detail(campaign), None),
    ]
    return reads, writes


def send(client: Client, method: str, path: str, body: Any, headers: dict[str, str] | None = None):
    headers = headers or {}
    if body is None:
        return getattr(client, method)(path, **headers)
    return getattr(client, method)(path, body, content_type="application/json", **headers)


@pytest.fixture
def entry(acme: ContactCenter, campaign: Campaign) -> DoNotCall:
    add_leads(campaign, "+442079460101")
    return DoNotCall.objects.create(contact_center=acme, phone="+442079460199")


@pytest.mark.parametrize(
    ("who", "read_status"),
    [("supervisor", 200), ("agent", 403), ("read_key", 200), ("telephony_key", 403)],
)
def test_refused_roles_change_nothing(
    request: pytest.FixtureRequest,
    api_keys: dict[str, str],
    campaign: Campaign,
    bot: VirtualAgent,
    entry: DoNotCall,
    who: str,
    read_status: int,
) -> None:
    if who.endswith("_key"):
        client, headers = Client(), bearer(api_keys[who.removesuffix("_key")])
    else:
        persona: Persona = request.getfixturevalue(who)
        client, headers = persona.client, {}
    reads, writes = requests_for(campaign, bot, entry)

    with nothing_changes():
        read_answers = [send(client, *r, headers) for r in reads]
        write_answers = [send(client, *w, headers) for w in writes]

    assert [r.status_code for r in read_answers] == [read_status] * len(reads)
    assert [r.status_code for r in write_answers] == [403] * len(writes)
    assert {error_code(r) for r in write_answers} == {"permission_denied"}


@pytest.mark.parametrize("how", ["session", "key"])
def test_another_centers_administrator_gets_404(
    outsider: Persona,
    globex_admin_key: str,
    globex_campaign: Campaign,
    campaign: Campaign,
    bot: VirtualAgent,
    entry: DoNotCall,
    how: str,
) -> None:
    client, headers = (outsider.client, {}) if how == "session" else (Client(), bearer(globex_admin_key))
    reads, writes = requests_for(campaign, bot, entry)
    by_id = [r for r in reads + writes if str(campaign.pk) in r[1] or str(entry.pk) in r[1]]

    with nothing_changes():
        answers = [send(client, *r, headers) for r in by_id]
        listed = send(client, "get", CAMPAIGNS, None, headers).json()
        dnc = send(client, "get", "/api/v1/dnc/", None, headers).json()

    assert [r.status_code for r in answers] == [404] * len(by_id)
    assert {error_code(r) for r in answers} == {"not_found"}
    assert [row["id"] for row in listed["results"]] == [str(globex_campaign.pk)]
    assert dnc["results"] == []


def test_anonymous_is_401(anonymous: Client, campaign: Campaign, bot: VirtualAgent, entry: DoNotCall) -> None:
    reads, writes = requests_for(campaign, bot, entry)
    with nothing_changes():
        answers = [send(anonymous, *r) for r in reads + writes]
    assert {r.status_code for r in answers} == {401}


# --- the schema ----------------------------------------------------------------------------------------


def test_the_schema_describes_every_operation(db: None) -> None:
    schema = Client().get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    paths, components = schema["paths"], schema["components"]["schemas"]
    operations = {
        (method, path): set(operation["responses"])
        for path, item in paths.items()
        if path.startswith(("/api/v1/campaigns/", "/api/v1/dnc/"))
        for method, operation in item.items()
        if method in {"get", "post", "put", "patch", "delete"}
    }
    conflicts = {key for key, codes in operations.items() if "409" in codes}

    assert set(operations) == {
        ("get", CAMPAIGNS),
        ("post", CAMPAIGNS),
        *((m, "/api/v1/campaigns/{id}/") for m in ("get", "put", "patch", "delete")),
        *(("post", f"/api/v1/campaigns/{{id}}/{verb}/") for verb in ("start", "pause", "stop")),
        ("get", "/api/v1/campaigns/{id}/leads/"),
        ("post", "/api/v1/campaigns/{id}/leads/"),
        ("get", "/api/v1/dnc/"),
        ("post", "/api/v1/dnc/"),
        ("get", "/api/v1/dnc/{id}/"),
        ("delete", "/api/v1/dnc/{id}/"),
        ("post", "/api/v1/dnc/bulk/"),
    }
    assert conflicts == {
        *((m, "/api/v1/campaigns/{id}/") for m in ("put", "patch", "delete")),
        *(("post", f"/api/v1/campaigns/{{id}}/{verb}/") for verb in ("start", "pause", "stop", "leads")),
    }
    assert set(components["Campaign"]["properties"]) == {
        "id",
        "name",
        "virtual_agents",
        "handoff_queue",
        "handoff_queue_threshold",
        "caller_ids",
        "timezone",
        "calling_hours",
        "max_attempts",
        "retry_minutes",
        "priority",
        "status",
        "status_reason",
        "progress",
        "created",
    }
    for body in ("LeadImportRequest", "DoNotCallBulkRequest"):
        assert (components[body]["minItems"], components[body]["maxItems"]) == (1, 10_000)
    page = paths["/api/v1/campaigns/{id}/leads/"]["get"]["responses"]["200"]["content"]["application/json"]
    assert set(components[page["schema"]["$ref"].rsplit("/", 1)[1]]["properties"]) == {"next", "results"}
