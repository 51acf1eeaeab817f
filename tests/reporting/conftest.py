"""Fixtures shared by the reporting tests: events, posting them, a bot, a queue and an agent.

    def test_x(switch, bot, sales):
        response = post_events(switch, [event("call.started", "c1", 0, direction="inbound", ...)])

`event(type, call_id, seconds, **data)` builds one event of the telephony contract at
T0 + seconds with a unique id; `call_events(...)` a whole realistic call.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client

from routing.models import Queue
from tests.conftest import bearer
from tests.factories import make_queue
from virtual_agents import services as va_services
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter

EVENTS_URL = "/api/v1/telephony/events"
T0 = datetime(2026, 5, 1, 9, 30, tzinfo=UTC)
_ids = itertools.count(1)


def at(seconds: float) -> str:
    """T0 + seconds, as RFC 3339 with a Z."""
    return (T0 + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


def event(
    kind: str, call_id: str, seconds: float, *, event_id: str | None = None, **data: Any
) -> dict[str, Any]:
    return {
        "id": event_id or f"evt-{next(_ids)}",
        "type": kind,
        "call_id": call_id,
        "occurred_at": at(seconds),
        "data": data,
    }


def call_events(
    call_id: str,
    *,
    bot: str = "7001",
    refer_to: str | None = "<sip:4323@acme.voiso.com>",
    agent_extension: str | None = "1001",
    start: float = 0,
    outcome: str = "completed",
) -> list[dict[str, Any]]:
    """An inbound call: bot, optionally a handoff (completed or failed) and an agent, end, recording."""
    events = [
        event(
            "call.started",
            call_id,
            start,
            direction="inbound",
            **{"from": "+442079460999", "to": "+442079460018"},
        ),
        event("bot.connected", call_id, start + 1, virtual_agent=bot, provider_call_id=f"prov-{call_id}"),
    ]
    end = start + 60
    if refer_to is not None:
        events += [
            event(
                "handoff.requested",
                call_id,
                start + 30,
                virtual_agent=bot,
                refer_to=refer_to,
                headers={"X-Intent": "billing"},
            ),
            event("handoff.accepted", call_id, start + 30.2, sip_status=202),
        ]
        if outcome == "completed":
            events.append(event("handoff.completed", call_id, start + 31, answered_by="queue"))
            if agent_extension:
                events.append(event("agent.connected", call_id, start + 45, extension=agent_extension))
            end = start + 120
        else:
            events.append(event("handoff.failed", call_id, start + 31, reason="busy", sip_status=486))
    events += [
        event("call.ended", call_id, end, end_reason="normal_clearing", hangup_by="caller"),
        event("recording.ready", call_id, end + 5, url=f"https://rec.example.com/{call_id}.wav"),
    ]
    return events


def post_events(
    client: Client, events: Iterable[dict[str, Any]] | dict[str, Any], key: str | None = None
) -> HttpResponse:
    """POST one event (a dict) or a batch (a list) to the events endpoint."""
    body = events if isinstance(events, dict) else {"events": list(events)}
    headers = bearer(key) if key else {}
    return client.post(EVENTS_URL, body, content_type="application/json", **headers)


@pytest.fixture
def switch(api_keys: dict[str, str]) -> Client:
    """The SIP layer: a client with acme's telephony key."""
    client = Client()
    client.defaults.update(bearer(api_keys["telephony"]))
    return client


def make_bot(
    center: ContactCenter, name: str = "Billing bot", extension: str | None = "7001"
) -> VirtualAgent:
    integration = va_services.create_integration(
        center=center, provider="generic_sip", label=f"House {name}", credentials=None, by="tests"
    )
    return va_services.create_virtual_agent(
        integration=integration,
        by="tests",
        name=name,
        sip_uri=f"sip:{name.lower().replace(' ', '-')}@10.0.0.5",
        extension=extension,
        connect=True,
    )


@pytest.fixture
def bot(acme: ContactCenter) -> VirtualAgent:
    return make_bot(acme)


@pytest.fixture
def sales(acme: ContactCenter) -> Queue:
    return make_queue(acme, name="Sales", extension="4323")
