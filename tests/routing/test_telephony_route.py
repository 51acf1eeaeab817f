"""POST /api/v1/telephony/route: published flows answer the switch, menus included."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.test import Client

from routing import route as route_module
from routing.models import Flow
from routing.services import create_flow, create_phone_number, publish_flow, save_draft, update_flow
from tests.conftest import bearer, error_code
from tests.factories import make_api_key, make_queue
from voiso_byob.models import ApiKeyScope

URL = "/api/v1/telephony/route"
NUMBER = "+442079460018"


def menu_graph(sales_id: str, support_id: str) -> dict[str, Any]:
    return {
        "nodes": {
            "start": {"type": "start", "config": {}, "next": {"next": "welcome"}},
            "welcome": {"type": "play", "config": {"text": "Welcome to Acme."}, "next": {"next": "menu"}},
            "menu": {
                "type": "menu",
                "config": {
                    "prompt": "Press 1 for sales, 2 for support.",
                    "timeout_seconds": 5,
                    "max_tries": 2,
                },
                "next": {"1": "sales", "2": "support", "invalid": "bye", "timeout": "bye"},
            },
            "sales": {"type": "route", "config": {"target": {"type": "queue", "id": sales_id}}, "next": {}},
            "support": {
                "type": "route",
                "config": {"target": {"type": "queue", "id": support_id}},
                "next": {},
            },
            "bye": {"type": "hangup", "config": {}, "next": {}},
        }
    }


@pytest.fixture
def flow(acme) -> Flow:
    sales = make_queue(acme, name="Sales", extension="4323")
    support = make_queue(acme, name="Support", extension="4400")
    flow = create_flow(
        center=acme, by="t", name="Main line", graph=menu_graph(str(sales.pk), str(support.pk))
    )
    publish_flow(flow=flow, by="t")
    create_phone_number(center=acme, by="t", number=NUMBER, flow=flow)
    return flow


@pytest.fixture
def switch(acme, api_keys) -> Client:
    client = Client()
    client.defaults.update(bearer(api_keys["telephony"]))
    return client


def post(client: Client, **body: Any) -> Any:
    payload = {"call_id": "call-1", "to": NUMBER, "from": "+442079460999", **body}
    return client.post(URL, payload, content_type="application/json")


def verbs(response: Any) -> list[str]:
    return [step["verb"] for step in response.json()["instructions"]]


def test_menu_then_digits_reach_the_queue(flow: Flow, switch: Client) -> None:
    first = post(switch)
    assert first.status_code == 200, first.content
    assert verbs(first) == ["play", "gather"]
    assert first.json()["instructions"][1]["prompt"] == "Press 1 for sales, 2 for support."

    second = post(switch, digits="2")
    assert second.status_code == 200, second.content
    assert verbs(second) == ["dial"]
    dial = second.json()["instructions"][0]
    assert dial["sip_uri"] == "sip:4400@acme.voiso.com"
    assert second.json()["destination"]["type"] == "queue"
    assert second.json()["destination"]["extension"] == "4400"

    # The call left the menu: more digits are a clear error, not a replay.
    again = post(switch, digits="1")
    assert again.status_code == 409 and error_code(again) == "unknown_call"
    assert again.json()["error"]["sip_status"] == 481


def test_invalid_digits_replay_then_give_up(flow: Flow, switch: Client) -> None:
    post(switch)
    assert verbs(post(switch, digits="9")) == ["gather"]
    assert verbs(post(switch, digits="9")) == ["hangup"]


def sip_status(response: Any) -> int:
    return response.json()["error"]["sip_status"]


def test_unknown_numbers_and_calls(flow: Flow, switch: Client) -> None:
    # Each refusal tells the switch what to answer the call's INVITE with (issue #12 item 4).
    response = post(switch, to="+442079460099")
    assert response.status_code == 404 and error_code(response) == "unknown_number"
    assert sip_status(response) == 404
    response = post(switch, call_id="never-started", digits="1")
    assert response.status_code == 409 and error_code(response) == "unknown_call"
    assert sip_status(response) == 481  # Call/Transaction Does Not Exist
    response = post(switch, to="not a number")
    assert response.status_code == 404 and error_code(response) == "unknown_number"
    assert sip_status(response) == 404


def test_another_centers_number_is_unknown(flow: Flow, globex) -> None:
    _, raw = make_api_key(globex, ApiKeyScope.TELEPHONY)
    response = post(Client(**bearer(raw)))
    assert response.status_code == 404 and error_code(response) == "unknown_number"


@pytest.mark.parametrize(
    "body", [{}, {"call_id": "c"}, {"call_id": "c", "to": NUMBER}, {"call_id": 1, "to": NUMBER, "from": "x"}]
)
def test_bad_requests(flow: Flow, switch: Client, body: dict[str, Any]) -> None:
    response = switch.post(URL, body, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["fields"]
    assert sip_status(response) == 400


def test_digits_must_be_one_key(flow: Flow, switch: Client) -> None:
    post(switch)
    response = post(switch, digits="12")
    assert response.status_code == 400 and sip_status(response) == 400


def test_only_telephony_keys(flow: Flow, api_keys) -> None:
    for scope in ("read", "admin"):
        response = post(Client(**bearer(api_keys[scope])))
        assert response.status_code == 403 and sip_status(response) == 500  # the switch's set-up
    response = post(Client())
    assert response.status_code == 401 and sip_status(response) == 500


def test_a_number_without_a_published_flow(acme, switch: Client) -> None:
    create_phone_number(center=acme, by="t", number=NUMBER)
    response = post(switch)
    assert response.status_code == 409 and error_code(response) == "no_published_flow"
    assert sip_status(response) == 480  # Temporarily Unavailable


def test_one_sql_query_per_call_after_warm_up(
    flow: Flow, switch: Client, django_assert_max_num_queries
) -> None:
    post(switch, call_id="warm-up")
    with django_assert_max_num_queries(1):
        assert verbs(post(switch, call_id="call-2")) == ["play", "gather"]
    with django_assert_max_num_queries(1):
        assert verbs(post(switch, call_id="call-2", digits="1")) == ["dial"]


def test_a_publish_is_seen_on_the_next_call(acme, flow: Flow, switch: Client) -> None:
    assert verbs(post(switch, call_id="a")) == ["play", "gather"]
    save_draft(
        flow=flow,
        by="t",
        graph={
            "nodes": {
                "start": {"type": "start", "config": {}, "next": {"next": "closed"}},
                "closed": {"type": "voicemail", "config": {}, "next": {}},
            }
        },
    )
    assert verbs(post(switch, call_id="b")) == ["play", "gather"]  # a draft changes nothing
    publish_flow(flow=flow, by="t")
    assert verbs(post(switch, call_id="c")) == ["voicemail"]


def test_a_deleted_target_is_seen_without_a_publish(acme, flow: Flow, switch: Client) -> None:
    from routing.models import Queue
    from routing.services import update_queue

    post(switch, call_id="a")
    assert (
        post(switch, call_id="a", digits="1").json()["instructions"][0]["sip_uri"]
        == "sip:4323@acme.voiso.com"
    )
    update_queue(queue=Queue.objects.get(name="Sales"), by="t", extension="4324")
    post(switch, call_id="b")
    assert (
        post(switch, call_id="b", digits="1").json()["instructions"][0]["sip_uri"]
        == "sip:4324@acme.voiso.com"
    )


def test_after_hours_chain(acme, flow: Flow, switch: Client) -> None:
    night = create_flow(
        center=acme,
        by="t",
        name="Night",
        graph={
            "nodes": {
                "start": {"type": "start", "config": {}, "next": {"next": "vm"}},
                "vm": {"type": "voicemail", "config": {}, "next": {}},
            }
        },
    )
    publish_flow(flow=night, by="t")
    weekdays = {day: [["09:00", "17:00"]] for day in ("mon", "tue", "wed", "thu", "fri")}
    update_flow(
        flow=flow, by="t", business_hours={"weekly": weekdays, "holidays": []}, after_hours_flow=night
    )
    # acme runs on Europe/London: 10:00 in winter is open, 20:00 is not.
    assert verbs(post(switch, call_id="day", at="2026-11-24T10:00:00+00:00")) == ["play", "gather"]
    assert verbs(post(switch, call_id="night", at="2026-11-24T20:00:00+00:00")) == ["voicemail"]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_publish_in_one_process_is_seen_by_another(live_server) -> None:
    """Two processes: this one serves, a second one publishes; the next call follows the new version."""
    from tests.factories import make_center

    center = make_center("proc", byob_enabled=True)
    sales = make_queue(center, name="Sales", extension="4323")
    flow = create_flow(center=center, by="t", name="Main", graph=menu_graph(str(sales.pk), str(sales.pk)))
    publish_flow(flow=flow, by="t")
    create_phone_number(center=center, by="t", number=NUMBER, flow=flow)
    _, raw = make_api_key(center, ApiKeyScope.TELEPHONY)
    client = Client(**bearer(raw))
    assert verbs(post(client, call_id="x")) == ["play", "gather"]  # compiled and cached here

    script = (
        "import django, os;"
        "os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'voiso_byob.settings'); django.setup();"
        "from routing.models import Flow; from routing.services import save_draft, publish_flow;"
        f"flow = Flow.objects.get(pk='{flow.pk}');"
        "save_draft(flow=flow, by='other process', graph={'nodes': {"
        "'start': {'type': 'start', 'config': {}, 'next': {'next': 'h'}},"
        "'h': {'type': 'hangup', 'config': {}, 'next': {}}}});"
        "publish_flow(flow=flow, by='other process')"
    )
    from django.db import connection

    env = {**__import__("os").environ, "DATABASE_URL": _database_url(connection)}
    subprocess.run(
        [sys.executable, "-c", script], check=True, cwd=Path(__file__).resolve().parents[2], env=env
    )
    assert verbs(post(client, call_id="y")) == ["hangup"]
    assert route_module._compiled  # this process still holds the old compiled version, unused


def _database_url(connection: Any) -> str:
    settings_dict = connection.settings_dict
    return f"postgres://{settings_dict['USER']}@{settings_dict['HOST']}:{settings_dict['PORT']}/{settings_dict['NAME']}"
