"""The Live page in real Chromium: handoffs appear and move on, and a dropped socket catches up.

pytest-django's live_server speaks WSGI only, so this module serves the whole ASGI application
(pages, static files, the events API and /ws/live/) from daphne, in a thread of this process,
against the test database. Events go through the real events API of that server, so the
feed is published the way production publishes it: after the ingest transaction commits.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler

from tests.conftest import Persona
from tests.factories import make_queue
from tests.reporting import webhook_payloads as wp
from tests.reporting.conftest import event, make_bot
from virtual_agents.models import ProviderIntegration
from voiso_byob.models import ContactCenter

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def asgi_url() -> Iterator[str]:
    """daphne serving voiso_byob.asgi (plus static files) on a free port, until the module ends.

    Twisted's reactor runs once per process, hence one server for the module.
    """
    from daphne.server import Server
    from twisted.internet import reactor

    from voiso_byob.asgi import application

    server = Server(
        ASGIStaticFilesHandler(application),
        endpoints=["tcp:port=0:interface=127.0.0.1"],
        signal_handlers=False,
        verbosity=0,
    )
    thread = threading.Thread(target=server.run, name="daphne", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.listening_addresses:
        assert time.monotonic() < deadline, "daphne did not start listening"
        time.sleep(0.05)
    host, port = server.listening_addresses[0]
    yield f"http://{host}:{port}"
    reactor.callFromThread(reactor.stop)
    thread.join(timeout=10)


@pytest.fixture
def scene(acme: ContactCenter, api_keys: dict[str, str]) -> dict[str, Any]:
    bot = make_bot(acme)
    make_queue(acme, name="Sales", extension="4323")
    return {"bot": bot, "key": api_keys["telephony"]}


def post(base: str, key: str, *events: dict[str, Any]) -> None:
    response = httpx.post(
        f"{base}/api/v1/telephony/events",
        json={"events": list(events)},
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert response.status_code == 202, response.text


def now_event(kind: str, call_id: str, **data: Any) -> dict[str, Any]:
    """An event happening now (the page counts the last 15 minutes of real time)."""
    item = event(kind, call_id, 0, **data)
    item["occurred_at"] = datetime.now(UTC).isoformat()
    return item


def test_supervisor_watches_a_handoff_and_the_page_catches_up_after_a_dropped_socket(
    browser_page: Any, asgi_url: str, supervisor: Persona, scene: dict[str, Any]
) -> None:
    page = browser_page
    key = scene["key"]
    page.context.add_cookies(
        [
            {
                "name": settings.SESSION_COOKIE_NAME,
                "value": supervisor.client.cookies[settings.SESSION_COOKIE_NAME].value,
                "url": asgi_url,
            }
        ]
    )
    # Every socket the page opens passes through here, so the test can drop it and keep the
    # page off the server for a while; catch-up requests are held off at the same time.
    sockets: list[Any] = []
    is_blocked = threading.Event()

    def route_socket(ws: Any) -> None:
        if is_blocked.is_set():
            ws.close(code=1013, reason="try again later")
            return
        sockets.append((ws, ws.connect_to_server()))

    page.route_web_socket(re.compile(r"/ws/live/$"), route_socket)

    page.goto(f"{asgi_url}/live/")
    status = page.locator("#live-status")
    page.wait_for_selector('#live-status[data-state="live"]')
    assert status.inner_text() == "Live"
    assert page.locator('[data-counter="reached"]').inner_text() == "0"

    # A caller reaches the bot: the call appears under the bot.
    post(
        asgi_url,
        key,
        now_event(
            "call.started", "web-1", direction="inbound", **{"from": "+442079460555", "to": "+442079460018"}
        ),
        now_event("bot.connected", "web-1", virtual_agent="7001"),
    )
    call_row = page.locator('section[data-agent-id] tr[data-call-id="web-1"]')
    call_row.wait_for()
    assert "+442079460555" in call_row.inner_text()
    assert "Billing bot" in page.locator(f'section[data-agent-id="{scene["bot"].pk}"] h3').inner_text()
    page.wait_for_selector('[data-counter="reached"]:text-is("1")')

    # The bot hands the call to Sales with context: the handoff appears, then moves to accepted.
    post(
        asgi_url,
        key,
        now_event(
            "handoff.requested",
            "web-1",
            virtual_agent="7001",
            refer_to="<sip:4323@acme.voiso.com>",
            headers={"X-Intent": "billing", "X-Customer-Tier": "gold"},
        ),
    )
    handoff = page.locator('tr[data-handoff-key="web-1#1"]')
    handoff.and_(page.locator('[data-state="requested"]')).wait_for()
    text = handoff.inner_text()
    assert "Requested" in text and "Sales" in text and "ext. 4323" in text and "Billing bot" in text
    assert "X-Intent" in text and "billing" in text and "X-Customer-Tier" in text
    page.wait_for_selector('[data-counter="handed_off"]:text-is("1")')

    post(asgi_url, key, now_event("handoff.accepted", "web-1", sip_status=202))
    handoff.and_(page.locator('[data-state="accepted"]')).wait_for()
    assert "Accepted" in handoff.inner_text()

    # The socket drops and the page stays away from the server while the handoff completes.
    is_blocked.set()
    page.route("**/live/events/**", lambda route: route.abort())
    ws, server_side = sockets[-1]
    server_side.close()
    ws.close(code=1012, reason="restarting")
    page.wait_for_selector('#live-status[data-state="reconnecting"]')
    post(asgi_url, key, now_event("handoff.completed", "web-1", answered_by="queue"))
    time.sleep(1.5)  # the event was published while the page had no socket: it must not show yet
    assert handoff.get_attribute("data-state") == "accepted"
    assert page.locator('[data-counter="completed"]').inner_text() == "0"

    # Back again: the page reconnects by itself and catches up, with no row twice.
    connected_before = len(sockets)
    page.unroute("**/live/events/**")
    is_blocked.clear()
    handoff.and_(page.locator('[data-state="completed"]')).wait_for(timeout=40_000)
    page.wait_for_selector('#live-status[data-state="live"]')
    assert len(sockets) == connected_before + 1
    assert "Completed" in handoff.inner_text()
    assert page.locator('[data-counter="completed"]').inner_text() == "1"
    assert page.locator('tr[data-handoff-key="web-1#1"]').count() == 1
    # The bot left the call at the final NOTIFY: still in progress with a person, no longer the bot's.
    assert call_row.count() == 0
    assert page.locator("#live-calls-empty").is_visible()

    # And the new socket carries what follows: another caller reaches the bot, is handed off,
    # and leaves the bot's calls the moment the handoff completes, while the first call ends.
    post(
        asgi_url,
        key,
        now_event(
            "call.started", "web-2", direction="inbound", **{"from": "+442079460556", "to": "+442079460018"}
        ),
        now_event("bot.connected", "web-2", virtual_agent="7001"),
    )
    second_row = page.locator(f'section[data-agent-id="{scene["bot"].pk}"] tr[data-call-id="web-2"]')
    second_row.wait_for()
    assert page.locator('[data-role="count"]').inner_text() == "1 in progress"
    post(
        asgi_url,
        key,
        now_event("handoff.requested", "web-2", virtual_agent="7001", refer_to="<sip:4323@acme.voiso.com>"),
        now_event("handoff.accepted", "web-2", sip_status=202),
    )
    page.locator('tr[data-handoff-key="web-2#1"][data-state="accepted"]').wait_for()
    assert second_row.count() == 1  # ringing the queue: the bot is still on the call
    post(asgi_url, key, now_event("handoff.completed", "web-2", answered_by="queue"))
    second_row.wait_for(state="detached")
    assert page.locator("#live-calls-empty").is_visible()
    post(asgi_url, key, now_event("call.ended", "web-1", end_reason="normal_clearing", hangup_by="agent"))
    assert page.locator('tr[data-handoff-key="web-1#1"]').count() == 1

    # Later the provider's signed post-call webhook brings the bot's summary: it appears under
    # the handoff, beside the X-headers, as text.
    secret = "wsec_browser_live_0123456789abcdef"
    integration = ProviderIntegration.objects.create(
        contact_center=supervisor.center,
        provider="elevenlabs",
        label="ElevenLabs",
        credentials={"api_key": "xi-key", "webhook_secret": secret},
    )
    payload = wp.elevenlabs_transcription("conv-web-1", "web-1")
    payload["data"]["analysis"]["transcript_summary"] = "Wants <b>billing</b>; sent to Sales."
    body = wp.dumps(payload)
    response = httpx.post(
        f"{asgi_url}/api/v1/webhooks/elevenlabs/{integration.pk}/",
        content=body,
        headers={
            "Content-Type": "application/json",
            "ElevenLabs-Signature": wp.elevenlabs_headers(body, secret)["HTTP_ELEVENLABS_SIGNATURE"],
        },
        timeout=10,
    )
    assert response.status_code == 200 and response.json()["matched"] is True, response.text
    summary = handoff.locator('[data-role="summary"]')
    summary.wait_for()
    assert summary.inner_text() == "Wants <b>billing</b>; sent to Sales."
    assert handoff.locator("b").count() == 0
    assert "X-Intent" in handoff.inner_text()
