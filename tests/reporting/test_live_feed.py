"""End to end: an event posted to the events API reaches the sockets of its center, after commit;
with the channel layer down the API still stores it."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels import layers
from django.test import Client

from reporting.ingest import feed_sender
from reporting.models import CallEvent, CallRecord, Handoff
from tests.conftest import Persona
from tests.reporting.conftest import call_events, make_bot, post_events
from tests.reporting.test_live_consumer import open_socket, redis_down  # noqa: F401 (fixture)
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_posted_event_arrives_on_the_centers_sockets_only(
    supervisor: Persona,
    outsider: Persona,
    switch: Client,
    bot: VirtualAgent,
    sales: Any,
    globex: ContactCenter,
) -> None:
    events = call_events("e2e-1")[:3]  # started, bot connected, handoff requested

    async def scenario() -> tuple[dict[str, Any], bool]:
        acme_socket = await open_socket(supervisor.client)
        globex_socket = await open_socket(outsider.client)
        try:
            response = await sync_to_async(post_events)(switch, events)
            assert response.status_code == 202
            received = await acme_socket.receive_json_from(timeout=3)
            return received, await globex_socket.receive_nothing(timeout=0.3)
        finally:
            await acme_socket.disconnect()
            await globex_socket.disconnect()

    received, globex_got_nothing = async_to_sync(scenario)()

    assert globex_got_nothing
    assert received["type"] == "events"
    messages = received["messages"]
    assert [m["event"]["id"] for m in messages] == [e["id"] for e in events]
    stored = dict(CallEvent.objects.filter(call_id="e2e-1").values_list("event_id", "pk"))
    assert [m["cursor"] for m in messages] == [stored[e["id"]] for e in events]
    requested = messages[-1]
    assert requested["call"]["from"] == "+442079460999"
    assert requested["virtual_agent"] == {"id": str(bot.pk), "name": "Billing bot", "extension": "7001"}
    assert requested["handoff"]["state"] == "requested"
    assert requested["handoff"]["context"] == {"X-Intent": "billing"}
    assert requested["handoff"]["target"]["name"] == "Sales"


def test_a_rejected_batch_sends_nothing(supervisor: Persona, switch: Client, bot: VirtualAgent) -> None:
    events = call_events("e2e-2")[:2]
    events[1]["type"] = "bot.exploded"

    async def scenario() -> bool:
        sock = await open_socket(supervisor.client)
        try:
            response = await sync_to_async(post_events)(switch, events)
            assert response.status_code == 400
            return await sock.receive_nothing(timeout=0.3)
        finally:
            await sock.disconnect()

    assert async_to_sync(scenario)() is True
    assert not CallEvent.objects.filter(call_id="e2e-2").exists()


def test_a_resent_event_is_not_broadcast_again(
    supervisor: Persona, switch: Client, bot: VirtualAgent
) -> None:
    events = call_events("e2e-3")[:2]

    async def scenario() -> tuple[int, bool]:
        sock = await open_socket(supervisor.client)
        try:
            assert (await sync_to_async(post_events)(switch, events)).status_code == 202
            first = await sock.receive_json_from(timeout=3)
            response = await sync_to_async(post_events)(switch, events)
            assert response.json() == {"accepted": 0, "duplicates": 2}
            return len(first["messages"]), await sock.receive_nothing(timeout=0.3)
        finally:
            await sock.disconnect()

    assert async_to_sync(scenario)() == (2, True)


@pytest.mark.usefixtures("redis_down")
def test_with_the_channel_layer_down_events_are_still_accepted_and_stored(
    acme: ContactCenter, switch: Client, caplog: pytest.LogCaptureFixture
) -> None:
    make_bot(acme)
    assert type(layers.get_channel_layer()).__name__ == "RedisChannelLayer"
    with caplog.at_level(logging.WARNING, logger="reporting.live"):
        response = post_events(switch, call_events("e2e-down"))

    assert response.status_code == 202
    assert response.json()["accepted"] == len(call_events("x"))
    assert CallEvent.objects.filter(call_id="e2e-down").count() == len(call_events("x"))
    record = CallRecord.objects.get(call_id="e2e-down")
    assert record.status == "ended" and record.handoff_count == 1
    assert Handoff.objects.get(call_record=record).state == "completed"
    assert feed_sender.flush()  # the request queued the messages; the sender's loop tried and logged
    # One line for the outage (voiso_byob.cache), not one per send.
    assert "shared cache (Redis) unavailable: live feed: 8 message(s) not published" in caplog.text
