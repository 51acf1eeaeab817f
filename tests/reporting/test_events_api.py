"""POST /api/v1/telephony/events: validation, all-or-nothing, idempotency, tenants, keys and roles."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from reporting.models import CallEvent, CallRecord, Handoff
from tests.conftest import bearer, error_code
from tests.factories import make_api_key, make_queue
from tests.reporting.conftest import EVENTS_URL, at, call_events, event, make_bot, post_events
from voiso_byob.models import ApiKey, ApiKeyScope
from voiso_byob.services import revoke_api_key

VALID = {
    "call.started": {"direction": "inbound", "from": "+442079460999", "to": "+442079460018"},
    "bot.connected": {"virtual_agent": "7001"},
    "handoff.requested": {"virtual_agent": "7001", "refer_to": "<sip:4323@acme.voiso.com>"},
    "handoff.accepted": {"sip_status": 202},
    "handoff.completed": {},
    "handoff.failed": {"reason": "busy"},
    "queue.entered": {"queue": "4323"},
    "agent.connected": {"extension": "1001"},
    "call.ended": {"end_reason": "normal_clearing"},
    "recording.ready": {"url": "https://rec.example.com/1.wav"},
}


def one(kind: str, **data: Any) -> dict[str, Any]:
    return event(kind, "call-1", 0, **data)


def stored() -> tuple[int, int, int]:
    return CallEvent.objects.count(), CallRecord.objects.count(), Handoff.objects.count()


# --- accepted --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", list(VALID))
def test_every_type_with_its_required_data_is_accepted(switch: Client, bot, sales, kind: str) -> None:
    response = post_events(switch, one(kind, **VALID[kind]))
    assert response.status_code == 202, response.content
    assert response.json() == {"accepted": 1, "duplicates": 0}
    stored_event = CallEvent.objects.get()
    assert (stored_event.type, stored_event.call_id, stored_event.data) == (kind, "call-1", VALID[kind])
    assert CallRecord.objects.get().event_count == 1


def test_optional_fields_and_unknown_keys_are_kept(switch: Client, bot) -> None:
    data = {
        "virtual_agent": str(bot.pk),
        "refer_to": "<sip:4323@acme.voiso.com>",
        "referred_by": "<sip:bot@10.0.0.5>",
        "headers": {"X-Intent": "billing", "X-Empty": ""},
        "vendor": {"trace": [1, 2.5, None, True]},
    }
    assert post_events(switch, one("handoff.requested", **data)).status_code == 202
    assert CallEvent.objects.get().data == data


def test_offsets_are_kept_as_instants(switch: Client, bot) -> None:
    body = one("call.ended", end_reason="normal")
    body["occurred_at"] = "2026-05-01T11:30:00.123456789+02:00"
    assert post_events(switch, body).status_code == 202
    assert CallEvent.objects.get().occurred_at.isoformat() == "2026-05-01T09:30:00.123456+00:00"


def test_a_batch_answers_with_counts(switch: Client, bot, sales) -> None:
    events = call_events("c1") + call_events("c2", refer_to=None)
    response = post_events(switch, events)
    assert response.status_code == 202
    assert response.json() == {"accepted": len(events), "duplicates": 0}
    assert stored() == (len(events), 2, 1)


# --- idempotency -------------------------------------------------------------------------------


def test_a_retried_request_duplicates_nothing(switch: Client, bot, sales, agent) -> None:
    events = call_events("c1")
    first = post_events(switch, events)
    record = CallRecord.objects.values().get()
    handoff = Handoff.objects.values().get()
    again = post_events(switch, events)
    assert first.json() == {"accepted": len(events), "duplicates": 0}
    assert again.status_code == 202 and again.json() == {"accepted": 0, "duplicates": len(events)}
    assert stored() == (len(events), 1, 1)
    assert CallRecord.objects.values().get() == record  # not even `updated` moved
    assert Handoff.objects.values().get() == handoff


def test_a_repeated_id_inside_one_batch_is_a_duplicate_and_the_first_wins(switch: Client, bot) -> None:
    first = event("call.ended", "c1", 10, event_id="e-1", end_reason="first")
    second = event("call.ended", "c1", 20, event_id="e-1", end_reason="second")
    response = post_events(switch, [first, second])
    assert response.json() == {"accepted": 1, "duplicates": 1}
    assert CallEvent.objects.get().data == {"end_reason": "first"}
    assert CallRecord.objects.get().end_reason == "first"


def test_a_resent_id_with_other_content_changes_nothing(switch: Client, bot) -> None:
    post_events(switch, event("call.ended", "c1", 10, event_id="e-1", end_reason="first"))
    response = post_events(switch, event("call.ended", "c2", 20, event_id="e-1", end_reason="other"))
    assert response.json() == {"accepted": 0, "duplicates": 1}
    assert list(CallRecord.objects.values_list("call_id", "end_reason")) == [("c1", "first")]


# --- refused: all or nothing, with every bad event by index ---------------------------------------

INVALID_EVENTS = [
    # (event overrides, data, the field reported)
    ({"id": None}, None, "id"),
    ({"id": ""}, None, "id"),
    ({"id": "x" * 201}, None, "id"),
    ({"id": 42}, None, "id"),
    ({"id": "a\x00b"}, None, "id"),
    ({"type": None}, None, "type"),
    ({"type": "call.exploded"}, None, "type"),
    ({"call_id": None}, None, "call_id"),
    ({"call_id": "c" * 201}, None, "call_id"),
    ({"call_id": ["c"]}, None, "call_id"),
    ({"occurred_at": None}, None, "occurred_at"),
    ({"occurred_at": "2026-05-01T09:30:00"}, None, "occurred_at"),  # naive
    ({"occurred_at": "2026-05-01"}, None, "occurred_at"),
    ({"occurred_at": "2026-02-30T09:30:00Z"}, None, "occurred_at"),
    ({"occurred_at": "2026-05-01T25:30:00Z"}, None, "occurred_at"),
    ({"occurred_at": "0001-01-01T00:00:00+01:00"}, None, "occurred_at"),  # before year 1 in UTC
    ({"occurred_at": 1777627800}, None, "occurred_at"),
    ({"occurred_at": "yesterday"}, None, "occurred_at"),
    ({"data": ["direction", "inbound"]}, None, "data"),
    ({}, {"note": "a\x00b", "end_reason": "x"}, "data"),
    ({}, {"note": "\ud800", "end_reason": "x"}, "data"),
    ({}, {"nested": {"note": ["a\x00b"]}, "end_reason": "x"}, "data"),
    ({}, {"blob": "x" * 20_000, "end_reason": "x"}, "data"),
]


@pytest.mark.parametrize(("overrides", "data", "field"), INVALID_EVENTS)
def test_invalid_event_fields(switch: Client, bot, overrides: dict[str, Any], data: Any, field: str) -> None:
    bad = {**one("call.ended", **(data or {"end_reason": "x"})), **overrides}
    response = switch.post(EVENTS_URL, json.dumps(bad), content_type="application/json")
    assert response.status_code == 400, response.content
    assert error_code(response) == "invalid_events"
    [error] = response.json()["error"]["errors"]
    assert error["index"] == 0 and field in error["fields"]
    assert stored() == (0, 0, 0)


INVALID_DATA = [
    ("call.started", {"from": "+1", "to": "+2"}, "data.direction"),
    ("call.started", {"direction": "sideways", "from": "+1", "to": "+2"}, "data.direction"),
    ("call.started", {"direction": "inbound", "from": "+1"}, "data.to"),
    ("call.started", {"direction": "inbound", "from": 44, "to": "+2"}, "data.from"),
    (
        "call.started",
        {"direction": "inbound", "from": "+1", "to": "+2", "campaign_id": ["x"]},
        "data.campaign_id",
    ),
    ("call.started", {"direction": "inbound", "from": "+1", "to": "+2", "lead_id": "x" * 65}, "data.lead_id"),
    ("bot.connected", {}, "data.virtual_agent"),
    ("bot.connected", {"virtual_agent": "the billing bot"}, "data.virtual_agent"),
    ("bot.connected", {"virtual_agent": "00000000-0000-0000-0000-000000000000"}, "data.virtual_agent"),
    ("bot.connected", {"virtual_agent": "7999"}, "data.virtual_agent"),
    ("bot.connected", {"virtual_agent": "7001", "provider_call_id": 5}, "data.provider_call_id"),
    ("handoff.requested", {"virtual_agent": "7001"}, "data.refer_to"),
    ("handoff.requested", {"virtual_agent": "7001", "refer_to": "  "}, "data.refer_to"),
    ("handoff.requested", {"virtual_agent": "7001", "refer_to": "x" * 2049}, "data.refer_to"),
    ("handoff.requested", {"refer_to": "<sip:4323@acme.voiso.com>"}, "data.virtual_agent"),
    (
        "handoff.requested",
        {"virtual_agent": "7001", "refer_to": "<sip:1@a>", "headers": "X-A: 1"},
        "data.headers",
    ),
    (
        "handoff.requested",
        {"virtual_agent": "7001", "refer_to": "<sip:1@a>", "headers": {"X-A": 1}},
        "data.headers",
    ),
    (
        "handoff.requested",
        {"virtual_agent": "7001", "refer_to": "<sip:1@a>", "headers": {f"X-{i}": "v" for i in range(51)}},
        "data.headers",
    ),
    ("handoff.accepted", {}, "data.sip_status"),
    ("handoff.accepted", {"sip_status": 99}, "data.sip_status"),
    ("handoff.accepted", {"sip_status": 700}, "data.sip_status"),
    ("handoff.accepted", {"sip_status": "202"}, "data.sip_status"),
    ("handoff.accepted", {"sip_status": True}, "data.sip_status"),
    ("handoff.accepted", {"sip_status": 202.5}, "data.sip_status"),
    ("handoff.completed", {"answered_by": 1001}, "data.answered_by"),
    ("handoff.failed", {}, "data.reason"),
    ("handoff.failed", {"reason": "busy", "sip_status": 1000}, "data.sip_status"),
    ("queue.entered", {}, "data.queue"),
    ("queue.entered", {"queue": "billing"}, "data.queue"),
    ("queue.entered", {"queue": 4323}, "data.queue"),
    ("queue.entered", {"queue": "4399"}, "data.queue"),  # no such queue here
    ("queue.entered", {"queue": "7001"}, "data.queue"),  # the bot's extension, not a queue's
    ("agent.connected", {}, "data.extension"),
    ("agent.connected", {"extension": "ana"}, "data.extension"),
    ("agent.connected", {"extension": 1001}, "data.extension"),
    ("call.ended", {}, "data.end_reason"),
    ("call.ended", {"end_reason": "x", "hangup_by": "nobody"}, "data.hangup_by"),
    ("recording.ready", {}, "data.url"),
    ("recording.ready", {"url": "ftp://rec.example.com/1.wav"}, "data.url"),
    ("recording.ready", {"url": "javascript:alert(1)"}, "data.url"),
    ("recording.ready", {"url": "not a url"}, "data.url"),
]


@pytest.mark.parametrize(("kind", "data", "field"), INVALID_DATA)
def test_invalid_data_per_type(switch: Client, bot, kind: str, data: dict[str, Any], field: str) -> None:
    response = post_events(switch, one(kind, **data))
    assert response.status_code == 400, response.content
    assert error_code(response) == "invalid_events"
    [error] = response.json()["error"]["errors"]
    assert field in error["fields"], error
    assert stored() == (0, 0, 0)


def test_one_bad_event_refuses_the_batch_and_every_error_is_reported_by_index(switch: Client, bot) -> None:
    events = call_events("c1", refer_to=None)
    events[1]["data"]["virtual_agent"] = "7999"  # unknown bot
    events[3]["occurred_at"] = "2026-05-01 09:30"  # no seconds, no offset
    events.append("not an event")
    response = post_events(switch, events)
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "invalid_events" and "nothing was stored" in body["message"]
    assert [(e["index"], sorted(e["fields"])) for e in body["errors"]] == [
        (1, ["data.virtual_agent"]),
        (3, ["occurred_at"]),
        (4, ["non_field_errors"]),
    ]
    assert stored() == (0, 0, 0)


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        ("{not json", "parse_error"),
        (" ", "parse_error"),
        ('{"id": NaN}', "parse_error"),
        ('{"id": 1e999}', "parse_error"),
        ("[" * 100_000, "parse_error"),
        ("[]", "invalid_body"),
        ('"call.started"', "invalid_body"),
        ("null", "invalid_body"),
        ('{"events": {"id": "x"}}', "invalid_body"),
        ('{"events": []}', "empty_batch"),
    ],
)
def test_bad_bodies_have_their_own_codes(switch: Client, raw: str, code: str) -> None:
    response = switch.post(EVENTS_URL, raw, content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == code


def test_more_than_1000_events_is_refused_whole(switch: Client, bot) -> None:
    events = [event("call.ended", f"c{i}", 0, end_reason="x") for i in range(1001)]
    response = post_events(switch, events)
    assert response.status_code == 400 and error_code(response) == "batch_too_large"
    assert stored() == (0, 0, 0)
    assert post_events(switch, events[:1000]).json() == {"accepted": 1000, "duplicates": 0}


def test_other_content_types_are_415(switch: Client) -> None:
    response = switch.post(EVENTS_URL, "id=1", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"


def test_only_post(switch: Client) -> None:
    assert switch.get(EVENTS_URL).status_code == 405
    assert switch.put(EVENTS_URL, "{}", content_type="application/json").status_code == 405


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
_event_like = st.fixed_dictionaries(
    {},
    optional={
        "id": st.text(max_size=5) | st.integers(),
        "type": st.sampled_from([*VALID, "x"]),
        "call_id": st.text(max_size=5),
        "occurred_at": st.sampled_from([at(0), "2026-05-01T09:30:00", "", "2026-13-01T00:00:00Z"]) | _json,
        "data": st.one_of(
            _json, st.sampled_from(list(VALID.values())), st.builds(dict, virtual_agent=st.text(max_size=40))
        ),
    },
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    body=_json | _event_like | st.builds(lambda events: {"events": events}, st.lists(_event_like, max_size=5))
)
@example(body={"type": []})  # found by this test: an unhashable type was looked up in a dict
@example(body={"events": [{"type": {"a": 1}}]})
def test_never_a_500_and_a_refusal_stores_nothing(switch: Client, bot, body: Any) -> None:
    before = stored()
    response = switch.post(EVENTS_URL, json.dumps(body), content_type="application/json")
    assert response.status_code in (202, 400), response.content
    if response.status_code == 400:
        assert error_code(response) in {"invalid_events", "invalid_body", "empty_batch", "parse_error"}
        assert stored() == before


# --- keys, roles and tenants -------------------------------------------------------------------


@pytest.mark.parametrize("scope", [ApiKeyScope.READ, ApiKeyScope.ADMIN])
def test_only_telephony_keys(api_keys: dict[str, str], scope: str) -> None:
    response = post_events(Client(), one("call.ended", end_reason="x"), key=api_keys[scope])
    assert response.status_code == 403 and error_code(response) == "permission_denied"
    assert stored() == (0, 0, 0)


@pytest.mark.parametrize("persona", ["admin", "supervisor", "agent", "outsider"])
def test_sessions_are_not_the_sip_layer(request: pytest.FixtureRequest, persona: str) -> None:
    client = request.getfixturevalue(persona).client
    response = post_events(client, one("call.ended", end_reason="x"))
    assert response.status_code == 401 and error_code(response) == "not_authenticated"
    assert stored() == (0, 0, 0)


def test_anonymous_and_bad_keys_are_401(acme, anonymous: Client) -> None:
    body = one("call.ended", end_reason="x")
    assert post_events(anonymous, body).status_code == 401
    response = post_events(anonymous, body, key="vb_not-a-real-key")
    assert response.status_code == 401 and error_code(response) == "invalid_api_key"
    assert stored() == (0, 0, 0)


def test_a_revoked_key_is_401_at_once(acme, switch: Client) -> None:
    assert post_events(switch, one("call.ended", end_reason="x")).status_code == 202
    revoke_api_key(key=ApiKey.objects.get(contact_center=acme, scope=ApiKeyScope.TELEPHONY), by="tests")
    response = post_events(switch, event("call.ended", "c2", 0, end_reason="x"))
    assert response.status_code == 401 and error_code(response) == "revoked_api_key"
    assert CallEvent.objects.count() == 1


def test_a_revoked_key_learns_nothing_about_its_request(acme, switch: Client) -> None:
    # The key is remembered by this process after its first use; the refusal must not wait for that.
    assert post_events(switch, one("call.ended", end_reason="x")).status_code == 202
    revoke_api_key(key=ApiKey.objects.get(contact_center=acme, scope=ApiKeyScope.TELEPHONY), by="tests")
    response = post_events(switch, {"id": "x"})  # invalid: a live key would get 400 with the details
    assert response.status_code == 401 and error_code(response) == "revoked_api_key"
    response = switch.post(EVENTS_URL, "id=1", content_type="text/plain")
    assert response.status_code == 401 and error_code(response) == "revoked_api_key"
    assert CallEvent.objects.count() == 1


def test_the_same_event_id_in_two_centers_is_two_events(acme, globex, switch: Client) -> None:
    globex_switch = Client()
    globex_switch.defaults.update(bearer(make_api_key(globex, ApiKeyScope.TELEPHONY)[1]))
    body = event("call.ended", "shared-call", 0, event_id="e-1", end_reason="x")
    assert post_events(switch, body).json() == {"accepted": 1, "duplicates": 0}
    assert post_events(globex_switch, body).json() == {"accepted": 1, "duplicates": 0}
    assert post_events(globex_switch, body).json() == {"accepted": 0, "duplicates": 1}
    assert sorted(CallRecord.objects.values_list("contact_center__slug", "call_id")) == [
        ("acme", "shared-call"),
        ("globex", "shared-call"),
    ]


def test_another_centers_virtual_agent_is_a_validation_error(acme, globex, bot, switch: Client) -> None:
    globex.byob_enabled = True
    globex.save()
    foreign = make_bot(globex, name="Globex bot", extension="7002")
    for ref in (str(foreign.pk), "7002"):
        response = post_events(switch, one("bot.connected", virtual_agent=ref))
        assert response.status_code == 400 and error_code(response) == "invalid_events"
        assert "data.virtual_agent" in response.json()["error"]["errors"][0]["fields"]
    assert stored() == (0, 0, 0)


def test_another_centers_queue_is_not_entered(acme, globex, sales, switch: Client) -> None:
    foreign = make_queue(globex, name="Globex sales", extension="4399")
    for ref in (str(foreign.pk), "4399"):
        response = post_events(switch, one("queue.entered", queue=ref))
        assert response.status_code == 400 and error_code(response) == "invalid_events"
        assert response.json()["error"]["errors"][0]["fields"] == {
            "data.queue": ["No such queue in this contact center."]
        }
    assert stored() == (0, 0, 0)


@pytest.mark.parametrize("batched", [False, True], ids=["one event per request", "one batch"])
@pytest.mark.parametrize("by", ["id", "extension"])
def test_a_call_the_flow_sent_straight_to_a_queue_is_the_queues(
    switch: Client, sales, agent, batched: bool, by: str
) -> None:
    """No bot, no REFER: the switch dialled the queue of a route answer and reports entering it."""
    queue = str(sales.pk) if by == "id" else "4323"
    events = [
        event("call.started", "direct-1", 0, direction="inbound", **{"from": "+442079460999", "to": "+1"}),
        event("queue.entered", "direct-1", 8, queue=queue),
        event("agent.connected", "direct-1", 23, extension="1001"),
        event("call.ended", "direct-1", 83, end_reason="normal_clearing", hangup_by="caller"),
    ]
    for body in [events] if batched else events:
        assert post_events(switch, body).status_code == 202
    record = CallRecord.objects.get(call_id="direct-1")
    assert (record.queue_id, record.answered_by_id, record.virtual_agent_id) == (
        sales.pk,
        agent.membership.pk,
        None,
    )
    assert (record.queue_wait_seconds, record.human_seconds, record.event_count) == (15.0, 60.0, 4)
    assert CallEvent.objects.get(type="queue.entered").refs == {
        "queue": {"id": str(sales.pk), "name": "Sales", "extension": "4323"}
    }


def test_another_centers_queue_does_not_resolve(acme, globex, bot, switch: Client) -> None:
    from tests.factories import make_queue

    make_queue(globex, name="Globex sales", extension="4323")
    data = {"virtual_agent": "7001", "refer_to": "<sip:4323@globex.voiso.com>"}
    assert post_events(switch, one("handoff.requested", **data)).status_code == 202
    handoff = Handoff.objects.get()
    assert (handoff.target_type, handoff.target_ref, handoff.target_error) == ("", "", "foreign_domain")


def test_the_schema_documents_the_endpoint(anonymous: Client) -> None:
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/json").json()
    operation = schema["paths"]["/api/v1/telephony/events"]["post"]
    assert "202" in operation["responses"] and "400" in operation["responses"]
    examples = operation["requestBody"]["content"]["application/json"]["examples"]
    assert {"OneEvent", "ABatch"} <= set(examples)
    # Every event type and its data, queue.entered's included (the event contract as served).
    event_schemas = json.dumps(schema["components"]["schemas"])
    for kind in VALID:
        assert f'"{kind}"' in event_schemas, kind
    assert "queue.entered {queue (a queue's id" in event_schemas
