"""A supervisor filters the calls list in the browser, pages on, and opens a call's page."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from django.core.management import call_command

from reporting.models import BotOutcome, Direction, HandoffState, TargetType
from reporting.queries import PAGE_SIZE
from tests.browser.conftest import snap
from tests.conftest import Persona
from tests.factories import PASSWORD, make_api_key, make_queue
from tests.reporting.factories import T0, make_bot, make_call, make_event, make_handoff, make_report
from voiso_byob.management.commands.seed_demo import DEMO_NUMBER, DEMO_PASSWORD, SUPERVISOR_EMAIL
from voiso_byob.models import ApiKeyScope, ContactCenter

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_supervisor_filters_calls_and_opens_one(browser_page, supervisor: Persona) -> None:
    center = supervisor.center
    bot = make_bot(center, "Billing bot")
    queue = make_queue(center, "Billing queue")
    for i in range(PAGE_SIZE + 2):
        make_call(
            center,
            call_id=f"routine-{i}",
            started_at=T0 + timedelta(minutes=i),
            bot_outcome=BotOutcome.CONTAINED,
        )
    make_call(
        center, call_id="dialer-1", direction=Direction.OUTBOUND, to_number="+15554440001", started_at=T0
    )
    record = make_call(
        center,
        call_id="dispute@pbx.example",
        from_number="+15558675309",
        virtual_agent=bot,
        queue=queue,
        started_at=T0 + timedelta(hours=3),
        recording_url="https://recordings.example/dispute.wav",
    )
    make_handoff(
        record,
        virtual_agent=bot,
        refer_to=f"sip:{queue.extension.digits}@acme.voiso.com",
        context={"X-Intent": "billing_dispute"},
        target_type=TargetType.QUEUE,
        target_name="Billing queue",
        state=HandoffState.COMPLETED,
        requested_at=T0 + timedelta(hours=3, seconds=40),
        completed_at=T0 + timedelta(hours=3, seconds=42),
    )
    make_event(center, record.call_id, "call.started", record.started_at, direction="inbound")
    make_event(
        center,
        record.call_id,
        "handoff.requested",
        record.started_at + timedelta(seconds=40),
        refer_to="sip:x",
    )
    make_report(
        record,
        summary="Disputes a double charge.",
        transcript=[{"role": "user", "text": "I was charged twice"}],
    )

    page = browser_page
    page.goto("/accounts/login/")
    page.fill("input[name=username]", supervisor.user.email)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.click("nav.mainnav >> text=Calls")
    page.wait_for_url("**/calls/")
    rows = page.locator("#list tbody tr")
    assert rows.count() == PAGE_SIZE
    assert "dispute@pbx.example" not in rows.first.inner_text()  # the link text is the start time
    snap(page, "calls-list")

    # Filtering swaps the list in place (htmx) and keeps the filter in the address.
    page.select_option("select[name=direction]", "outbound")
    page.wait_for_url("**/calls/?*direction=outbound*")
    page.wait_for_function("() => document.querySelectorAll('#list tbody tr').length === 1")
    assert "+15554440001" in rows.first.inner_text()

    page.select_option("select[name=direction]", "")
    page.fill("input[name=number]", "867 5309")
    page.wait_for_url("**number=867*")
    page.wait_for_function("() => document.querySelectorAll('#list tbody tr').length === 1")
    assert "Billing bot" in rows.first.inner_text() and "Billing queue" in rows.first.inner_text()
    snap(page, "calls-filtered")

    # A range that ends before it starts is refused (400) and says why, in place of the list.
    page.fill("input[name=date_from]", "2025-03-15")
    page.fill("input[name=date_to]", "2025-03-14")
    page.wait_for_selector("#list .form-errors")
    assert "The end date is before the start date." in page.locator("#list").inner_text()
    page.fill("input[name=date_from]", "")
    page.fill("input[name=date_to]", "")
    page.wait_for_selector("#list table")

    # Back to all calls: the next page continues where the first ended.
    page.fill("input[name=number]", "")
    page.wait_for_function(f"() => document.querySelectorAll('#list tbody tr').length === {PAGE_SIZE}")
    page.click("text=Older calls →")
    page.wait_for_url("**after=*")
    page.wait_for_function("() => document.querySelectorAll('#list tbody tr').length === 4")
    assert "+15554440001" in page.locator("#list").inner_text()
    page.click("text=← Newest calls")
    page.wait_for_function(f"() => document.querySelectorAll('#list tbody tr').length === {PAGE_SIZE}")

    # Open the handed-off call.
    page.click("#list tbody tr:first-child a")
    page.wait_for_url("**/calls/dispute@pbx.example/")
    assert "Call dispute@pbx.example" in page.locator("h1").inner_text()
    assert page.locator("audio[controls]").get_attribute("src") == "https://recordings.example/dispute.wav"
    handoffs = page.locator("section", has_text="Handoffs").inner_text()
    assert "Completed" in handoffs and "billing_dispute" in handoffs and "Billing queue" in handoffs
    assert "I was charged twice" in page.locator(".transcript").inner_text()
    assert "Disputes a double charge." in page.locator(".summary").inner_text()
    timeline = page.locator("table.timeline tbody tr")
    assert timeline.count() == 2
    assert "call.started" in timeline.nth(0).inner_text() and "+40.0 s" in timeline.nth(1).inner_text()
    snap(page, "call-detail")


def test_a_caller_the_flow_sends_straight_to_a_queue_is_listed_under_that_queue(
    browser_page, live_server, transactional_db
) -> None:
    """The demo's 'press 3 for billing', as a switch plays it over HTTP: the route answer dials the
    Billing queue, the switch reports entering it (echoing the dial's X-Voiso-Target-Id), an agent
    answers. No bot, no REFER; the Calls page lists the call under Billing."""
    call_command("seed_demo", stdout=io.StringIO())
    center = ContactCenter.objects.get(slug="acme")
    key = make_api_key(center, ApiKeyScope.TELEPHONY)[1]
    switch = httpx.Client(base_url=live_server.url, headers={"Authorization": f"Bearer {key}"}, timeout=10)
    call = {"call_id": "press-3@pbx.example", "to": DEMO_NUMBER, "from": "+447700900123"}
    assert switch.post("/api/v1/telephony/route", json=call).status_code == 200  # the menu
    answer = switch.post("/api/v1/telephony/route", json={**call, "digits": "3"}).json()
    [dial] = [i for i in answer["instructions"] if i["verb"] == "dial"]
    assert dial["headers"]["X-Voiso-Target"] == "queue"
    started = datetime.now(UTC) - timedelta(minutes=3)

    def happened(kind: str, seconds: float, **data: Any) -> dict[str, Any]:
        moment = (started + timedelta(seconds=seconds)).isoformat()
        return {
            "id": f"{kind}-1",
            "type": kind,
            "call_id": call["call_id"],
            "occurred_at": moment,
            "data": data,
        }

    events = [
        happened("call.started", 0, direction="inbound", **{"from": call["from"], "to": DEMO_NUMBER}),
        happened("queue.entered", 9, queue=dial["headers"]["X-Voiso-Target-Id"]),
        happened("agent.connected", 41, extension="1001"),
        happened("call.ended", 161, end_reason="normal_clearing", hangup_by="caller"),
    ]
    response = switch.post("/api/v1/telephony/events", json={"events": events})
    assert response.status_code == 202, response.text

    page = browser_page
    page.goto("/accounts/login/")
    page.fill("input[name=username]", SUPERVISOR_EMAIL)
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/")
    page.goto("/calls/")
    row = page.locator("#list tbody tr", has_text="+447700900123")
    cells = [text.strip() for text in row.locator("td").all_inner_texts()]
    header = [text.strip() for text in page.locator("#list thead th").all_inner_texts()]
    shown = dict(zip(header, cells, strict=True))
    assert (shown["Virtual agent"], shown["Handoffs"], shown["Queue"], shown["Answered by"]) == (
        "—",
        "0",
        "Billing",
        "Ana Duarte",
    )
    snap(page, "calls-direct-to-queue")

    # The queue filter counts it as Billing's call, and as no other queue's.
    page.select_option("select[name=queue]", label="Billing (4500)")
    page.wait_for_url("**queue=*")
    page.wait_for_function("() => document.querySelectorAll('#list tbody tr a').length === 1")
    assert "+447700900123" in page.locator("#list tbody tr").first.inner_text()
    page.select_option("select[name=queue]", label="Sales (4323)")
    page.wait_for_function("() => document.querySelectorAll('#list tbody tr a').length === 0")

    # Its page says so too, with the time it waited in the queue.
    page.goto(f"/calls/{call['call_id']}/")
    details = page.locator("dl").first.inner_text()
    assert "Queue\nBilling" in details and "queue wait 0:32" in details, details
    assert "queue.entered" in page.locator("table", has_text="call.started").inner_text()
