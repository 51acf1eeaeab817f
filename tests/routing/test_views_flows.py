"""Flow pages and the builder: roles, tenancy, node forms saving the draft, problems on the
diagram, publish, history and restore, and the test-call panel (a dry run)."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from routing import services
from routing.models import Flow, FlowVersion, FlowVersionState, PhoneNumber, Queue
from tests.conftest import Persona
from tests.factories import make_queue
from voiso_byob.models import AuditEvent, ContactCenter

HTMX = {"HTTP_HX_REQUEST": "true"}


class _Element(HTMLParser):
    """The classes and text of the element with one id (the stdlib parser: no extra dependency)."""

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id = element_id
        self.depth = 0
        self.classes: set[str] | None = None
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.depth:
            self.depth += tag not in ("input", "br", "img")
        elif dict(attrs).get("id") == self.element_id:
            self.classes = set((dict(attrs).get("class") or "").split())
            self.depth = 1

    def handle_endtag(self, tag: str) -> None:
        if self.depth:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def element(response: Any, element_id: str) -> tuple[set[str], str]:
    parser = _Element(element_id)
    parser.feed(response.content.decode())
    assert parser.classes is not None, f"no element #{element_id} in the page"
    return parser.classes, " ".join("".join(parser.parts).split())


def menu_graph(queue: Queue) -> dict[str, Any]:
    return {
        "nodes": {
            "start": {"type": "start", "config": {}, "next": {"next": "menu"}},
            "menu": {
                "type": "menu",
                "config": {"prompt": "For sales press 1."},
                "next": {"1": "sales", "invalid": "bye", "timeout": "bye"},
            },
            "sales": {
                "type": "route",
                "config": {"target": {"type": "queue", "id": str(queue.pk)}},
                "next": {},
            },
            "bye": {"type": "hangup", "config": {}, "next": {}},
        }
    }


@pytest.fixture
def sales(acme: ContactCenter) -> Queue:
    return make_queue(acme, name="Sales", extension="4323")


@pytest.fixture
def flow(acme: ContactCenter, sales: Queue) -> Flow:
    """A valid menu flow, published as v1, no draft."""
    flow = services.create_flow(center=acme, by="tests", name="Main line", graph=menu_graph(sales))
    services.publish_flow(flow=flow, by="tests")
    flow.refresh_from_db()
    return flow


def url(name: str, flow: Flow, *args: object) -> str:
    return reverse(f"routing:{name}", args=[flow.pk, *args])


def draft_of(flow: Flow) -> FlowVersion:
    return flow.versions.get(state=FlowVersionState.DRAFT)


def snapshot(center: ContactCenter) -> tuple[object, ...]:
    return (
        sorted(
            FlowVersion.objects.filter(flow__contact_center=center).values_list(
                "pk", "state", "graph", "number"
            )
        ),
        sorted(Flow.objects.for_center(center).values_list("pk", "name", "published_version")),
        AuditEvent.objects.for_center(center).count(),
    )


# --- roles and tenancy ---------------------------------------------------------------------

READ_PAGES = [
    ("flow_list", False, ()),
    ("flow_detail", True, ()),
    ("flow_versions", True, ()),
    ("flow_version", True, (1,)),
    ("flow_node", True, ("menu",)),
]
WRITES = [
    ("get", "flow_create", False, (), {}),
    ("post", "flow_create", False, (), {"name": "Other"}),
    ("get", "flow_settings", True, (), {}),
    ("post", "flow_settings", True, (), {"name": "Renamed"}),
    ("get", "flow_delete", True, (), {}),
    ("post", "flow_delete", True, (), {}),
    ("get", "flow_node_add", True, (), {}),
    ("post", "flow_node_add", True, (), {"type": "hangup"}),
    ("post", "flow_node", True, ("bye",), {"label": "Bye"}),
    ("post", "flow_node_delete", True, ("bye",), {}),
    ("post", "flow_node_move", True, ("bye",), {"x": 10, "y": 10}),
    ("post", "flow_arrange", True, (), {}),
    ("post", "flow_publish", True, (), {}),
    ("post", "flow_restore", True, (1,), {}),
]


def _url(name: str, flow: Flow, needs_flow: bool, args: tuple[object, ...]) -> str:
    return url(name, flow, *args) if needs_flow else reverse(f"routing:{name}")


@pytest.mark.parametrize(("name", "needs_flow", "args"), READ_PAGES, ids=[page[0] for page in READ_PAGES])
def test_administrators_and_supervisors_read_agents_are_refused(
    admin: Persona, supervisor: Persona, agent: Persona, anonymous, flow: Flow, name, needs_flow, args
) -> None:
    target = _url(name, flow, needs_flow, args)

    assert admin.client.get(target).status_code == 200
    assert supervisor.client.get(target).status_code == 200
    assert agent.client.get(target).status_code == 403
    response = anonymous.get(target)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("method", "name", "needs_flow", "args", "data"), WRITES, ids=[f"{w[0]}-{w[1]}" for w in WRITES]
)
def test_supervisors_and_agents_cannot_write(
    supervisor: Persona, agent: Persona, flow: Flow, method, name, needs_flow, args, data
) -> None:
    target = _url(name, flow, needs_flow, args)
    before = snapshot(flow.contact_center)

    for persona in (supervisor, agent):
        response = getattr(persona.client, method)(target, data)
        assert response.status_code == 403, (persona.membership.role, target)

    assert snapshot(flow.contact_center) == before


@pytest.mark.parametrize(
    ("method", "name", "args", "data"),
    [
        ("get", "flow_detail", (), {}),
        ("get", "flow_version", (1,), {}),
        ("get", "flow_versions", (), {}),
        ("get", "flow_node", ("menu",), {}),
        ("get", "flow_settings", (), {}),
        ("post", "flow_node", ("menu",), {"prompt": "Hi"}),
        ("post", "flow_node_add", (), {"type": "hangup"}),
        ("post", "flow_node_delete", ("bye",), {}),
        ("post", "flow_publish", (), {}),
        ("post", "flow_restore", (1,), {}),
        ("post", "flow_test_call", (), {"caller": "+442079460018", "at": "2025-06-02T10:00", "version": 1}),
        ("post", "flow_delete", (), {}),
    ],
)
def test_another_centers_flow_is_not_found(outsider: Persona, flow: Flow, method, name, args, data) -> None:
    before = snapshot(flow.contact_center)

    response = getattr(outsider.client, method)(url(name, flow, *args), data)

    assert response.status_code == 404
    assert snapshot(flow.contact_center) == before


def test_unknown_node_and_version_are_not_found(admin: Persona, flow: Flow) -> None:
    assert admin.client.get(url("flow_node", flow, "nowhere")).status_code == 404
    assert admin.client.post(url("flow_node_delete", flow, "nowhere")).status_code == 404
    assert admin.client.get(url("flow_version", flow, 9)).status_code == 404


def test_supervisor_sees_the_flow_without_edit_controls(supervisor: Persona, flow: Flow) -> None:
    page = supervisor.client.get(url("flow_detail", flow))

    assertContains(page, 'id="node-menu"')
    assertContains(page, "For sales press 1.")
    for control in (
        "Add a node",
        "Arrange automatically",
        "attach a number",
        "data-move-url",
        url("flow_publish", flow),
        url("flow_settings", flow),
        url("flow_delete", flow),
    ):
        assertNotContains(page, control)
    assertContains(page, "Run test call")

    node_page = supervisor.client.get(url("flow_node", flow, "menu"))
    form = node_page.context["node_form"]
    assert all(field.disabled for field in form.fields.values())
    assertNotContains(node_page, "Save node")
    assertNotContains(node_page, "Delete node")
    assertNotContains(node_page, 'name="row_action"')


# --- the list and creating -----------------------------------------------------------------


def test_flow_list_shows_published_version_draft_state_and_numbers(
    admin: Persona, flow: Flow, django_assert_max_num_queries
) -> None:
    PhoneNumber.objects.create(contact_center=flow.contact_center, number="+442079460018", flow=flow)
    services.save_draft(flow=flow, by="tests", graph={"nodes": {}})
    for n in range(12):
        services.create_flow(center=flow.contact_center, by="tests", name=f"Spare {n:02}")

    with django_assert_max_num_queries(10):
        response = admin.client.get(reverse("routing:flow_list"))

    row = response.content.decode().split("Main line", 1)[1].split("</tr>", 1)[0]
    assert "v1" in row and "v2" in row and "1 problem" in row and "+442079460018" in row
    assertContains(response, "Spare 11")
    assertContains(response, "ready to publish")  # a fresh flow's starter draft is valid


def test_flow_list_search_answers_htmx_with_the_list_only(admin: Persona, flow: Flow) -> None:
    services.create_flow(center=flow.contact_center, by="tests", name="After hours")

    response = admin.client.get(reverse("routing:flow_list"), {"q": "after"}, **HTMX)

    assert not response.content.lstrip().startswith(b"<!doctype")
    assertContains(response, "After hours")
    assertNotContains(response, "Main line")


def test_create_flow_starts_a_draft_and_opens_the_builder(admin: Persona) -> None:
    response = admin.client.post(reverse("routing:flow_create"), {"name": "Support line"})

    flow = Flow.objects.get(contact_center=admin.center, name="Support line")
    assert response.status_code == 302
    assert response["Location"] == url("flow_detail", flow)
    graph = draft_of(flow).graph
    assert graph["nodes"] == services.STARTER_GRAPH["nodes"]
    # Laid out for the builder's boxes: the hang-up one row under the start, clear of it.
    assert graph["layout"]["start"]["x"] == graph["layout"]["hangup"]["x"]
    assert graph["layout"]["hangup"]["y"] - graph["layout"]["start"]["y"] >= 88 + 40
    assert draft_of(flow).problems == []
    assert (
        AuditEvent.objects.for_center(admin.center).filter(action="flow.created", actor=admin.user).exists()
    )


def test_create_flow_with_a_taken_name_shows_the_error(admin: Persona, flow: Flow) -> None:
    response = admin.client.post(reverse("routing:flow_create"), {"name": "main LINE"})

    assert response.status_code == 400
    assert response.context["form"].errors["name"] == ["A flow named 'main LINE' already exists."]
    assert Flow.objects.for_center(admin.center).count() == 1


# --- building a flow through the node forms ------------------------------------------------


def test_admin_builds_start_menu_route_through_node_forms_and_publishes(admin: Persona, sales: Queue) -> None:
    admin.client.post(reverse("routing:flow_create"), {"name": "Hotline"})
    flow = Flow.objects.get(name="Hotline")

    # A menu after the start node: the start's branch now leads to it.
    response = admin.client.post(url("flow_node_add", flow), {"type": "menu", "connect_from": "start.next"})
    assert response.status_code == 302 and response["Location"] == url("flow_node", flow, "menu")
    # Its form: the prompt, and where a wrong key or silence ends up.
    response = admin.client.post(
        url("flow_node", flow, "menu"),
        {
            "label": "Main menu",
            "prompt": "For sales press 1.",
            "timeout_seconds": "6",
            "max_tries": "2",
            "branch_invalid": "hangup",
            "branch_timeout": "hangup",
            "option-TOTAL_FORMS": "1",
            "option-INITIAL_FORMS": "0",
            "option-0-digit": "",
            "option-0-target": "",
        },
    )
    assert response.status_code == 302
    # A route hanging from key 1 of the menu, then sent to the Sales queue.
    admin.client.post(
        url("flow_node_add", flow), {"type": "route", "connect_from": "menu.1", "label": "Sales"}
    )
    route_form = admin.client.get(url("flow_node", flow, "route")).context["node_form"]
    assert f"queue:{sales.pk}" in str(route_form.fields["target"].choices)
    response = admin.client.post(
        url("flow_node", flow, "route"), {"target": f"queue:{sales.pk}", "label": "Sales"}
    )
    assert response.status_code == 302

    draft = draft_of(flow)
    nodes = draft.graph["nodes"]
    assert nodes["start"]["next"] == {"next": "menu"}
    assert nodes["menu"] == {
        "type": "menu",
        "label": "Main menu",
        "config": {"prompt": "For sales press 1.", "timeout_seconds": 6, "max_tries": 2},
        "next": {"1": "route", "invalid": "hangup", "timeout": "hangup"},
    }
    assert nodes["route"] == {
        "type": "route",
        "label": "Sales",
        "config": {"target": {"type": "queue", "id": str(sales.pk)}},
        "next": {},
    }
    assert set(draft.graph["layout"]) == {"start", "hangup", "menu", "route"}
    assert draft.problems == []
    assert draft.created_by == admin.user

    response = admin.client.post(url("flow_publish", flow))

    assert response.status_code == 302
    flow.refresh_from_db()
    assert flow.published_version == draft
    draft.refresh_from_db()
    assert draft.state == FlowVersionState.PUBLISHED
    assertContains(admin.client.get(url("flow_detail", flow)), f"Version {draft.number} is published")
    actions = list(
        AuditEvent.objects.for_center(admin.center)
        .filter(target_id=str(flow.pk), actor=admin.user)
        .values_list("action", flat=True)
    )
    assert actions.count("flow.draft_saved") == 4 and "flow.published" in actions


def test_an_edit_answers_htmx_with_the_workspace_partial(admin: Persona, flow: Flow) -> None:
    response = admin.client.post(
        url("flow_node_add", flow), {"type": "play", "label": "Welcome", "connect_from": "menu.2"}, **HTMX
    )

    assert response.status_code == 200
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="workspace"')
    assert "<html" not in body
    assert response["HX-Push-Url"] == url("flow_node", flow, "play")
    assert 'name="text"' in body  # the new node's form is open
    assert "Draft v2 saved with 2 problems." in body  # a play node needs a text or a URL, and a next
    classes, text = element(response, "node-play")
    assert {"has-problems", "selected"} <= classes
    assert "A play node has either a text or a URL" in text


def test_a_new_node_is_placed_clear_of_the_others(admin: Persona, flow: Flow) -> None:
    admin.client.post(url("flow_node_add", flow), {"type": "play", "connect_from": "menu.2"})

    layout = draft_of(flow).graph["layout"]
    new = layout["play"]
    assert all(
        abs(new["x"] - point["x"]) >= 200 or abs(new["y"] - point["y"]) >= 88
        for node_id, point in layout.items()
        if node_id != "play"
    )
    assert new["y"] > layout["menu"]["y"]
    assert draft_of(flow).graph["nodes"]["menu"]["next"]["2"] == "play"


def test_only_one_start_node_can_be_picked(admin: Persona, flow: Flow) -> None:
    form = admin.client.get(url("flow_node_add", flow)).context["add_form"]
    assert "start" not in dict(form.fields["type"].choices)

    response = admin.client.post(url("flow_node_add", flow), {"type": "start"})

    assert response.status_code == 400
    assert "type" in response.context["add_form"].errors
    assert not flow.versions.filter(state=FlowVersionState.DRAFT).exists()


def _menu_post(**overrides: str) -> dict[str, str]:
    data = {
        "prompt": "Press a key.",
        "timeout_seconds": "5",
        "max_tries": "3",
        "branch_invalid": "bye",
        "branch_timeout": "bye",
        "option-TOTAL_FORMS": "4",
        "option-INITIAL_FORMS": "3",
        "option-0-digit": "1",
        "option-0-target": "sales",
        "option-1-digit": "2",
        "option-1-target": "bye",
        "option-2-digit": "3",
        "option-2-target": "",
        "option-3-digit": "",
        "option-3-target": "",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("action", "keys"),
    [
        ("", ["1", "2", "3"]),
        ("up:1", ["2", "1", "3"]),
        ("down:0", ["2", "1", "3"]),
        ("up:0", ["1", "2", "3"]),
        ("down:2", ["1", "2", "3"]),
        ("remove:1", ["1", "3"]),
    ],
)
def test_menu_options_are_reordered_and_removed_with_the_rest_of_the_form(
    admin: Persona, flow: Flow, action: str, keys: list[str]
) -> None:
    response = admin.client.post(url("flow_node", flow, "menu"), _menu_post(row_action=action))

    assert response.status_code == 302
    branches = draft_of(flow).graph["nodes"]["menu"]["next"]
    assert list(branches) == [*keys, "invalid", "timeout"]
    assert branches.get("1") == "sales" and branches.get("3", None) is None
    assert draft_of(flow).graph["nodes"]["menu"]["config"]["prompt"] == "Press a key."


def test_menu_option_added_in_the_blank_row(admin: Persona, flow: Flow) -> None:
    admin.client.post(
        url("flow_node", flow, "menu"), _menu_post(**{"option-3-digit": "#", "option-3-target": "sales"})
    )

    assert list(draft_of(flow).graph["nodes"]["menu"]["next"].items())[3] == ("#", "sales")


def test_menu_key_used_twice_is_refused_inline(admin: Persona, flow: Flow) -> None:
    response = admin.client.post(url("flow_node", flow, "menu"), _menu_post(**{"option-1-digit": "1"}))

    assert response.status_code == 400
    assertContains(response, "Key 1 is used twice", status_code=400)
    assert not flow.versions.filter(state=FlowVersionState.DRAFT).exists()


@pytest.mark.parametrize(
    ("node", "data", "expected"),
    [
        (
            "schedule",
            {"mon": "9:00-12:30, 13:30-17:30", "sat": "10:00-24:00", "holidays": "2025-12-25 Christmas Day"},
            {
                "weekly": {"mon": [["09:00", "12:30"], ["13:30", "17:30"]], "sat": [["10:00", "24:00"]]},
                "holidays": [{"date": "2025-12-25", "name": "Christmas Day"}],
            },
        ),
        (
            "condition",
            {"kind": "caller_prefix", "prefixes": "+44, +353", "countries": "fr"},
            {"kind": "caller_prefix", "prefixes": ["+44", "+353"]},
        ),
        (
            "condition",
            {"kind": "caller_in_list", "numbers": "+44 20 7946 0018\n+12125550199"},
            {"kind": "caller_in_list", "numbers": ["+442079460018", "+12125550199"]},
        ),
        (
            "condition",
            {"kind": "variable", "name": "crm.tier", "operator": "eq", "value": "gold"},
            {"kind": "variable", "name": "crm.tier", "operator": "eq", "value": "gold"},
        ),
        (
            "http_request",
            {
                "method": "POST",
                "url": "https://crm.example/lookup",
                "timeout_seconds": "1.5",
                "save_as": "crm",
            },
            {"method": "POST", "url": "https://crm.example/lookup", "timeout_seconds": 1.5, "save_as": "crm"},
        ),
        (
            "route",
            {"target": "external", "number": "+1 212 555 0199", "caller_id": "+442079460018"},
            {"target": {"type": "external", "number": "+12125550199"}, "caller_id": "+442079460018"},
        ),
        (
            "route",
            {"target": "variable", "variable": "crm.agent"},
            {"target": {"type": "variable", "name": "crm.agent"}},
        ),
        ("play", {"url": "https://cdn.example/welcome.wav"}, {"url": "https://cdn.example/welcome.wav"}),
        ("voicemail", {"greeting": "Leave a message."}, {"greeting": "Leave a message."}),
    ],
    ids=[
        "schedule",
        "prefix",
        "list",
        "variable",
        "http",
        "route-external",
        "route-variable",
        "play",
        "voicemail",
    ],
)
def test_each_node_form_writes_its_config(
    admin: Persona, flow: Flow, node: str, data: dict, expected: dict
) -> None:
    admin.client.post(url("flow_node_add", flow), {"type": node})
    node_id = node

    response = admin.client.post(url("flow_node", flow, node_id), data)

    assert response.status_code == 302, response.context and response.context["node_form"].errors
    assert draft_of(flow).graph["nodes"][node_id]["config"] == expected
    # The form reads the config back: saving it unchanged writes the same config.
    form = admin.client.get(url("flow_node", flow, node_id)).context["node_form"]
    again = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    assert admin.client.post(url("flow_node", flow, node_id), again).status_code == 302
    assert draft_of(flow).graph["nodes"][node_id]["config"] == expected


@pytest.mark.parametrize(
    ("node", "data", "field", "message"),
    [
        ("schedule", {"mon": "9 to 5"}, "mon", "is not a range"),
        ("schedule", {"tue": "17:00-09:00"}, "tue", "does not move forward"),
        ("schedule", {"holidays": "Christmas"}, "holidays", "is not a date and a name"),
        ("route", {"target": "external", "number": "12345"}, "number", "international format"),
        ("play", {"text": "Hi", "url": "https://cdn.example/a.wav"}, "url", "not both"),
        (
            "menu",
            {"timeout_seconds": "99", "option-TOTAL_FORMS": "0", "option-INITIAL_FORMS": "0"},
            "timeout_seconds",
            "less than or equal to 30",
        ),
    ],
)
def test_node_form_errors_are_shown_and_nothing_is_saved(
    admin: Persona, flow: Flow, node: str, data: dict, field: str, message: str
) -> None:
    if node != "menu":
        admin.client.post(url("flow_node_add", flow), {"type": node})
    before = snapshot(flow.contact_center)

    response = admin.client.post(url("flow_node", flow, node), data)

    assert response.status_code == 400
    assert message in " ".join(response.context["node_form"].errors[field])
    assert snapshot(flow.contact_center) == before


def test_deleting_a_node_disconnects_the_branches_leading_to_it(admin: Persona, flow: Flow) -> None:
    response = admin.client.post(url("flow_node_delete", flow, "bye"), **HTMX)

    assert response.status_code == 200
    assert response["HX-Push-Url"] == url("flow_detail", flow)
    graph = draft_of(flow).graph
    assert "bye" not in graph["nodes"]
    assert graph["nodes"]["menu"]["next"] == {"1": "sales"}
    assert {p["field"] for p in draft_of(flow).problems} == {"next.invalid", "next.timeout"}
    classes, text = element(response, "node-menu")
    assert "has-problems" in classes and "Connect the invalid branch." in text


def test_moving_a_node_stores_the_layout_and_redraws_the_diagram(admin: Persona, flow: Flow) -> None:
    response = admin.client.post(url("flow_node_move", flow, "bye"), {"x": 600, "y": 40}, **HTMX)

    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="diagram"')
    assertContains(response, 'data-place-left="600px" data-place-top="40px"')  # portal.js places it
    layout = draft_of(flow).graph["layout"]
    assert layout["bye"] == {"x": 600, "y": 40}
    assert set(layout) == {"start", "menu", "sales", "bye"}  # the others keep where they were drawn
    assert admin.client.post(url("flow_node_move", flow, "bye"), {"x": "left"}).status_code == 400


def test_arranging_forgets_the_layout(admin: Persona, flow: Flow) -> None:
    admin.client.post(url("flow_node_move", flow, "bye"), {"x": 600, "y": 40})

    admin.client.post(url("flow_arrange", flow))

    assert "layout" not in draft_of(flow).graph


# --- the diagram -----------------------------------------------------------------------------


def test_diagram_draws_nodes_by_depth_and_labelled_branches(admin: Persona, flow: Flow) -> None:
    response = admin.client.get(url("flow_detail", flow))

    boxes = {box.id: box for box in response.context["diagram"].boxes}
    assert boxes["start"].y < boxes["menu"].y < boxes["sales"].y == boxes["bye"].y
    edges = {(edge.source, edge.target): edge.label for edge in response.context["diagram"].edges}
    assert edges == {
        ("start", "menu"): "next",
        ("menu", "sales"): "press 1",
        ("menu", "bye"): "invalid, timeout",
    }
    assertContains(response, "invalid, timeout")
    assertContains(response, "Queue Sales · 4323")


def test_the_builder_page_reads_a_fixed_number_of_queries(
    admin: Persona, flow: Flow, sales: Queue, django_assert_max_num_queries
) -> None:
    graph = menu_graph(sales)
    for n in range(30):  # thirty announcements in a chain behind key 2
        graph["nodes"][f"extra_{n}"] = {
            "type": "play",
            "config": {"text": f"Step {n}"},
            "next": {"next": "bye"},
        }
    graph["nodes"]["menu"]["next"]["2"] = "extra_0"
    for n in range(29):
        graph["nodes"][f"extra_{n}"]["next"]["next"] = f"extra_{n + 1}"
    services.save_draft(flow=flow, by="tests", graph=graph)

    with django_assert_max_num_queries(14):
        response = admin.client.get(url("flow_detail", flow))

    assert len(response.context["diagram"].boxes) == 34
    assert response.context["problems"] == []


def test_problems_are_shown_on_their_nodes_and_listed(admin: Persona, flow: Flow, sales: Queue) -> None:
    graph = menu_graph(sales)
    del graph["nodes"]["menu"]["config"]["prompt"]
    graph["nodes"]["orphan"] = {"type": "hangup"}
    services.save_draft(flow=flow, by="tests", graph=graph)

    response = admin.client.get(url("flow_detail", flow))

    classes, text = element(response, "node-menu")
    assert "has-problems" in classes
    assert "prompt is required." in text
    classes, text = element(response, "node-orphan")
    assert "has-problems" in classes and "No path from the start node reaches this node." in text
    assert "has-problems" not in element(response, "node-sales")[0]
    _, listed = element(response, "problems")
    assert "menu · config.prompt: prompt is required." in listed
    assert "orphan: No path from the start node reaches this node." in listed


def test_problems_are_checked_live_when_a_route_target_is_deleted(
    admin: Persona, flow: Flow, sales: Queue
) -> None:
    assert flow.published_version.problems == []
    services.delete_queue(queue=sales, by="tests")

    response = admin.client.get(url("flow_detail", flow))

    classes, text = element(response, "node-sales")
    assert "has-problems" in classes
    assert "Missing queue" in text and "That queue does not exist in this contact center." in text


# --- publish, history, restore -------------------------------------------------------------


def test_publish_is_refused_while_the_draft_has_problems(admin: Persona, flow: Flow) -> None:
    admin.client.post(url("flow_node_delete", flow, "bye"))
    draft = draft_of(flow)

    response = admin.client.post(url("flow_publish", flow))

    assert response.status_code == 400
    assertContains(response, "The draft has 2 problem(s); fix them before publishing", status_code=400)
    assert "has-problems" in element(response, "node-menu")[0]
    draft.refresh_from_db()
    flow.refresh_from_db()
    assert draft.state == FlowVersionState.DRAFT
    assert flow.published_version.number == 1

    htmx = admin.client.post(url("flow_publish", flow), **HTMX)
    assert htmx.status_code == 200  # htmx swaps only 2xx: the refusal is the workspace with its reason
    assertContains(htmx, "fix them before publishing")


def publish_button(response: Any) -> str:
    match = re.search(r"<button[^>]*>Publish v\d+</button>", response.content.decode())
    assert match, "no Publish button on the page"
    return match.group(0)


def test_publish_button_is_disabled_while_the_draft_has_problems(
    admin: Persona, flow: Flow, sales: Queue
) -> None:
    services.save_draft(flow=flow, by="tests", graph=menu_graph(sales))
    assert "disabled" not in publish_button(admin.client.get(url("flow_detail", flow)))

    admin.client.post(url("flow_node_delete", flow, "bye"))
    button = publish_button(admin.client.get(url("flow_detail", flow)))
    assert " disabled" in button
    assert 'title="Fix the 2 problems below before publishing"' in button
    # The workspace htmx swaps in after each change carries the same button.
    assert " disabled" in publish_button(admin.client.get(url("flow_detail", flow), **HTMX))


def test_publish_without_a_draft_says_so(admin: Persona, flow: Flow) -> None:
    response = admin.client.post(url("flow_publish", flow))

    assert response.status_code == 400
    assertContains(response, "There is no draft to publish", status_code=400)


def test_history_lists_versions_and_restore_copies_one_into_the_draft(admin: Persona, flow: Flow) -> None:
    v1_graph = flow.published_version.graph
    admin.client.post(url("flow_node", flow, "bye"), {"label": "Goodbye"})
    admin.client.post(url("flow_publish", flow))  # v2 published, v1 archived
    admin.client.post(url("flow_node_delete", flow, "sales"))  # v3 draft

    history = admin.client.get(url("flow_versions", flow))
    rows = [v.state for v in history.context["versions"]]
    assert rows == ["draft", "published", "archived"]
    assertContains(history, "admin@acme.example")
    assertContains(history, url("flow_restore", flow, 1))
    assertNotContains(history, url("flow_restore", flow, 3))  # the draft itself

    old = admin.client.get(url("flow_version", flow, 1))
    assertContains(old, "You are looking at version 1 (archived), read-only.")
    assertNotContains(old, "Save node")
    assertNotContains(old, "data-move-url")
    assert old.context["diagram"].boxes[0].id == "start"

    response = admin.client.post(url("flow_restore", flow, 1))

    assert response.status_code == 302 and response["Location"] == url("flow_detail", flow)
    draft = draft_of(flow)
    assert draft.number == 3 and draft.graph == v1_graph and draft.problems == []
    assert FlowVersion.objects.get(flow=flow, number=1).state == FlowVersionState.ARCHIVED
    event = AuditEvent.objects.for_center(admin.center).get(action="flow.version_restored")
    assert event.changes == {"from_version": 1, "draft": 3} and event.actor == admin.user


# --- settings and delete -------------------------------------------------------------------


def test_settings_save_name_business_hours_and_after_hours_flow(admin: Persona, flow: Flow) -> None:
    night = services.create_flow(center=flow.contact_center, by="tests", name="Night")

    response = admin.client.post(
        url("flow_settings", flow),
        {
            "name": "Day line",
            "mon": "09:00-17:00",
            "fri": "09:00-16:00",
            "holidays": "",
            "after_hours_flow": night.pk,
        },
    )

    assert response.status_code == 302
    flow.refresh_from_db()
    assert flow.name == "Day line"
    assert flow.business_hours == {
        "weekly": {"mon": [["09:00", "17:00"]], "fri": [["09:00", "16:00"]]},
        "holidays": [],
    }
    assert flow.after_hours_flow == night
    page = admin.client.get(url("flow_detail", flow))
    assertContains(page, "Mon, Fri")
    assertContains(page, "outside them:")
    form = admin.client.get(url("flow_settings", flow)).context["form"]
    assert form.initial["mon"] == "09:00-17:00"
    assert flow.pk not in [choice.pk for choice in form.fields["after_hours_flow"].queryset]


def test_settings_refuse_an_after_hours_loop(admin: Persona, flow: Flow) -> None:
    night = services.create_flow(center=flow.contact_center, by="tests", name="Night", after_hours_flow=flow)

    response = admin.client.post(
        url("flow_settings", flow), {"name": "Main line", "after_hours_flow": night.pk}
    )

    assert response.status_code == 400
    assert response.context["form"].errors["after_hours_flow"] == [
        "That after-hours chain leads back to this flow."
    ]
    flow.refresh_from_db()
    assert flow.after_hours_flow is None


def test_a_flow_that_numbers_run_cannot_be_deleted(admin: Persona, flow: Flow) -> None:
    PhoneNumber.objects.create(contact_center=flow.contact_center, number="+442079460018", flow=flow)

    response = admin.client.post(url("flow_delete", flow))

    assert response.status_code == 400
    assertContains(response, "Numbers +442079460018 run this flow", status_code=400)
    assert Flow.objects.filter(pk=flow.pk).exists()


def test_delete_flow(admin: Persona, flow: Flow) -> None:
    response = admin.client.post(url("flow_delete", flow))

    assert response.status_code == 302 and response["Location"] == reverse("routing:flow_list")
    assert not Flow.objects.filter(pk=flow.pk).exists()


# --- the test-call panel -------------------------------------------------------------------


def _test_call(persona: Persona, flow: Flow, headers: dict[str, str] | None = None, **data: object) -> Any:
    payload = {"caller": "+442079460018", "at": "2025-06-02T10:00", "digits": "", "version": 1, **data}
    return persona.client.post(url("flow_test_call", flow), payload, **(headers or {}))


@pytest.mark.parametrize("persona_name", ["admin", "supervisor"])
def test_test_call_shows_the_path_and_the_instructions_and_writes_nothing(
    request: pytest.FixtureRequest, flow: Flow, persona_name: str
) -> None:
    persona: Persona = request.getfixturevalue(persona_name)
    before = snapshot(flow.contact_center)

    with CaptureQueriesContext(connection) as queries:
        response = _test_call(persona, flow, digits="1")

    assert response.status_code == 200
    writes = [
        query["sql"]
        for query in queries.captured_queries
        if query["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE"))
    ]
    assert writes == []
    assert snapshot(flow.contact_center) == before
    steps = response.context["steps"]
    assert [step["path"] for step in steps] == [["start", "menu"], ["menu", "sales"]]
    assert '"verb": "gather"' in steps[0]["instructions"][0]
    assert '"sip_uri": "sip:4323@acme.voiso.com"' in steps[1]["instructions"][0]
    assertContains(response, "The caller presses 1")
    assertContains(response, "sip:4323@acme.voiso.com")
    for node_id, heading in (("start", "Start1"), ("menu", "Menu2"), ("sales", "Route3")):
        classes, text = element(response, f"node-{node_id}")
        assert "on-path" in classes
        assert text.startswith(heading)  # the type, then its step number on the test call
    assert "on-path" not in element(response, "node-bye")[0]
    on_path = {(edge.source, edge.target) for edge in response.context["diagram"].edges if edge.is_on_path}
    assert on_path == {("start", "menu"), ("menu", "sales")}


def test_test_call_names_the_destination_kind_in_words(admin: Persona) -> None:
    # The demo's main line sends 1 to the sales bot: a virtual agent, not "Virtual_agent".
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    flow = Flow.objects.for_center(admin.center).get(name="Demo main line")
    version = flow.published_version.number

    response = _test_call(admin, flow, digits="1", version=version, at="2025-06-02T10:00")

    assert response.status_code == 200
    assertContains(response, "Destination: Virtual agent Demo sales bot")
    assertNotContains(response, "Virtual_agent")
    billing = _test_call(admin, flow, digits="3", version=version, at="2025-06-02T10:00")
    assertContains(billing, "Destination: Queue Billing")


def test_test_call_answers_htmx_with_the_workspace(supervisor: Persona, flow: Flow) -> None:
    response = _test_call(supervisor, flow, headers=HTMX, digits="1")

    assert response.status_code == 200
    assert response.content.decode().lstrip().startswith('<div id="workspace"')
    assert "on-path" in element(response, "node-sales")[0]
    assertContains(response, "sip:4323@acme.voiso.com")


def test_test_call_reads_the_time_in_the_centers_timezone(admin: Persona, flow: Flow, sales: Queue) -> None:
    center = flow.contact_center
    center.timezone = "Europe/London"
    center.save(update_fields=["timezone"])
    graph = {
        "nodes": {
            "start": {"type": "start", "next": {"next": "hours"}},
            "hours": {
                "type": "schedule",
                "config": {"weekly": {"mon": [["09:00", "17:00"]]}},
                "next": {"open": "sales", "closed": "bye"},
            },
            "sales": {"type": "route", "config": {"target": {"type": "queue", "id": str(sales.pk)}}},
            "bye": {"type": "hangup"},
        }
    }
    services.save_draft(flow=flow, by="tests", graph=graph)

    # 08:30 in London in June is 07:30 UTC: closed either way; 09:30 London is 08:30 UTC:
    # open only when the wall time is read in the center's timezone.
    early = _test_call(admin, flow, at="2025-06-02T08:30", version=2)
    opening = _test_call(admin, flow, at="2025-06-02T09:30", version=2)

    assert early.context["steps"][0]["path"] == ["start", "hours", "bye"]
    assert opening.context["steps"][0]["path"] == ["start", "hours", "sales"]


def test_test_call_runs_the_version_asked_for(admin: Persona, flow: Flow) -> None:
    straight_to_hangup = {
        "nodes": {"start": {"type": "start", "next": {"next": "bye"}}, "bye": {"type": "hangup"}}
    }
    services.save_draft(flow=flow, by="tests", graph=straight_to_hangup)

    draft = _test_call(admin, flow, version=2)
    published = _test_call(admin, flow, version=1)

    assert draft.context["steps"][0]["path"] == ["start", "bye"]
    assert published.context["steps"][0]["path"] == ["start", "menu"]
    assertContains(published, "You are looking at version 1 (published), read-only.")
    assert _test_call(admin, flow, version=9).status_code == 404


def test_test_call_of_an_invalid_draft_says_why(admin: Persona, flow: Flow) -> None:
    admin.client.post(url("flow_node_delete", flow, "bye"))

    response = _test_call(admin, flow, version=2)

    assert response.context["steps"] is None
    assertContains(response, "This version cannot run")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"digits": "12"}, "digits"),
        ({"digits": "a"}, "digits"),
        ({"at": "tomorrow"}, "at"),
        ({"caller": ""}, "caller"),
    ],
)
def test_test_call_input_errors_are_shown(admin: Persona, flow: Flow, data: dict, field: str) -> None:
    response = admin.client.post(
        url("flow_test_call", flow),
        {"caller": "+442079460018", "at": "2025-06-02T10:00", "version": 1, **data},
    )

    assert response.status_code == 400
    assert field in response.context["test_form"].errors
    assert response.context["steps"] is None


def test_test_call_is_refused_to_agents(agent: Persona, flow: Flow) -> None:
    assert _test_call(agent, flow).status_code == 403
