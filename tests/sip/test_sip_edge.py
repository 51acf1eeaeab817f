"""Real SIP through the edge: Kamailio (configured by `manage.py kamailio_config`) in front, SIPp as
the carrier's caller and as the bot, the portal (gunicorn + daphne, PostgreSQL, Redis) as the brain.

Each call below is real UDP SIP on loopback: the caller's INVITE reaches Kamailio, which asks
/telephony/route and relays it to the SIPp bot; the bot's REFER reaches Kamailio, which asks
/telephony/refer and either refuses it with the API's SIP status or relays it to the caller with
the Refer-To rewritten; the caller answers 202, reports the outcome in a NOTIFY sipfrag and hangs
up. Kamailio reports every step to /telephony/events; the test reads what was stored and what a
supervisor's /ws/live/ socket was sent.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection

from bench.live_latency import LiveSocket, daphne
from reporting.models import CallEvent, CallRecord, Handoff
from routing.services import create_flow, create_phone_number, publish_flow
from tests.conftest import Persona
from tests.factories import make_api_key, make_queue
from tests.reporting.conftest import make_bot
from tests.sip.edge import free_tcp_port, free_udp_port, gunicorn, kamailio, sip_call, tail
from virtual_agents import services as va_services
from voiso_byob.models import ApiKeyScope, ContactCenter

pytestmark = [
    pytest.mark.sip,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

NUMBER = "+442079460018"
CALLER = "+442079460999"


def server_env() -> dict[str, str]:
    """This process's environment, with the database URL naming the test database."""
    url = urlparse(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"])
    return {**os.environ, "DATABASE_URL": url.geturl(), "DEBUG": "false", "CONN_MAX_AGE": "60"}


def cookie(persona: Persona) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={persona.client.cookies[settings.SESSION_COOKIE_NAME].value}"


def straight_to_bot(center: ContactCenter, bot_id: str) -> None:
    """NUMBER's published flow: the call goes to the bot (no prompt: no media server needed)."""
    graph = {
        "nodes": {
            "start": {"type": "start", "config": {}, "next": {"next": "bot"}},
            "bot": {
                "type": "route",
                "config": {"target": {"type": "virtual_agent", "id": bot_id}},
                "next": {},
            },
        }
    }
    flow = create_flow(center=center, by="tests", name="Straight to the bot", graph=graph)
    publish_flow(flow=flow, by="tests")
    create_phone_number(center=center, by="tests", number=NUMBER, flow=flow)


def wait_for_events(center: ContactCenter, call_id: str, count: int, timeout: float = 15) -> list[str]:
    """The types of the call's stored events, once `count` arrived (they are posted asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        types = list(
            CallEvent.objects.filter(contact_center=center, call_id=call_id).values_list("type", flat=True)
        )
        if len(types) >= count or time.monotonic() > deadline:
            return sorted(types)
        time.sleep(0.2)


# (name, bot scenario, bot keys, caller scenario, caller keys)
CALLS: list[tuple[str, str, dict[str, str], str, dict[str, str]]] = [
    (
        "blind",
        "bot_refer.xml",
        {"refer_to": "<sip:4323@acme.voiso.com?X-Reason=billing>", "refer_sub": "Refer-Sub: true"},
        "caller_transfer.xml",
        {"sipfrag": "200 OK"},
    ),
    (
        "attended",
        "bot_refer.xml",
        {
            "refer_to": "<sip:1001@acme.voiso.com?Replaces=abc%40pbx%3Bto-tag%3D1%3Bfrom-tag%3D2>",
            "refer_sub": "Refer-Sub: false",
        },
        "caller_transfer_nosub.xml",
        {},
    ),
    (
        "to-bot",
        "bot_refer.xml",
        {"refer_to": "sip:7003@acme.voiso.com", "refer_sub": "Refer-Sub: true"},
        "caller_transfer.xml",
        {"sipfrag": "200 OK"},
    ),
    (
        "busy",
        "bot_refer.xml",
        {"refer_to": "<sip:4323@acme.voiso.com>", "refer_sub": "Refer-Sub: true"},
        "caller_transfer.xml",
        {"sipfrag": "486 Busy Here"},
    ),
    (
        "foreign",
        "bot_refer_refused.xml",
        {"refer_to": "<sip:4323@globex.voiso.com>", "refer_sub": "Refer-Sub: true"},
        "caller_bot_hangs_up.xml",
        {},
    ),
    (
        "unknown",
        "bot_refer_refused.xml",
        {"refer_to": "<sip:5555@acme.voiso.com>", "refer_sub": "Refer-Sub: true"},
        "caller_bot_hangs_up.xml",
        {},
    ),
    (
        "disabled",
        "bot_refer_refused.xml",
        {"refer_to": "<sip:7002@acme.voiso.com>", "refer_sub": "Refer-Sub: true"},
        "caller_bot_hangs_up.xml",
        {},
    ),
]


def test_real_sip_calls_through_kamailio_reach_the_records_and_the_live_feed(
    acme: ContactCenter, supervisor: Persona, agent: Persona, tmp_path: Path
) -> None:
    bot_port, edge_port = free_udp_port(), free_udp_port()
    bot = make_bot(acme, name="Sales bot", extension="7001")
    va_services.update_virtual_agent(agent=bot, by="tests", sip_uri=f"sip:sales-bot@127.0.0.1:{bot_port}")
    disabled = make_bot(acme, name="Night bot", extension="7002")
    va_services.update_virtual_agent(agent=disabled, by="tests", is_enabled=False)
    other = make_bot(acme, name="Billing bot", extension="7003")
    va_services.update_virtual_agent(agent=other, by="tests", sip_uri="sip:billing-bot@127.0.0.1:5999")
    sales = make_queue(acme, name="Sales", extension="4323")
    straight_to_bot(acme, str(bot.pk))
    _, key = make_api_key(acme, ApiKeyScope.TELEPHONY)
    env = server_env()
    ws_port = free_tcp_port()
    runs: dict[str, tuple[str, Any, Any]] = {}

    async def scenario(api_url: str) -> list[dict[str, Any]]:
        sock = await LiveSocket.connect("127.0.0.1", ws_port, cookie=cookie(supervisor))
        received: list[dict[str, Any]] = []

        async def listen() -> None:
            while True:
                message = await sock.receive_json(timeout=60)
                if message is None:
                    return
                received.append(message)

        listener = asyncio.create_task(listen())
        try:
            with kamailio(port=edge_port, api_url=api_url, api_key=key, workdir=tmp_path) as edge_log:
                for name, bot_scenario, bot_keys, caller_scenario, caller_keys in CALLS:
                    runs[name] = await asyncio.to_thread(
                        sip_call,
                        workdir=tmp_path,
                        name=name,
                        edge_port=edge_port,
                        number=NUMBER,
                        caller=CALLER,
                        bot_port=bot_port,
                        bot_scenario=bot_scenario,
                        caller_scenario=caller_scenario,
                        bot_keys=bot_keys,
                        caller_keys=caller_keys,
                    )
                    _, bot_run, caller_run = runs[name]
                    assert bot_run.returncode == 0 and caller_run.returncode == 0, (
                        f"{name}: bot {bot_run.returncode}, caller {caller_run.returncode}\n"
                        f"bot: {bot_run.output[-1500:]}\ncaller: {caller_run.output[-1500:]}\n"
                        f"kamailio: {tail(edge_log)}"
                    )
                # The last events are posted asynchronously: let the feed catch up.
                deadline = time.monotonic() + 15
                last_call = runs[CALLS[-1][0]][0]
                while time.monotonic() < deadline and not any(
                    m["event"]["call_id"] == last_call and m["event"]["type"] == "call.ended"
                    for batch in received
                    for m in batch.get("messages", [])
                ):
                    await asyncio.sleep(0.2)
        finally:
            listener.cancel()
            await sock.close()
        return received

    with gunicorn(free_tcp_port(), env, tmp_path / "gunicorn.log") as api_url, daphne(ws_port, env):
        received = async_to_sync(scenario)(api_url)

    call_ids = {name: run[0] for name, run in runs.items()}
    bot_runs = {name: run[1] for name, run in runs.items()}
    caller_runs = {name: run[2] for name, run in runs.items()}

    # What the SIP parties saw. Accepted REFERs reach the caller with the Refer-To rewritten to the
    # resolved destination (the URI headers the bot put there kept); refused ones never reach it and
    # the bot gets the API's SIP status.
    assert caller_runs["blind"].received_header("REFER", "Refer-To") == [
        "<sip:4323@acme.voiso.com?X-Reason=billing>"
    ]
    assert caller_runs["attended"].received_header("REFER", "Refer-To") == [
        "<sip:1001@acme.voiso.com?Replaces=abc%40pbx%3Bto-tag%3D1%3Bfrom-tag%3D2>"
    ]
    assert caller_runs["attended"].received_header("REFER", "Refer-Sub") == ["false"]
    assert caller_runs["to-bot"].received_header("REFER", "Refer-To") == ["<sip:billing-bot@127.0.0.1:5999>"]
    for name in ("blind", "attended", "to-bot", "busy"):
        assert bot_runs[name].received_statuses("REFER") == [202], name
        assert caller_runs[name].received_header("REFER", "X-Customer-Id") == ["C-1881"], name
    assert {
        name: bot_runs[name].received_statuses("REFER") for name in ("foreign", "unknown", "disabled")
    } == {
        "foreign": [403],
        "unknown": [404],
        "disabled": [480],
    }
    for name in ("foreign", "unknown", "disabled"):
        assert caller_runs[name].received_header("REFER", "Refer-To") == [], name

    # What was stored: one record per call, one handoff per REFER, events counted once.
    expected_events = {
        "blind": [
            "bot.connected",
            "call.ended",
            "call.started",
            "handoff.accepted",
            "handoff.completed",
            "handoff.requested",
        ],
        "attended": ["bot.connected", "call.ended", "call.started", "handoff.accepted", "handoff.requested"],
        "to-bot": [
            "bot.connected",
            "call.ended",
            "call.started",
            "handoff.accepted",
            "handoff.completed",
            "handoff.requested",
        ],
        "busy": [
            "bot.connected",
            "call.ended",
            "call.started",
            "handoff.accepted",
            "handoff.failed",
            "handoff.requested",
        ],
        "foreign": ["bot.connected", "call.ended", "call.started", "handoff.failed", "handoff.requested"],
        "unknown": ["bot.connected", "call.ended", "call.started", "handoff.failed", "handoff.requested"],
        "disabled": ["bot.connected", "call.ended", "call.started", "handoff.failed", "handoff.requested"],
    }
    for name, types in expected_events.items():
        assert wait_for_events(acme, call_ids[name], len(types)) == types, name

    records = {
        name: CallRecord.objects.get(contact_center=acme, call_id=call_id)
        for name, call_id in call_ids.items()
    }
    for name, record in records.items():
        assert (record.from_number, record.to_number, record.direction) == (CALLER, NUMBER, "inbound"), name
        assert record.virtual_agent_id == bot.pk, name
        assert record.status == "ended" and record.bot_outcome == "handed_off", name
        assert record.handoff_count == 1, name
    assert (records["blind"].end_reason, records["blind"].hangup_by) == ("transferred", "caller")
    assert (records["busy"].end_reason, records["busy"].hangup_by) == ("completed", "caller")
    assert (records["foreign"].end_reason, records["foreign"].hangup_by) == ("completed", "bot")

    handoffs = {name: Handoff.objects.get(call_record=record) for name, record in records.items()}
    blind = handoffs["blind"]
    assert (blind.state, blind.target_type, blind.target_ref, blind.target_extension, blind.sip_status) == (
        "completed",
        "queue",
        str(sales.pk),
        "4323",
        202,
    )
    assert blind.refer_to == "<sip:4323@acme.voiso.com?X-Reason=billing>"
    assert blind.context == {"X-Reason": "billing", "X-Customer-Id": "C-1881"}
    assert blind.referred_by == f"<sip:bot@127.0.0.1:{bot_port}>"
    attended = handoffs["attended"]
    assert (attended.state, attended.target_type, attended.target_extension, attended.sip_status) == (
        "accepted",
        "user",
        "1001",
        202,
    )
    assert (handoffs["to-bot"].state, handoffs["to-bot"].target_type, handoffs["to-bot"].target_ref) == (
        "completed",
        "virtual_agent",
        str(other.pk),
    )
    busy = handoffs["busy"]
    assert (busy.state, busy.sip_status, busy.failure_reason) == ("failed", 486, "transfer_failed")
    refused = {name: handoffs[name] for name in ("foreign", "unknown", "disabled")}
    assert {
        name: (h.state, h.sip_status, h.failure_reason, h.target_error) for name, h in refused.items()
    } == {
        "foreign": ("failed", 403, "foreign_domain", "foreign_domain"),
        "unknown": ("failed", 404, "unknown_extension", "unknown_extension"),
        "disabled": ("failed", 480, "target_unavailable", "target_unavailable"),
    }
    for name, handoff in handoffs.items():
        assert handoff.context == {"X-Reason": "billing", "X-Customer-Id": "C-1881"}, name

    # What the supervisor's live socket was sent: every stored event of every call, once.
    seen: dict[str, list[str]] = {}
    for batch in received:
        for message in batch.get("messages", []) if batch.get("type") == "events" else []:
            seen.setdefault(message["event"]["call_id"], []).append(message["event"]["type"])
    for name, types in expected_events.items():
        assert sorted(seen.get(call_ids[name], [])) == types, name
    handoff_messages = [
        m
        for batch in received
        for m in batch.get("messages", [])
        if m["event"]["call_id"] == call_ids["blind"] and m["handoff"]
    ]
    assert handoff_messages and handoff_messages[-1]["handoff"]["state"] == "completed"
