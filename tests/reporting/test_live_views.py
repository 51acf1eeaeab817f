"""The Live page and its catch-up endpoint: who sees what, the state and counters, catching up."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from reporting import live
from reporting.live import group_name
from reporting.models import CallEvent
from tests.conftest import Persona, error_code
from tests.reporting.conftest import T0, call_events, event, make_bot, post_events
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter

PAGE = "/live/"
EVENTS = "/live/events/"
NOW = T0 + timedelta(minutes=5)  # the calls below happen at T0 .. T0 + 2 min


@pytest.fixture
def clock() -> Any:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


@pytest.fixture
def traffic(clock: Any, switch: Client, bot: VirtualAgent, sales: Any) -> dict[str, str]:
    """Five calls through acme's bot in the window, one before it; returns the call ids by story."""
    calls = {
        "completed": call_events("call-completed", start=0),
        "failed": call_events("call-failed", start=10, outcome="failed"),
        "with_bot": call_events("call-with-bot", start=20, refer_to=None)[:2],  # still talking to the bot
        "contained": call_events("call-contained", start=30, refer_to=None),  # ends after 60 s in the bot
        "abandoned": [
            event(
                "call.started",
                "call-abandoned",
                40,
                direction="inbound",
                **{"from": "+442079460777", "to": "+442079460018"},
            ),
            event("bot.connected", "call-abandoned", 41, virtual_agent="7001"),
            event("call.ended", "call-abandoned", 45, end_reason="normal_clearing", hangup_by="caller"),
        ],
        # Started 25 minutes before NOW: outside the 15-minute window, and over.
        "old": call_events("call-old", start=-20 * 60, refer_to=None),
    }
    for events in calls.values():
        response = post_events(switch, events)
        assert response.status_code == 202, response.content
    return {story: events[0]["call_id"] for story, events in calls.items()}


def client_state(response: Any) -> dict[str, Any]:
    html = response.content.decode()
    start = html.index('<script id="live-state" type="application/json">') + len(
        '<script id="live-state" type="application/json">'
    )
    return json.loads(html[start : html.index("</script>", start)])


def counters(response: Any) -> dict[str, int]:
    return response.context["state"].counters


# --- who may see the page ---------------------------------------------------------------


@pytest.mark.parametrize(("persona", "status"), [("admin", 200), ("supervisor", 200), ("agent", 403)])
def test_page_is_for_administrators_and_supervisors(
    persona: str, status: int, request: pytest.FixtureRequest, traffic: dict[str, str]
) -> None:
    member: Persona = request.getfixturevalue(persona)
    response = member.client.get(PAGE)
    assert response.status_code == status
    if status == 403:
        assertNotContains(response, "call-with-bot", status_code=403)
        assertNotContains(response, "+442079460999", status_code=403)


def test_anonymous_goes_to_the_login_page(anonymous: Client) -> None:
    response = anonymous.get(PAGE)
    assert response.status_code == 302
    assert response["Location"] == "/accounts/login/?next=/live/"


def test_another_centers_administrator_sees_none_of_it(outsider: Persona, traffic: dict[str, str]) -> None:
    response = outsider.client.get(PAGE)
    assert response.status_code == 200
    for call_id in traffic.values():
        assertNotContains(response, call_id)
    assertNotContains(response, "Billing bot")
    assertNotContains(response, "+442079460999")
    assert client_state(response)["messages"] == []
    assert counters(response) == dict.fromkeys(counters(response), 0)


def test_the_page_only_answers_get(supervisor: Persona) -> None:
    assert supervisor.client.post(PAGE).status_code == 405


# --- what it shows ------------------------------------------------------------------------


def test_bot_calls_in_progress_are_grouped_by_virtual_agent(
    supervisor: Persona, traffic: dict[str, str]
) -> None:
    response = supervisor.client.get(PAGE)

    groups = response.context["state"].groups
    assert [(agent.name, [call.call_id for call in calls]) for agent, calls in groups] == [
        ("Billing bot", ["call-with-bot"])
    ]
    assertContains(response, '<tr data-call-id="call-with-bot">')
    assertContains(response, "ext. 7001")
    assertContains(response, "1 in progress")
    assertNotContains(response, 'data-call-id="call-contained"')  # ended


def test_a_call_handed_off_leaves_its_bot_once_the_handoff_completed(
    supervisor: Persona, switch: Client, traffic: dict[str, str]
) -> None:
    """The bot leaves the call at the final NOTIFY: the call, still talking to a person, is no
    longer the bot's; a REFER still ringing (accepted, no final NOTIFY) keeps it with the bot."""
    with_agent = call_events("call-with-agent", start=60)[:6]  # handed off, agent talking, not ended
    ringing = call_events("call-ringing", start=70)[:4]  # REFER accepted, no final NOTIFY yet
    assert [e["type"] for e in with_agent][-2:] == ["handoff.completed", "agent.connected"]
    assert post_events(switch, [*with_agent, *ringing]).status_code == 202

    response = supervisor.client.get(PAGE)

    groups = response.context["state"].groups
    assert [(agent.name, [call.call_id for call in calls]) for agent, calls in groups] == [
        ("Billing bot", ["call-with-bot", "call-ringing"])
    ]
    assertNotContains(response, '<tr data-call-id="call-with-agent">')
    assertContains(response, "2 in progress")
    # The script starts from the same facts: which bot each call is on now.
    on_bot = {
        m["call"]["call_id"]: m["call"]["active_virtual_agent"] for m in client_state(response)["messages"]
    }
    bot_id = str(groups[0][0].pk)
    assert on_bot["call-with-bot"] == on_bot["call-ringing"] == bot_id
    assert on_bot["call-with-agent"] is None
    assert on_bot["call-completed"] is None  # ended


def test_handoffs_show_stage_caller_bot_target_and_context(
    supervisor: Persona, traffic: dict[str, str]
) -> None:
    response = supervisor.client.get(PAGE)

    handoffs = {h.call_record.call_id: h for h in response.context["state"].handoffs}
    assert set(handoffs) == {"call-completed", "call-failed"}
    assert handoffs["call-completed"].state == "completed"
    assert handoffs["call-failed"].state == "failed"
    html = response.content.decode()
    row = html[html.index('data-handoff-key="call-completed#1"') :].split("</tr>", 1)[0]
    assert 'data-state="completed"' in row
    assert '<span class="stage stage-completed">Completed</span>' in row
    assert "+442079460999" in row  # caller
    assert "Billing bot" in row
    assert "Sales" in row and "ext. 4323" in row  # the resolved target
    assert "<dt>X-Intent</dt><dd>billing</dd>" in row  # the context the bot passed
    failed = html[html.index('data-handoff-key="call-failed#1"') :].split("</tr>", 1)[0]
    assert "busy (SIP 486)" in failed


def test_counters_cover_the_last_15_minutes(supervisor: Persona, traffic: dict[str, str]) -> None:
    response = supervisor.client.get(PAGE)
    # The old call is outside the window; the one still with the bot has no outcome yet.
    assert counters(response) == {
        "reached": 5,
        "handed_off": 2,
        "contained": 1,
        "abandoned": 1,
        "completed": 1,
        "failed": 1,
    }
    assertContains(response, '<dd data-counter="reached">5</dd>', html=True)


def test_counters_move_with_the_window(supervisor: Persona, traffic: dict[str, str], clock: Any) -> None:
    clock.move_to(T0 + timedelta(minutes=15, seconds=25))  # the window now starts at T0 + 25 s
    assert counters(supervisor.client.get(PAGE)) == {
        "reached": 2,  # calls by start: contained (T0 + 30 s) and abandoned (T0 + 40 s)
        "handed_off": 0,
        "contained": 1,
        "abandoned": 1,
        # Handoffs count by when they ended: completed at T0 + 31 s, failed at T0 + 41 s.
        "completed": 1,
        "failed": 1,
    }
    clock.move_to(T0 + timedelta(minutes=15, seconds=42))
    assert counters(supervisor.client.get(PAGE)) == dict.fromkeys(
        ["reached", "handed_off", "contained", "abandoned", "completed", "failed"], 0
    )


def test_the_page_hands_its_state_to_the_script(supervisor: Persona, traffic: dict[str, str]) -> None:
    state = client_state(supervisor.client.get(PAGE))
    assert state["server_time"] == NOW.isoformat()
    assert state["window_seconds"] == 900
    assert state["agent"] == ""
    calls = {m["call"]["call_id"] for m in state["messages"]}
    assert calls == {"call-completed", "call-failed", "call-with-bot", "call-contained", "call-abandoned"}
    handoff = next(
        m for m in state["messages"] if m.get("handoff") and m["call"]["call_id"] == "call-completed"
    )
    assert handoff["handoff"]["state"] == "completed"
    assert handoff["handoff"]["context"] == {"X-Intent": "billing"}
    assert handoff["virtual_agent"]["name"] == "Billing bot"


def test_page_reads_in_a_fixed_number_of_queries(
    supervisor: Persona, traffic: dict[str, str], django_assert_max_num_queries: Any
) -> None:
    supervisor.client.get(PAGE)  # session and membership caches warm up
    with django_assert_max_num_queries(12):
        assert supervisor.client.get(PAGE).status_code == 200


# --- the virtual agent filter -------------------------------------------------------------


@pytest.fixture
def second_bot(acme: ContactCenter, switch: Client, traffic: dict[str, str]) -> VirtualAgent:
    bot = make_bot(acme, name="Sales bot", extension="7002")
    response = post_events(switch, call_events("call-sales-bot", start=50, bot="7002", refer_to=None)[:2])
    assert response.status_code == 202
    return bot


def test_filter_by_virtual_agent(supervisor: Persona, second_bot: VirtualAgent) -> None:
    response = supervisor.client.get(PAGE, {"agent": str(second_bot.pk)})

    assert response.status_code == 200
    state = response.context["state"]
    assert [(agent.name, [c.call_id for c in calls]) for agent, calls in state.groups] == [
        ("Sales bot", ["call-sales-bot"])
    ]
    assert state.handoffs == []
    assert counters(response) == {
        "reached": 1,
        "handed_off": 0,
        "contained": 0,
        "abandoned": 0,
        "completed": 0,
        "failed": 0,
    }
    # The script gets every bot's state: switching the filter in the browser needs it.
    script_state = client_state(response)
    assert script_state["agent"] == str(second_bot.pk)
    assert {m["call"]["call_id"] for m in script_state["messages"]} >= {"call-with-bot", "call-sales-bot"}
    assertContains(response, f'<option value="{second_bot.pk}" selected>Sales bot</option>', html=True)


def test_filter_refuses_another_centers_bot_and_garbage(
    supervisor: Persona, traffic: dict[str, str], globex: ContactCenter
) -> None:
    globex.byob_enabled = True
    globex.save(update_fields=["byob_enabled"])
    foreign = make_bot(globex, name="Globex bot", extension="7009")
    for value, message in [
        (str(foreign.pk), "Select a valid choice"),
        ("not-a-uuid", "is not a valid UUID"),
        ("7001", "is not a valid UUID"),
    ]:
        response = supervisor.client.get(PAGE, {"agent": value})
        assert response.status_code == 400, value
        assertContains(response, message, status_code=400)
        assertNotContains(response, "Globex bot", status_code=400)
        # The page still shows the center's state, unfiltered.
        assert response.context["state"].counters["reached"] == 5


# --- catching up --------------------------------------------------------------------------


def since(moment: Any) -> dict[str, str]:
    return {"since": moment.isoformat()}


@pytest.mark.parametrize(("persona", "status"), [("admin", 200), ("supervisor", 200), ("agent", 403)])
def test_catch_up_is_for_administrators_and_supervisors(
    persona: str, status: int, request: pytest.FixtureRequest, traffic: dict[str, str]
) -> None:
    member: Persona = request.getfixturevalue(persona)
    response = member.client.get(EVENTS, since(NOW - timedelta(minutes=1)))
    assert response.status_code == status
    if status == 403:
        assert error_code(response) == "permission_denied"
    else:
        assert response.json()["messages"]


def test_catch_up_refuses_anonymous_with_json(anonymous: Client, clock: Any) -> None:
    response = anonymous.get(EVENTS, since(NOW))
    assert response.status_code == 401
    assert error_code(response) == "not_authenticated"


def test_catch_up_never_returns_another_centers_events(outsider: Persona, traffic: dict[str, str]) -> None:
    response = outsider.client.get(EVENTS, since(NOW - timedelta(minutes=1)))
    assert response.status_code == 200
    assert response.json()["messages"] == []


@pytest.mark.parametrize(
    ("value", "code"),
    [
        (None, "invalid"),
        ("", "invalid"),
        ("yesterday", "invalid"),
        ("2026-05-01T09:34:00", "invalid"),  # no offset: ambiguous
        ("2026-13-45T99:00:00Z", "invalid"),
        ((NOW - timedelta(minutes=16)).isoformat(), "out_of_range"),
        ((NOW + timedelta(minutes=5)).isoformat(), "out_of_range"),
    ],
)
def test_catch_up_validates_since(supervisor: Persona, clock: Any, value: str | None, code: str) -> None:
    response = supervisor.client.get(EVENTS, {} if value is None else {"since": value})
    assert response.status_code == 400
    assert error_code(response) == code
    assert "since" in response.json()["error"]["fields"]


def test_catch_up_returns_what_the_socket_carried(
    supervisor: Persona,
    switch: Client,
    bot: VirtualAgent,
    sales: Any,
    clock: Any,
    django_capture_on_commit_callbacks,
) -> None:
    """Same messages, same order: for the page a replayed event is indistinguishable from a live one."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(supervisor.center.id), channel)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_events(switch, call_events("call-1")).status_code == 202
    published = async_to_sync(layer.receive)(channel)["messages"]
    # Configuration changing later does not rewrite what the events said when they were stored.
    VirtualAgent.objects.filter(pk=bot.pk).update(name="Renamed bot")

    response = supervisor.client.get(EVENTS, since(NOW - timedelta(seconds=1)))

    assert response.status_code == 200
    body = response.json()
    assert body["is_truncated"] is False
    assert body["server_time"] == NOW.isoformat()
    assert [m["event"]["type"] for m in published][:4] == [
        "call.started",
        "bot.connected",
        "handoff.requested",
        "handoff.accepted",
    ]
    assert body["messages"] == json.loads(json.dumps(published))
    assert {m["virtual_agent"]["name"] for m in body["messages"] if m["virtual_agent"]} == {"Billing bot"}


def test_catch_up_covers_events_since_the_time_asked_less_the_margin(
    supervisor: Persona, switch: Client, bot: VirtualAgent, clock: Any
) -> None:
    post_events(switch, call_events("early", refer_to=None)[:1])
    clock.shift(timedelta(minutes=2))
    post_events(switch, call_events("late", refer_to=None)[:1])
    late_at = NOW + timedelta(minutes=2)

    def call_ids(moment: Any) -> list[str]:
        response = supervisor.client.get(EVENTS, since(moment))
        return [m["call"]["call_id"] for m in response.json()["messages"]]

    assert call_ids(NOW - timedelta(seconds=10)) == ["early", "late"]
    assert call_ids(late_at - timedelta(seconds=1)) == ["late"]
    # Within the margin: an event stamped before the page's last sync may have committed after it.
    assert call_ids(NOW + live.CATCH_UP_MARGIN - timedelta(seconds=1)) == ["early", "late"]
    assert call_ids(NOW + live.CATCH_UP_MARGIN + timedelta(seconds=1)) == ["late"]


def test_catch_up_says_when_there_was_too_much(
    supervisor: Persona, switch: Client, bot: VirtualAgent, clock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(live, "CATCH_UP_LIMIT", 3)
    post_events(switch, call_events("busy", refer_to=None))
    assert CallEvent.objects.count() == 4
    body = supervisor.client.get(EVENTS, since(NOW)).json()
    assert body["is_truncated"] is True
    assert [m["event"]["type"] for m in body["messages"]] == ["call.started", "bot.connected", "call.ended"]
