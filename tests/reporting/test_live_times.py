"""The Live page shows times as every other page does: 24-hour, in the contact center's time zone."""

from __future__ import annotations

import re
from datetime import timedelta

import time_machine
from django.test import Client

from tests.conftest import Persona
from tests.reporting.conftest import T0, call_events, post_events
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter


def test_times_on_the_page_are_the_centers_24_hour_times(
    supervisor: Persona, acme: ContactCenter, switch: Client, bot: VirtualAgent, sales
) -> None:
    acme.timezone = "America/New_York"  # 09:30 UTC on 1 May is 05:30 there
    acme.save(update_fields=["timezone"])
    # A call still with its bot, which has asked for a handoff: started 09:30:20 UTC, REFER at 09:30:50.
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        assert post_events(switch, call_events("call-tz", start=20)[:3]).status_code == 202
        response = supervisor.client.get("/live/")

    html = response.content.decode()
    shown = re.findall(r"<time datetime=\"[^\"]+\">([^<]*)</time>", html)
    assert "05:30:20" in shown  # the call's start
    assert "05:30:50" in shown  # the handoff's request
    assert not {"09:30:20", "09:30:50"} & set(shown)
    # The script formats what arrives later the same way: it is told the zone.
    assert 'data-time-zone="America/New_York"' in html


def test_evening_times_are_not_12_hour(
    supervisor: Persona, acme: ContactCenter, switch: Client, bot, sales
) -> None:
    acme.timezone = "Asia/Tokyo"  # 09:30 UTC is 18:30 there
    acme.save(update_fields=["timezone"])
    with time_machine.travel(T0 + timedelta(minutes=5), tick=False):
        assert post_events(switch, call_events("call-pm", start=20)[:2]).status_code == 202
        html = supervisor.client.get("/live/").content.decode()
    assert ">18:30:20</time>" in html
