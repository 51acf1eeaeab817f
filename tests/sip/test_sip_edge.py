"""Real SIP through the edge: Kamailio (configured by `manage.py kamailio_config`) in front, SIPp as
the carrier's caller and as the bot, the portal (gunicorn + daphne, PostgreSQL, Redis) as the brain.

Each call below is real UDP SIP on loopback: the caller's INVITE reaches Kamailio, which asks
/telephony/route and relays it to the SIPp bot (or refuses it with the fitting status); the bot's
REFER reaches Kamailio, which asks /telephony/refer and either refuses it with the API's SIP
status or relays it to the caller with the Refer-To rewritten; the caller answers 202, reports the
outcome in a NOTIFY sipfrag and hangs up. Kamailio reports every step to /telephony/events; the
test reads what was stored and what a supervisor's /ws/live/ socket was sent.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.db import connection

from bench.live_latency import LiveSocket, daphne
from reporting.models import CallEvent, CallRecord, Handoff
from routing.models import Queue
from routing.services import create_flow, create_phone_number, publish_flow
from tests.conftest import Persona
from tests.factories import make_api_key, make_queue
from tests.reporting.conftest import make_bot
from tests.sip.edge import (
    Call,
    CallRun,
    free_tcp_port,
    free_udp_port,
    gunicorn,
    kamailio,
    sip_call,
    slow_api,
    tail,
)
from virtual_agents import services as va_services
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ApiKeyScope, ContactCenter

pytestmark = [
    pytest.mark.sip,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.django_db(transaction=True),
]

CALLER = "+442079460999"
BOT_LINE = "+442079460018"  # straight to the bot
MENU_LINE = "+442079460019"  # a prompt and a menu: needs a media server
CLOSED_LINE = "+442079460020"  # the flow hangs up
QUEUE_LINE = "+442079460021"  # straight to the Sales queue (behind the media server)
UNKNOWN_LINE = "+442079460001"  # not a number of this center
CONTEXT = {"X-Reason": "billing", "X-Customer-Id": "C-1881"}  # the bot's REFER headers (bot_refer*.xml)


def server_env() -> dict[str, str]:
    """This process's environment, with the database URL naming the test database."""
    url = urlparse(os.environ["DATABASE_URL"])._replace(path="/" + connection.settings_dict["NAME"])
    return {**os.environ, "DATABASE_URL": url.geturl(), "DEBUG": "false", "CONN_MAX_AGE": "60"}


def cookie(persona: Persona) -> str:
    return f"{settings.SESSION_COOKIE_NAME}={persona.client.cookies[settings.SESSION_COOKIE_NAME].value}"


def line(center: ContactCenter, number: str, nodes: dict[str, Any]) -> None:
    """`number` answered by a published flow of these nodes after the start node."""
    first = next(iter(nodes))
    graph = {"nodes": {"start": {"type": "start", "config": {}, "next": {"next": first}}, **nodes}}
    flow = create_flow(center=center, by="tests", name=f"Line {number}", graph=graph)
    publish_flow(flow=flow, by="tests")
    create_phone_number(center=center, by="tests", number=number, flow=flow)


def route_to(kind: str, target_id: Any) -> dict[str, Any]:
    return {"type": "route", "config": {"target": {"type": kind, "id": str(target_id)}}, "next": {}}


@contextmanager
def portal(workdir: Path) -> Iterator[tuple[str, int]]:
    """The telephony API under gunicorn and /ws/live/ under daphne, as the README deploys them."""
    env = server_env()
    ws_port = free_tcp_port()
    with gunicorn(free_tcp_port(), env, workdir / "gunicorn.log") as url, daphne(ws_port, env):
        yield url, ws_port


def wait_for_events(center: ContactCenter, call_id: str, count: int, timeout: float = 15) -> list[str]:
    """The types of the call's stored events, once `count` arrived (they are posted asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        types = sorted(
            CallEvent.objects.filter(contact_center=center, call_id=call_id).values_list("type", flat=True)
        )
        if len(types) >= count or time.monotonic() > deadline:
            return types
        time.sleep(0.2)


def play(
    calls: dict[str, Call], *, edge_port: int, bot_port: int, workdir: Path, edge_log: Path
) -> dict[str, CallRun]:
    """Each call in turn (blocking: run it in a thread while an event loop listens)."""
    runs = {}
    for name, call in calls.items():
        runs[name] = run = sip_call(
            workdir=workdir, name=name, call=call, edge_port=edge_port, bot_port=bot_port, caller=CALLER
        )
        problem = run.problem()
        assert problem is None, f"{name}: {problem}\nkamailio: {tail(edge_log)}"
    return runs


@pytest.fixture
def sales(acme: ContactCenter) -> Queue:
    return make_queue(acme, name="Sales", extension="4323")


@pytest.fixture
def bot_port() -> int:
    return free_udp_port()


@pytest.fixture
def bots(acme: ContactCenter, bot_port: int) -> dict[str, VirtualAgent]:
    """The SIPp bot (7001), a disabled bot (7002) and another bot to hand calls to (7003)."""
    sales_bot = make_bot(acme, name="Sales bot", extension="7001")
    va_services.update_virtual_agent(
        agent=sales_bot, by="tests", sip_uri=f"sip:sales-bot@127.0.0.1:{bot_port}"
    )
    night = make_bot(acme, name="Night bot", extension="7002")
    va_services.update_virtual_agent(agent=night, by="tests", is_enabled=False)
    billing = make_bot(acme, name="Billing bot", extension="7003")
    va_services.update_virtual_agent(agent=billing, by="tests", sip_uri="sip:billing-bot@127.0.0.1:5999")
    return {"sales": sales_bot, "night": night, "billing": billing}


def refer(refer_to: str, refer_sub: str = "true") -> dict[str, str]:
    return {"refer_to": refer_to, "refer_sub": f"Refer-Sub: {refer_sub}"}


HANDOFF_CALLS = {
    "blind": Call(
        BOT_LINE,
        "caller_transfer.xml",
        "bot_refer.xml",
        refer("<sip:4323@acme.voiso.com?X-Reason=billing>"),
        {"sipfrag": "200 OK"},
    ),
    "attended": Call(
        BOT_LINE,
        "caller_transfer_nosub.xml",
        "bot_refer.xml",
        refer("<sip:1001@acme.voiso.com?Replaces=abc%40pbx%3Bto-tag%3D1%3Bfrom-tag%3D2>", "false"),
    ),
    "to-bot": Call(
        BOT_LINE,
        "caller_transfer.xml",
        "bot_refer.xml",
        refer("sip:7003@acme.voiso.com"),
        {"sipfrag": "200 OK"},
    ),
    "busy": Call(
        BOT_LINE,
        "caller_transfer.xml",
        "bot_refer.xml",
        refer("<sip:4323@acme.voiso.com>"),
        {"sipfrag": "486 Busy Here"},
    ),
    "foreign": Call(
        BOT_LINE, "caller_bot_hangs_up.xml", "bot_refer_refused.xml", refer("<sip:4323@globex.voiso.com>")
    ),
    "unknown": Call(
        BOT_LINE, "caller_bot_hangs_up.xml", "bot_refer_refused.xml", refer("<sip:5555@acme.voiso.com>")
    ),
    "disabled": Call(
        BOT_LINE, "caller_bot_hangs_up.xml", "bot_refer_refused.xml", refer("<sip:7002@acme.voiso.com>")
    ),
    "abandoned": Call(BOT_LINE, "caller_hangs_up.xml", "bot_answer.xml"),
    "bot-busy": Call(BOT_LINE, "caller_refused.xml", "bot_busy.xml"),
    "cancelled": Call(BOT_LINE, "caller_cancel.xml", "bot_ring.xml"),
    "menu": Call(MENU_LINE, "caller_refused.xml"),
    "closed": Call(CLOSED_LINE, "caller_refused.xml"),
    "stranger": Call(UNKNOWN_LINE, "caller_refused.xml"),
}

EXPECTED_EVENTS = {
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
    "abandoned": ["bot.connected", "call.ended", "call.started"],
    "bot-busy": ["call.ended", "call.started"],
    "cancelled": ["call.ended", "call.started"],
    "menu": ["call.ended", "call.started"],
    "closed": ["call.ended", "call.started"],
    "stranger": [],
}


def test_real_sip_calls_through_kamailio_reach_the_records_the_handoffs_and_the_live_feed(
    acme: ContactCenter,
    supervisor: Persona,
    agent: Persona,  # extension 1001
    sales: Queue,
    bots: dict[str, VirtualAgent],
    bot_port: int,
    tmp_path: Path,
) -> None:
    line(acme, BOT_LINE, {"bot": route_to("virtual_agent", bots["sales"].pk)})
    line(
        acme,
        MENU_LINE,
        {
            "welcome": {"type": "play", "config": {"text": "Welcome."}, "next": {"next": "bot"}},
            "bot": route_to("virtual_agent", bots["sales"].pk),
        },
    )
    line(acme, CLOSED_LINE, {"bye": {"type": "hangup", "config": {}, "next": {}}})
    _, key = make_api_key(acme, ApiKeyScope.TELEPHONY)
    edge_port = free_udp_port()

    async def scenario(api_url: str, ws_port: int) -> tuple[dict[str, CallRun], list[dict[str, Any]]]:
        sock = await LiveSocket.connect("127.0.0.1", ws_port, cookie=cookie(supervisor))
        received: list[dict[str, Any]] = []

        async def listen() -> None:
            while (message := await sock.receive_json(timeout=120)) is not None:
                received.append(message)

        def ended(call_id: str) -> bool:
            return any(
                m["event"]["call_id"] == call_id and m["event"]["type"] == "call.ended"
                for batch in received
                for m in batch.get("messages", [])
            )

        listener = asyncio.create_task(listen())
        try:
            with kamailio(port=edge_port, api_url=api_url, api_key=key, workdir=tmp_path) as edge_log:
                runs = await asyncio.to_thread(
                    play,
                    HANDOFF_CALLS,
                    edge_port=edge_port,
                    bot_port=bot_port,
                    workdir=tmp_path,
                    edge_log=edge_log,
                )
                # The last events are posted asynchronously: let the feed catch up.
                deadline = time.monotonic() + 15
                while time.monotonic() < deadline and not ended(runs["closed"].call_id):
                    await asyncio.sleep(0.2)
        finally:
            listener.cancel()
            await sock.close()
        return runs, received

    with portal(tmp_path) as (api_url, ws_port):
        runs, received = async_to_sync(scenario)(api_url, ws_port)

    call_ids = {name: run.call_id for name, run in runs.items()}
    bot = {name: run.bot for name, run in runs.items()}
    caller = {name: run.caller for name, run in runs.items()}

    # What the SIP parties saw. Accepted REFERs reach the caller with the Refer-To rewritten to the
    # resolved destination (the URI headers the bot put there, Replaces included, kept); refused
    # ones never reach it and the bot gets the API's SIP status.
    assert caller["blind"].received_header("REFER", "Refer-To") == [
        "<sip:4323@acme.voiso.com?X-Reason=billing>"
    ]
    assert caller["attended"].received_header("REFER", "Refer-To") == [
        "<sip:1001@acme.voiso.com?Replaces=abc%40pbx%3Bto-tag%3D1%3Bfrom-tag%3D2>"
    ]
    assert caller["attended"].received_header("REFER", "Refer-Sub") == ["false"]
    assert caller["to-bot"].received_header("REFER", "Refer-To") == ["<sip:billing-bot@127.0.0.1:5999>"]
    for name in ("blind", "attended", "to-bot", "busy"):
        assert bot[name].received_statuses("REFER") == [202], name
        assert caller[name].received_header("REFER", "X-Customer-Id") == ["C-1881"], name
    refused = ("foreign", "unknown", "disabled")
    assert {name: bot[name].received_statuses("REFER") for name in refused} == {
        "foreign": [403],
        "unknown": [404],
        "disabled": [480],
    }
    for name in refused:
        assert caller[name].received_header("REFER", "Refer-To") == [], name
    # Calls the edge refused: the route API's answer as a SIP status.
    assert {
        name: caller[name].received_statuses("INVITE")[-1]
        for name in ("bot-busy", "menu", "closed", "stranger")
    } == {
        "bot-busy": 486,
        "menu": 488,
        "closed": 603,
        "stranger": 404,
    }
    assert caller["cancelled"].received_statuses("INVITE")[-1] == 487
    # The bot answered the NOTIFY late, so the caller sent it again; the outcome is stored once.
    assert caller["blind"].sent_requests("NOTIFY") >= 2

    # What was stored: one record per call, one handoff per REFER, each event once.
    for name, types in EXPECTED_EVENTS.items():
        assert wait_for_events(acme, call_ids[name], len(types)) == types, name
    assert not CallRecord.objects.filter(call_id=call_ids["stranger"]).exists()
    records = {
        name: CallRecord.objects.get(contact_center=acme, call_id=call_ids[name])
        for name in EXPECTED_EVENTS
        if name != "stranger"
    }
    for name, record in records.items():
        assert (record.from_number, record.direction, record.status) == (CALLER, "inbound", "ended"), name
    assert {name: (r.end_reason, r.hangup_by) for name, r in records.items()} == {
        "blind": ("transferred", "caller"),
        "attended": ("completed", "caller"),
        "to-bot": ("transferred", "caller"),
        "busy": ("completed", "caller"),
        "foreign": ("completed", "bot"),
        "unknown": ("completed", "bot"),
        "disabled": ("completed", "bot"),
        "abandoned": ("completed", "caller"),
        "bot-busy": ("busy", "system"),
        "cancelled": ("cancelled", "caller"),
        "menu": ("media_unavailable", "system"),
        "closed": ("flow_hangup", "system"),
    }
    assert (
        records["abandoned"].bot_outcome == "abandoned_in_bot"
    )  # the caller left within BOT_ABANDON_SECONDS
    assert records["abandoned"].virtual_agent_id == bots["sales"].pk
    for name in ("blind", "attended", "to-bot", "busy", *refused):
        record = records[name]
        assert (record.virtual_agent_id, record.bot_outcome, record.handoff_count) == (
            bots["sales"].pk,
            "handed_off",
            1,
        ), name

    handoffs = {
        name: Handoff.objects.get(call_record=records[name])
        for name in ("blind", "attended", "to-bot", "busy", *refused)
    }
    for name, handoff in handoffs.items():
        # The bot's X- headers are the handoff's context; the Refer-To is kept as the bot sent it.
        assert handoff.context == CONTEXT, name
        assert handoff.refer_to == HANDOFF_CALLS[name].bot_keys["refer_to"], name
        assert handoff.referred_by == f"<sip:bot@127.0.0.1:{bot_port}>", name
        assert handoff.virtual_agent_id == bots["sales"].pk, name
    summary = {
        name: (
            h.state,
            h.target_type,
            h.target_ref,
            h.target_extension,
            h.sip_status,
            h.failure_reason,
            h.target_error,
        )
        for name, h in handoffs.items()
    }
    assert summary == {
        "blind": ("completed", "queue", str(sales.pk), "4323", 202, "", ""),
        "attended": ("accepted", "user", str(agent.membership.pk), "1001", 202, "", ""),
        "to-bot": ("completed", "virtual_agent", str(bots["billing"].pk), "7003", 202, "", ""),
        "busy": ("failed", "queue", str(sales.pk), "4323", 486, "transfer_failed", ""),
        "foreign": ("failed", "", "", "", 403, "foreign_domain", "foreign_domain"),
        "unknown": ("failed", "", "", "", 404, "unknown_extension", "unknown_extension"),
        "disabled": ("failed", "", "", "", 480, "target_unavailable", "target_unavailable"),
    }

    # What the supervisor's live socket was sent: every stored event of every call, once.
    seen: dict[str, list[str]] = {}
    for batch in received:
        for message in batch.get("messages", []) if batch.get("type") == "events" else []:
            seen.setdefault(message["event"]["call_id"], []).append(message["event"]["type"])
    for name, types in EXPECTED_EVENTS.items():
        assert sorted(seen.get(call_ids[name], [])) == types, name
    blind_handoff = [
        m["handoff"]
        for batch in received
        for m in batch.get("messages", [])
        if m["event"]["call_id"] == call_ids["blind"] and m["event"]["type"] == "handoff.completed"
    ]
    assert len(blind_handoff) == 1
    assert (blind_handoff[0]["state"], blind_handoff[0]["context"]) == ("completed", CONTEXT)
    assert blind_handoff[0]["target"]["extension"] == "4323"


def test_calls_that_need_media_go_to_the_configured_media_server(
    acme: ContactCenter, sales: Queue, bots: dict[str, VirtualAgent], bot_port: int, tmp_path: Path
) -> None:
    """With --media-server, prompts and our queues are relayed there (the SIPp 'bot' plays it)."""
    line(
        acme,
        MENU_LINE,
        {
            "welcome": {"type": "play", "config": {"text": "Welcome."}, "next": {"next": "bot"}},
            "bot": route_to("virtual_agent", bots["sales"].pk),
        },
    )
    line(acme, QUEUE_LINE, {"sales": route_to("queue", sales.pk)})
    _, key = make_api_key(acme, ApiKeyScope.TELEPHONY)
    edge_port = free_udp_port()
    calls = {
        "menu": Call(MENU_LINE, "caller_hangs_up.xml", "bot_answer.xml"),
        "queue": Call(QUEUE_LINE, "caller_hangs_up.xml", "bot_answer.xml"),
    }
    with portal(tmp_path) as (api_url, _):
        media = f"sip:media@127.0.0.1:{bot_port}"
        with kamailio(
            port=edge_port, api_url=api_url, api_key=key, workdir=tmp_path, media_server=media
        ) as log:
            runs = play(calls, edge_port=edge_port, bot_port=bot_port, workdir=tmp_path, edge_log=log)
            # Events wait in Kamailio's queue for its posters: read them before it stops.
            types = {
                name: wait_for_events(acme, run.call_id, 3 if name == "queue" else 2)
                for name, run in runs.items()
            }

    invites = {name: [m for m in run.bot.received() if m.startswith("INVITE ")] for name, run in runs.items()}
    # The media server gets the call as dialled, with the call's id to ask /telephony/route about it.
    assert invites["menu"][0].startswith(f"INVITE sip:{MENU_LINE}@127.0.0.1:{edge_port} SIP/2.0")
    assert runs["menu"].bot.received_header("INVITE", "X-Voiso-Call-Id") == [runs["menu"].call_id]
    # A queue the flow dialled is the media server's to hold, with the dial's headers.
    assert invites["queue"][0].startswith("INVITE sip:4323@acme.voiso.com SIP/2.0")
    assert runs["queue"].bot.received_header("INVITE", "X-Voiso-Target") == ["queue"]
    assert runs["queue"].bot.received_header("INVITE", "X-Voiso-Target-Id") == [str(sales.pk)]
    assert types == {
        "menu": ["call.ended", "call.started"],
        "queue": ["call.ended", "call.started", "queue.entered"],
    }
    queue_record = CallRecord.objects.get(contact_center=acme, call_id=runs["queue"].call_id)
    assert (queue_record.queue_id, queue_record.end_reason, queue_record.hangup_by) == (
        sales.pk,
        "completed",
        "caller",
    )


BLIND_EVENTS = EXPECTED_EVENTS["blind"]


def transfer_call() -> Call:
    return Call(
        BOT_LINE,
        "caller_transfer.xml",
        "bot_refer.xml",
        refer("<sip:4323@acme.voiso.com>"),
        {"sipfrag": "200 OK"},
    )


def test_a_refer_the_bot_sends_again_while_the_refer_api_is_slow_reaches_the_caller_once(
    acme: ContactCenter, sales: Queue, bots: dict[str, VirtualAgent], bot_port: int, tmp_path: Path
) -> None:
    """The refer API answers after 1 s; the bot resends its REFER after 500 ms (UDP, T1) while the
    edge waits. The REFER's transaction absorbs the copy: the API is asked once, the caller gets
    one REFER (a second one would fail its scenario, which has moved on to its NOTIFY), one handoff."""
    line(acme, BOT_LINE, {"bot": route_to("virtual_agent", bots["sales"].pk)})
    _, key = make_api_key(acme, ApiKeyScope.TELEPHONY)
    edge_port = free_udp_port()
    with (
        portal(tmp_path) as (api_url, _),
        slow_api(api_url, {"/api/v1/telephony/refer": 1.0}) as (slow_url, api),
        kamailio(port=edge_port, api_url=slow_url, api_key=key, workdir=tmp_path) as log,
    ):
        run = play(
            {"resent": transfer_call()},
            edge_port=edge_port,
            bot_port=bot_port,
            workdir=tmp_path,
            edge_log=log,
        )["resent"]
        types = wait_for_events(acme, run.call_id, len(BLIND_EVENTS))

    assert run.bot is not None
    assert run.bot.sent_requests("REFER") >= 2  # the original and at least one retransmission
    assert api.requests["/api/v1/telephony/refer"] == 1
    assert run.caller.received_header("REFER", "Refer-To") == ["<sip:4323@acme.voiso.com>"]
    assert set(run.bot.received_statuses("REFER")) == {202}
    assert types == BLIND_EVENTS
    handoff = Handoff.objects.get(call_record__contact_center=acme, call_record__call_id=run.call_id)
    assert (handoff.state, handoff.target_extension, handoff.sip_status) == ("completed", "4323", 202)


def test_a_slow_events_api_never_holds_up_sip(
    acme: ContactCenter, sales: Queue, bots: dict[str, VirtualAgent], bot_port: int, tmp_path: Path
) -> None:
    """Every events request takes 1 s and one process posts them. Events wait in Kamailio's queue,
    so calls go on as if nothing were slow, and each wake-up posts what has queued as one batch.
    (Handed one by one to an async worker, as the edge once did, 24 events took 24 requests; a
    few hundred waiting filled the socket in front of it and SIP waited for the events API —
    the bench's 50 calls/s, more than this test can place one call at a time.)"""
    line(acme, BOT_LINE, {"bot": route_to("virtual_agent", bots["sales"].pk)})
    _, key = make_api_key(acme, ApiKeyScope.TELEPHONY)
    edge_port = free_udp_port()
    calls = {f"slow-events-{n}": transfer_call() for n in range(4)}
    with (
        portal(tmp_path) as (api_url, _),
        slow_api(api_url, {"/api/v1/telephony/events": 1.0}) as (slow_url, api),
        kamailio(port=edge_port, api_url=slow_url, api_key=key, workdir=tmp_path, event_workers=1) as log,
    ):
        runs = play(calls, edge_port=edge_port, bot_port=bot_port, workdir=tmp_path, edge_log=log)
        types = {
            name: wait_for_events(acme, run.call_id, len(BLIND_EVENTS), timeout=60)
            for name, run in runs.items()
        }

    delays = {name: run.caller.post_dial_delay() for name, run in runs.items()}
    assert all(delay < 0.8 for delay in delays.values()), delays
    assert types == dict.fromkeys(runs, BLIND_EVENTS)
    assert api.most_in_flight["/api/v1/telephony/events"] == 1  # one poster
    assert api.requests["/api/v1/telephony/events"] < len(runs) * len(BLIND_EVENTS)  # batches
