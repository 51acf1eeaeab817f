"""`GET /api/v1/calls/` and `GET /api/v1/calls/<call_id>/`: readers, filters, cursor pages, shape."""

from __future__ import annotations

import re
from datetime import timedelta
from urllib.parse import quote

import pytest
from django.test import Client

from reporting.models import CallRecord, Direction, HandoffState, TargetType
from tests.conftest import Persona, bearer, error_code
from tests.factories import make_queue
from tests.reporting.factories import T0, make_bot, make_call, make_event, make_handoff, make_report
from voiso_byob.models import ContactCenter

CALLS = "/api/v1/calls/"


def detail(call_id: str) -> str:
    return f"{CALLS}{quote(call_id, safe='')}/"


def ids(response) -> list[str]:
    return [row["call_id"] for row in response.json()["results"]]


# --- who may read -----------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["read", "admin"])
def test_read_and_admin_keys_read_calls(scope: str, api_keys: dict[str, str], acme: ContactCenter) -> None:
    make_call(acme, call_id="c-1")
    client = Client()
    assert ids(client.get(CALLS, **bearer(api_keys[scope]))) == ["c-1"]
    assert client.get(detail("c-1"), **bearer(api_keys[scope])).json()["call_id"] == "c-1"


def test_admin_and_supervisor_sessions_read_calls(admin: Persona, supervisor: Persona) -> None:
    make_call(admin.center, call_id="c-1")
    for persona in (admin, supervisor):
        assert ids(persona.client.get(CALLS)) == ["c-1"]
        assert persona.client.get(detail("c-1")).status_code == 200


def test_telephony_keys_and_agents_are_refused(api_keys: dict[str, str], agent: Persona) -> None:
    make_call(agent.center, call_id="c-1")
    responses = [
        Client().get(CALLS, **bearer(api_keys["telephony"])),
        Client().get(detail("c-1"), **bearer(api_keys["telephony"])),
        agent.client.get(CALLS),
        agent.client.get(detail("c-1")),
    ]
    assert [r.status_code for r in responses] == [403] * 4
    assert {error_code(r) for r in responses} == {"permission_denied"}


def test_anonymous_is_401(anonymous: Client, acme: ContactCenter) -> None:
    make_call(acme, call_id="c-1")
    responses = [anonymous.get(CALLS), anonymous.get(detail("c-1"))]
    assert [r.status_code for r in responses] == [401, 401]
    assert {error_code(r) for r in responses} == {"not_authenticated"}


def test_other_centers_see_only_their_calls(admin: Persona, outsider: Persona, globex_admin_key: str) -> None:
    make_call(admin.center, call_id="acme-call")
    make_call(outsider.center, call_id="globex-call")
    for response in (outsider.client.get(CALLS), Client().get(CALLS, **bearer(globex_admin_key))):
        assert ids(response) == ["globex-call"]
    for response in (
        outsider.client.get(detail("acme-call")),
        Client().get(detail("acme-call"), **bearer(globex_admin_key)),
    ):
        assert response.status_code == 404
        assert error_code(response) == "not_found"


def test_writes_are_not_allowed(admin: Persona) -> None:
    make_call(admin.center, call_id="c-1")
    before = list(CallRecord.objects.values_list("call_id", "end_reason"))
    responses = [
        admin.client.post(CALLS, {"call_id": "new"}, content_type="application/json"),
        admin.client.patch(detail("c-1"), {"end_reason": "x"}, content_type="application/json"),
        admin.client.delete(detail("c-1")),
    ]
    assert [r.status_code for r in responses] == [405] * 3
    assert list(CallRecord.objects.values_list("call_id", "end_reason")) == before


# --- filters ----------------------------------------------------------------------------------


def test_filters_match_the_calls_page(admin: Persona) -> None:
    center = admin.center
    bot, queue = make_bot(center, "Billing bot"), make_queue(center, "Billing queue")
    make_call(center, call_id="plain", from_number="+15557770000", started_at=T0)
    handed = make_call(
        center, call_id="handed", virtual_agent=bot, queue=queue, started_at=T0 + timedelta(minutes=1)
    )
    make_handoff(handed)
    make_call(
        center,
        call_id="out",
        direction=Direction.OUTBOUND,
        to_number="+15554440000",
        started_at=T0 - timedelta(days=1),
    )
    get = admin.client.get

    assert ids(get(CALLS)) == ["handed", "plain", "out"]
    assert ids(get(CALLS, {"direction": "outbound"})) == ["out"]
    assert ids(get(CALLS, {"handed_off": "true"})) == ["handed"]
    assert ids(get(CALLS, {"handed_off": "false"})) == ["plain", "out"]
    assert ids(get(CALLS, {"virtual_agent": bot.pk})) == ["handed"]
    assert ids(get(CALLS, {"queue": queue.pk})) == ["handed"]
    assert ids(get(CALLS, {"number": "777"})) == ["plain"]
    assert ids(get(CALLS, {"number": "444"})) == ["out"]
    assert ids(get(CALLS, {"date_from": "2025-03-14"})) == ["handed", "plain"]
    assert ids(get(CALLS, {"date_to": "2025-03-13"})) == ["out"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"date_from": "2025-13-01"}, "date_from"),
        ({"date_from": "2025-03-15", "date_to": "2025-03-14"}, "date_to"),
        ({"date_to": "9999-12-31"}, "date_to"),
        ({"direction": "up"}, "direction"),
        ({"handed_off": "yes"}, "handed_off"),
        ({"virtual_agent": "123"}, "virtual_agent"),
        ({"queue": "00000000-0000-0000-0000-000000000000"}, "queue"),
        ({"after": "garbage!"}, "after"),
        ({"after": "W251bGwsImEiXQ"}, "after"),  # [null,"a"]
        ({"after": "WyIyMDI1LTAzLTE0VDA5OjAwOjAwIiwxXQ"}, "after"),  # a naive time
        ({"after": "x" * 300}, "after"),
        ({"page_size": "0"}, "page_size"),
        ({"page_size": "1000"}, "page_size"),
        ({"page_size": "ten"}, "page_size"),
        ({"number": "a\x00b"}, "number"),
    ],
)
def test_bad_query_parameters_are_400(admin: Persona, params: dict[str, str], field: str) -> None:
    make_call(admin.center, call_id="c-1")
    response = admin.client.get(CALLS, params)
    assert response.status_code == 400
    error_code(response)  # the one error shape
    assert set(response.json()["error"]["fields"]) == {field}


def test_a_foreign_bot_is_an_invalid_filter_not_a_leak(admin: Persona, outsider: Persona) -> None:
    foreign = make_bot(outsider.center, "Their bot")
    response = admin.client.get(CALLS, {"virtual_agent": foreign.pk})
    assert response.status_code == 400
    assert "Their bot" not in response.content.decode()


# --- pages ------------------------------------------------------------------------------------


def test_cursor_pages_cover_every_call_once_in_order(admin: Persona) -> None:
    center = admin.center
    records = [make_call(center, started_at=T0 + timedelta(minutes=i // 4)) for i in range(23)]  # ties of 4
    undated = [make_call(center, started_at=None) for _ in range(3)]
    expected = [r.call_id for r in sorted(records, key=lambda r: (r.started_at, r.pk), reverse=True)]
    expected += [r.call_id for r in sorted(undated, key=lambda r: r.pk, reverse=True)]

    seen, url, sizes = [], f"{CALLS}?page_size=5", []
    while url:
        body = admin.client.get(url).json()
        sizes.append(len(body["results"]))
        seen += [row["call_id"] for row in body["results"]]
        url = body["next"]
        assert url is None or "page_size=5" in url

    assert seen == expected
    assert sizes == [5, 5, 5, 5, 5, 1]


def test_a_page_is_stable_when_new_calls_arrive(admin: Persona) -> None:
    center = admin.center
    for i in range(6):
        make_call(center, call_id=f"old-{i}", started_at=T0 + timedelta(seconds=i))
    first = admin.client.get(CALLS, {"page_size": 3}).json()
    make_call(center, call_id="newest", started_at=T0 + timedelta(hours=1))
    second = admin.client.get(first["next"]).json()
    assert [row["call_id"] for row in first["results"]] == ["old-5", "old-4", "old-3"]
    assert [row["call_id"] for row in second["results"]] == ["old-2", "old-1", "old-0"]
    assert second["next"] is None


def test_list_queries_do_not_grow_with_rows(
    api_keys: dict[str, str], acme: ContactCenter, django_assert_max_num_queries
) -> None:
    bot, queue = make_bot(acme), make_queue(acme)
    for _ in range(40):
        make_call(acme, virtual_agent=bot, queue=queue)
    client = Client()
    client.get(CALLS, **bearer(api_keys["read"]))  # the key is cached after its first use
    with django_assert_max_num_queries(4):
        response = client.get(CALLS, **bearer(api_keys["read"]))
    assert len(response.json()["results"]) == 40


# --- shape ------------------------------------------------------------------------------------


def test_detail_has_the_record_its_handoffs_events_and_reports(admin: Persona) -> None:
    center = admin.center
    bot, queue = make_bot(center, "Billing bot"), make_queue(center, "Billing queue")
    record = make_call(
        center,
        call_id="abc/123@host",
        virtual_agent=bot,
        queue=queue,
        recording_url="https://r.example/a.wav",
    )
    make_handoff(
        record,
        virtual_agent=bot,
        refer_to="sip:4001@acme.voiso.com",
        context={"X-Intent": "refund"},
        target_type=TargetType.QUEUE,
        target_ref=str(queue.pk),
        state=HandoffState.COMPLETED,
        requested_at=T0 + timedelta(seconds=30),
        completed_at=T0 + timedelta(seconds=33),
        sip_status=202,
    )
    make_event(center, record.call_id, "call.ended", T0 + timedelta(seconds=90), end_reason="hangup")
    make_event(center, record.call_id, "call.started", T0, direction="inbound")
    make_event(center, "another-call", "call.started", T0, direction="inbound")
    make_report(record, summary="Wants a refund.", transcript=[{"role": "user", "text": "Refund please"}])

    body = admin.client.get(detail("abc/123@host")).json()

    assert body["call_id"] == "abc/123@host"
    assert body["url"].endswith("/api/v1/calls/abc/123@host/")
    assert body["virtual_agent"] == {"id": str(bot.pk), "name": "Billing bot"}
    assert body["queue"] == {"id": str(queue.pk), "name": "Billing queue"}
    assert body["recording_url"] == "https://r.example/a.wav"
    [handoff] = body["handoffs"]
    assert handoff["state"] == "completed" and handoff["context"] == {"X-Intent": "refund"}
    assert handoff["target_type"] == "queue" and handoff["sip_status"] == 202
    assert [e["type"] for e in body["events"]] == [
        "call.started",
        "call.ended",
    ]  # in time order, this call only
    assert body["events"][1]["data"] == {"end_reason": "hangup"}
    [report] = body["provider_reports"]
    assert report["summary"] == "Wants a refund." and report["transcript"][0]["text"] == "Refund please"
    assert "credentials" not in str(body)


def test_list_rows_have_no_events(admin: Persona) -> None:
    make_call(admin.center, call_id="c-1")
    [row] = admin.client.get(CALLS).json()["results"]
    assert "events" not in row and "handoffs" not in row
    assert row["handoff_count"] == 0 and row["total_seconds"] == 90.0


def test_schema_documents_the_calls_endpoints(anonymous: Client) -> None:
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    list_op = schema["paths"]["/api/v1/calls/"]["get"]
    assert {p["name"] for p in list_op["parameters"]} >= {
        "date_from",
        "date_to",
        "direction",
        "virtual_agent",
        "queue",
        "handed_off",
        "number",
        "after",
        "page_size",
    }
    assert set(schema["paths"]["/api/v1/calls/{call_id}/"]) == {"get"}
    page = schema["components"]["schemas"]["CallPage"]
    assert set(page["properties"]) == {"next", "results"}


def test_schema_names_every_enum_without_collisions(anonymous: Client) -> None:
    # A detail that copied the row's fields would put the `status` enum in two components,
    # which drf-spectacular can only name with a hash (and `check --deploy` fails on).
    schemas = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()[
        "components"
    ]["schemas"]
    assert schemas["CallDetail"]["allOf"][0] == {"$ref": "#/components/schemas/CallRecord"}
    assert set(schemas["CallDetail"]["allOf"][1]["properties"]) == {"handoffs", "events", "provider_reports"}
    hashed = [name for name in schemas if re.fullmatch(r"[A-Za-z]+?[0-9A-F][0-9a-f]{2}Enum", name)]
    assert hashed == []
