"""The demo administrator builds a menu flow in the browser, publishes it, runs a test call and
attaches a number to it; the supervisor sees it read-only and can run a test call too."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from routing.models import Flow, FlowVersionState, PhoneNumber
from tests.browser.conftest import snap
from tests.browser.test_portal import log_in
from voiso_byob.management.commands.seed_demo import ADMIN_EMAIL, SUPERVISOR_EMAIL

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def add_node(page, kind: str, *, node_id: str, connect_from: str, label: str = "") -> None:
    if page.locator("#panel >> text=Close").count():
        page.click("#panel >> text=Close")
    page.click("text=Add a node")
    page.check(f"input[name=type][value={kind}]")
    if label:
        page.fill("#panel input[name=label]", label)
    page.select_option("select[name=connect_from]", connect_from)
    page.click("button:has-text('Add node')")
    page.wait_for_selector(f"#panel h2:text-is('{node_id}')")
    assert page.url.endswith(f"/nodes/{node_id}/")  # htmx pushed the node's own address


def save_node(page, node_id: str) -> None:
    page.click("button:has-text('Save node')")
    page.wait_for_selector(f".message:has-text('Node {node_id} saved.')")


def test_admin_builds_tests_and_publishes_a_menu_flow(browser_page) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browser_page

    log_in(page, ADMIN_EMAIL)
    page.click("nav.mainnav >> text=Routing")
    page.click("nav.tabs >> text=Flows")
    page.click("text=New flow")
    page.fill("input[name=name]", "Main line")
    page.click("button:has-text('Create flow')")
    page.wait_for_url("**/routing/flows/*/")
    flow = Flow.objects.get(name="Main line")

    # A menu after the start: until its branches are connected it is drawn with its problems,
    # and Publish is disabled, saying why (the server refuses it too: the view tests).
    add_node(page, "menu", node_id="menu", connect_from="start.next")
    assert "has-problems" in page.get_attribute("#node-menu", "class")
    assert "prompt is required." in page.inner_text("#node-menu")
    publish = page.locator("button:has-text('Publish v1')")
    assert publish.is_disabled()
    assert "before publishing" in publish.get_attribute("title")
    assert flow.versions.get(number=1).state == FlowVersionState.DRAFT

    # The panel still shows the new menu's form (no request since): fill it in. Clicking the node
    # here would race its own swap against the fill.
    assert page.inner_text("#panel h2") == "menu"
    page.wait_for_selector("textarea[name=prompt]")
    page.fill("textarea[name=prompt]", "For sales press 1, for support press 2.")
    page.select_option("select[name=branch_invalid]", "hangup")
    page.select_option("select[name=branch_timeout]", "hangup")
    save_node(page, "menu")

    add_node(page, "route", node_id="route", connect_from="menu.1", label="Sales")
    page.select_option("select[name=target]", label="Sales · 4323")
    save_node(page, "route")
    add_node(page, "route", node_id="route_2", connect_from="menu.2", label="Support")
    page.select_option("select[name=target]", label="Support · 4400")
    save_node(page, "route_2")
    assert page.inner_text("#problems").strip().endswith("can be published.")

    # Reorder the menu's keys: 2 moves above 1 (a submit button inside the htmx form).
    page.click("#node-menu")
    page.click("button[aria-label='Move key 2 up']")
    page.wait_for_selector(".message:has-text('Node menu saved.')")
    assert page.input_value("select[name=option-0-digit]") == "2"
    assert list(flow.versions.get(number=1).graph["nodes"]["menu"]["next"])[:2] == ["2", "1"]

    # Drag the hang-up box to the right: its place is saved and the arrows are drawn again.
    page.locator("#node-hangup").scroll_into_view_if_needed()
    box = page.locator("#node-hangup").bounding_box()
    page.mouse.move(box["x"] + 20, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + 120, box["y"] + 60, steps=8)
    page.mouse.move(box["x"] + 420, box["y"] + 180, steps=8)
    page.mouse.up()
    page.wait_for_function("() => !document.querySelector('#node-hangup').classList.contains('dragging')")
    moved = flow.versions.get(number=1).graph["layout"]["hangup"]
    assert moved["x"] >= 380
    assert page.locator("textarea[name=prompt]").count() == 1  # the open form was left alone

    snap(page, "flow-builder-draft")
    page.click("button:has-text('Publish v1')")
    page.wait_for_selector(".message:has-text('Version 1 is published')")
    flow.refresh_from_db()
    assert flow.published_version.number == 1

    page.fill("#test-call input[name=caller]", "+442079460018")
    page.fill("#test-call input[name=digits]", "1")
    page.click("button:has-text('Run test call')")
    page.wait_for_selector(".steps")
    # The path highlight arrives with the graph swap; wait for it rather than race it.
    page.wait_for_selector("#node-route.on-path")
    assert "on-path" in page.get_attribute("#node-route", "class")
    assert "on-path" not in page.get_attribute("#node-route_2", "class")
    assert page.locator("path.edge.on-path").count() == 2
    steps = page.inner_text(".steps")
    assert '"verb": "gather"' in steps
    assert "sip:4323@acme.voiso.com" in steps
    snap(page, "flow-builder-test-call")

    # Attach a number to the flow from the numbers page.
    page.click("nav.tabs >> text=Numbers")
    page.click("text=Add a number")
    page.fill("input[name=number]", "+44 20 7946 0018")
    page.select_option("select[name=flow]", label="Main line")
    page.click("button:has-text('Add number')")
    page.wait_for_url("**/routing/numbers/")
    row = page.locator("tr", has_text="+442079460018")
    assert "Main line" in row.inner_text() and "v1 live" in row.inner_text()
    assert PhoneNumber.objects.get(number="+442079460018").flow == flow

    page.click("button:has-text('Log out')")
    page.wait_for_url("**/accounts/login/")
    log_in(page, SUPERVISOR_EMAIL)
    page.goto(f"/routing/flows/{flow.pk}/")
    assert page.locator("text=Add a node").count() == 0
    assert page.locator("button:has-text('Publish')").count() == 0
    page.fill("#test-call input[name=caller]", "+442079460018")
    page.fill("#test-call input[name=digits]", "2")
    page.click("button:has-text('Run test call')")
    page.wait_for_selector(".steps")
    page.wait_for_selector("#node-route_2.on-path")
    assert "sip:4400@acme.voiso.com" in page.inner_text(".steps")
    assert "on-path" in page.get_attribute("#node-route_2", "class")
