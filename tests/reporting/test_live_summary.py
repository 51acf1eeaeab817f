"""The bot's summary on the Live page: a report.ready message once a provider report is matched
to its call (webhook after the call, or the call after the webhook), after commit, to that
center only; in the catch-up; and on the server-rendered page."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine
from asgiref.sync import async_to_sync
from channels import layers
from channels.layers import get_channel_layer
from django.http import HttpResponse
from django.test import Client
from pytest_django.asserts import assertContains, assertNotContains

from reporting.live import group_name
from reporting.models import CallRecord, ProviderCallReport
from reporting.provider_reports import attach_pending_reports, store_report
from tests.conftest import Persona
from tests.reporting import webhook_payloads as wp
from tests.reporting.conftest import T0, call_events, post_events
from virtual_agents.models import ProviderIntegration, VirtualAgent
from virtual_agents.webhooks import ProviderReport
from voiso_byob.models import ContactCenter

SECRET = "wsec_live_summary_0123456789abcdef"
SUMMARY = "The caller wants to upgrade their plan; the agent transferred them to sales."
NOW = T0 + timedelta(minutes=5)

Feed = Callable[[], list[dict[str, Any]]]


@pytest.fixture(autouse=True)
def in_memory_layer(settings: Any) -> Iterator[None]:
    """One process's layer: `listen()` drains on a new event loop each time, which channels_redis
    refuses (its receive buffer is bound to the first loop). Redis delivery is test_live_redis's."""
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    layers.channel_layers.backends.clear()
    yield
    layers.channel_layers.backends.clear()


@pytest.fixture
def eleven(acme: ContactCenter) -> ProviderIntegration:
    return ProviderIntegration.objects.create(
        contact_center=acme,
        provider="elevenlabs",
        label="ElevenLabs",
        credentials={"api_key": "xi-key", "webhook_secret": SECRET},
    )


@pytest.fixture
def clock() -> Iterator[Any]:
    with time_machine.travel(NOW, tick=False) as traveller:
        yield traveller


def deliver(
    integration: ProviderIntegration,
    conversation_id: str = "conv-1",
    call_id: str | None = "call-1",
    summary: str = SUMMARY,
) -> HttpResponse:
    """A signed ElevenLabs post-call webhook, as the provider sends it."""
    payload = wp.elevenlabs_transcription(conversation_id, call_id)
    payload["data"]["analysis"]["transcript_summary"] = summary
    body = wp.dumps(payload)
    response = Client().post(
        f"/api/v1/webhooks/elevenlabs/{integration.pk}/",
        data=body,
        content_type="application/json",
        **wp.elevenlabs_headers(body, SECRET),
    )
    assert response.status_code == 200, response.content
    return response


def listen(center: ContactCenter) -> Feed:
    """A channel in the center's live group; calling the result drains what it received."""
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(group_name(center.id), channel)

    async def drain() -> list[dict[str, Any]]:
        batches = []
        while True:
            try:
                batches.append(await asyncio.wait_for(layer.receive(channel), timeout=0.2))
            except TimeoutError:
                return [message for batch in batches for message in batch["messages"]]

    return async_to_sync(drain)


def reports_in(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [m for m in messages if m["event"]["type"] == "report.ready"]


def report_of(call_id: str) -> ProviderCallReport:
    return ProviderCallReport.objects.get(call_record__call_id=call_id)


# --- published after commit ---------------------------------------------------------------


def test_a_webhook_after_its_call_publishes_the_summary_once_after_commit(
    acme: ContactCenter,
    globex: ContactCenter,
    switch: Client,
    bot: VirtualAgent,
    sales: Any,
    eleven: ProviderIntegration,
    django_capture_on_commit_callbacks: Any,
) -> None:
    acme_feed, globex_feed = listen(acme), listen(globex)
    with django_capture_on_commit_callbacks(execute=True):
        assert post_events(switch, call_events("call-1")).status_code == 202
    assert reports_in(acme_feed()) == []

    with django_capture_on_commit_callbacks() as callbacks:
        assert deliver(eleven).json()["matched"] is True
    assert acme_feed() == []  # not before the commit
    for callback in callbacks:
        callback()

    report = report_of("call-1")
    assert acme_feed() == [
        {
            "cursor": None,
            "event": {
                "id": f"report:{report.pk}",
                "type": "report.ready",
                "call_id": "call-1",
                "occurred_at": report.received_at.isoformat(),
                "data": {"provider": "elevenlabs"},
            },
            "call": {
                "call_id": "call-1",
                "direction": "inbound",
                "from": "+442079460999",
                "to": "+442079460018",
                "status": "ended",
                "bot_outcome": "handed_off",
                "started_at": T0.isoformat(),
                "ended_at": (T0 + timedelta(seconds=120)).isoformat(),
                "handoff_count": 1,
                "active_virtual_agent": None,  # ended
                "event_count": 8,
            },
            "virtual_agent": {"id": str(bot.pk), "name": "Billing bot", "extension": "7001"},
            "handoff": None,
            "summary": SUMMARY,
        }
    ]
    assert globex_feed() == []

    # The provider re-sends the same report: nothing new to show.
    with django_capture_on_commit_callbacks(execute=True):
        deliver(eleven)
    assert acme_feed() == []


@pytest.mark.parametrize(
    ("conversation_id", "echoed_call_id"),
    [("conv-1", "call-1"), ("prov-call-1", None)],  # by our call id, or by the provider's
    ids=["by-call-id", "by-provider-call-id"],
)
def test_a_webhook_before_its_call_is_published_when_the_events_match_it(
    acme: ContactCenter,
    switch: Client,
    bot: VirtualAgent,
    sales: Any,
    eleven: ProviderIntegration,
    django_capture_on_commit_callbacks: Any,
    conversation_id: str,
    echoed_call_id: str | None,
) -> None:
    feed = listen(acme)
    with django_capture_on_commit_callbacks(execute=True):
        assert deliver(eleven, conversation_id, echoed_call_id).json()["matched"] is False
    assert feed() == []  # an unmatched report has no call to show it on

    with django_capture_on_commit_callbacks(execute=True):
        assert post_events(switch, call_events("call-1")).status_code == 202

    messages = feed()
    assert [m["summary"] for m in reports_in(messages)] == [SUMMARY]
    assert reports_in(messages)[0]["event"]["id"] == f"report:{report_of('call-1').pk}"
    assert len(messages) == len(call_events("x")) + 1  # the events and the summary, once


def test_a_summary_in_a_later_delivery_is_published_when_it_arrives(
    acme: ContactCenter, eleven: ProviderIntegration, django_capture_on_commit_callbacks: Any
) -> None:
    """Retell: `call_ended` (matched, no summary yet), then `call_analyzed` with the summary."""
    CallRecord.objects.create(contact_center=acme, call_id="call-r")
    feed = listen(acme)

    def store(**fields: Any) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            store_report(
                integration=eleven,
                report=ProviderReport(provider_call_id="retell-1", event="call", call_id="call-r", **fields),
            )

    store(ended_reason="call_transfer")
    assert feed() == []
    store(summary="Asked for billing.")
    assert [(m["event"]["id"], m["summary"]) for m in feed()] == [
        (f"report:{report_of('call-r').pk}", "Asked for billing.")
    ]
    store(summary="Asked for billing.")  # re-sent
    assert feed() == []
    store(summary="Asked for billing; transferred.")  # the same event id: the page takes the new text
    assert [m["summary"] for m in feed()] == ["Asked for billing; transferred."]


def test_the_webhooks_second_look_after_commit_publishes_too(
    acme: ContactCenter, eleven: ProviderIntegration, django_capture_on_commit_callbacks: Any
) -> None:
    feed = listen(acme)
    with django_capture_on_commit_callbacks(execute=True):
        stored = store_report(
            integration=eleven, report=ProviderReport("conv-x", "post_call", "call-x", summary="Hi.")
        )
        assert stored.report.call_record_id is None
        # Stands in for ingestion committing the record meanwhile, too early to see the report.
        CallRecord.objects.create(contact_center=acme, call_id="call-x")
    assert [(m["call"]["call_id"], m["summary"]) for m in feed()] == [("call-x", "Hi.")]


def test_ingestions_second_look_after_commit_publishes_too(
    acme: ContactCenter, eleven: ProviderIntegration, django_capture_on_commit_callbacks: Any
) -> None:
    feed = listen(acme)
    record = CallRecord.objects.create(contact_center=acme, call_id="call-race")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert attach_pending_reports([record]) == 0
        # Stands in for a webhook committed by another worker before this transaction commits.
        ProviderCallReport.objects.create(
            contact_center=acme,
            integration=eleven,
            provider="elevenlabs",
            provider_call_id="c",
            call_id="call-race",
            summary="Raced.",
        )
    assert len(callbacks) == 1
    assert [(m["call"]["call_id"], m["summary"]) for m in feed()] == [("call-race", "Raced.")]


def test_a_matched_report_without_a_summary_publishes_nothing(
    acme: ContactCenter, eleven: ProviderIntegration, django_capture_on_commit_callbacks: Any
) -> None:
    record = CallRecord.objects.create(contact_center=acme, call_id="call-n")
    feed = listen(acme)
    with django_capture_on_commit_callbacks(execute=True):
        store_report(integration=eleven, report=ProviderReport("conv-n", "post_call", "call-n"))
        attach_pending_reports([record])
    assert report_of("call-n").call_record == record
    assert feed() == []


# --- catch-up -----------------------------------------------------------------------------


def test_catch_up_returns_the_summary_once_after_the_events(
    supervisor: Persona,
    outsider: Persona,
    switch: Client,
    bot: VirtualAgent,
    sales: Any,
    eleven: ProviderIntegration,
    clock: Any,
    django_capture_on_commit_callbacks: Any,
) -> None:
    assert post_events(switch, call_events("call-1")).status_code == 202
    feed = listen(supervisor.center)
    with django_capture_on_commit_callbacks(execute=True):
        deliver(eleven)
    published = feed()

    body = supervisor.client.get("/live/events/", {"since": (NOW - timedelta(seconds=1)).isoformat()}).json()

    assert len(published) == 1
    assert reports_in(body["messages"]) == json.loads(json.dumps(published))
    assert body["messages"][-1]["event"]["type"] == "report.ready"  # after the call's events
    assert len(body["messages"]) == len(call_events("x")) + 1
    # Another center's supervisor never gets it.
    other = outsider.client.get("/live/events/", {"since": (NOW - timedelta(seconds=1)).isoformat()})
    assert other.json()["messages"] == []
    # A page synced after the match (and its margin) gets nothing again.
    clock.shift(timedelta(minutes=2))
    later = supervisor.client.get("/live/events/", {"since": (NOW + timedelta(minutes=1)).isoformat()})
    assert later.json()["messages"] == []


# --- the page -----------------------------------------------------------------------------


def test_the_page_shows_summaries_under_handoffs_and_calls_in_progress(
    supervisor: Persona,
    outsider: Persona,
    switch: Client,
    bot: VirtualAgent,
    sales: Any,
    eleven: ProviderIntegration,
    clock: Any,
    django_assert_max_num_queries: Any,
) -> None:
    assert post_events(switch, call_events("call-1")).status_code == 202
    assert post_events(switch, call_events("call-live", start=20, refer_to=None)[:2]).status_code == 202
    assert post_events(switch, call_events("call-plain", start=30)).status_code == 202
    deliver(eleven)
    deliver(eleven, "conv-live", "call-live", summary="Still talking <b>about</b> billing.")

    supervisor.client.get("/live/")  # session and membership caches warm up
    with django_assert_max_num_queries(12):
        response = supervisor.client.get("/live/")

    html = response.content.decode()
    row = html[html.index('data-handoff-key="call-1#1"') :].split("</tr>", 1)[0]
    assert "<dt>X-Intent</dt><dd>billing</dd>" in row  # the X-headers, then the summary
    assert f'<p class="summary" data-role="summary">{SUMMARY}</p>' in row
    plain = html[html.index('data-handoff-key="call-plain#1"') :].split("</tr>", 1)[0]
    assert 'data-role="summary"' not in plain
    summary_row = html[html.index('data-summary-for="call-live"') :].split("</tr>", 1)[0]
    assert "Still talking &lt;b&gt;about&lt;/b&gt; billing." in summary_row  # text, never markup
    assertNotContains(response, "<b>about</b>")

    state = json.loads(
        html.split('<script id="live-state" type="application/json">', 1)[1].split("</script>")[0]
    )
    summaries = {
        m["call"]["call_id"]: m["summary"] for m in reports_in([m for m in state["messages"] if "event" in m])
    }
    assert summaries == {"call-1": SUMMARY, "call-live": "Still talking <b>about</b> billing."}

    other = outsider.client.get("/live/")
    assertNotContains(other, "upgrade their plan")
    assertContains(other, "Live")
