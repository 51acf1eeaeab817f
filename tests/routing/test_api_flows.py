"""/api/v1/flows/: drafts, validation pinned to nodes, publish, history, restore, simulate-free reads."""

from __future__ import annotations

from typing import Any

import pytest

from routing.models import Flow, FlowVersion
from tests.conftest import Caller, error_code
from tests.factories import make_queue
from voiso_byob.models import AuditEvent

FLOWS = "/api/v1/flows/"


def graph(target_id: str) -> dict[str, Any]:
    return {
        "nodes": {
            "start": {"type": "start", "config": {}, "next": {"next": "sales"}},
            "sales": {"type": "route", "config": {"target": {"type": "queue", "id": target_id}}, "next": {}},
        }
    }


@pytest.fixture
def sales(acme):
    return make_queue(acme, name="Sales", extension="4323")


def test_create_draft_publish_and_restore(caller: Caller, sales) -> None:
    created = caller.post(FLOWS, {"name": "Main line"})
    assert created.status_code == 201, created.json()
    url = f"{FLOWS}{created.json()['id']}/"
    assert created.json()["published_version"] is None and created.json()["draft"]["number"] == 1

    draft = caller.post(f"{url}draft/", {"graph": graph(str(sales.pk))})
    assert draft.status_code == 200 and draft.json()["is_valid"], draft.json()
    published = caller.post(f"{url}publish/", {})
    assert published.status_code == 200 and published.json()["state"] == "published"
    caller.assert_acted(AuditEvent.objects.get(action="flow.published"))

    caller.post(
        f"{url}draft/",
        {
            "graph": {
                "nodes": {
                    "start": {"type": "start", "config": {}, "next": {"next": "h"}},
                    "h": {"type": "hangup", "config": {}, "next": {}},
                }
            }
        },
    )
    caller.post(f"{url}publish/", {})
    versions = caller.get(f"{url}versions/").json()
    assert [(v["number"], v["state"]) for v in versions] == [(2, "published"), (1, "archived")]

    restored = caller.post(f"{url}restore/", {"version": 1})
    assert (
        restored.status_code == 200 and restored.json()["state"] == "draft" and restored.json()["number"] == 3
    )
    assert restored.json()["graph"] == graph(str(sales.pk))
    assert FlowVersion.objects.get(flow_id=created.json()["id"], number=1).state == "archived"


def test_invalid_drafts_save_with_problems_but_never_publish(caller: Caller) -> None:
    flow = caller.post(FLOWS, {"name": "Broken"}).json()
    url = f"{FLOWS}{flow['id']}/"
    bad = {"nodes": {"start": {"type": "start", "config": {}, "next": {"next": "nowhere"}}}}
    saved = caller.post(f"{url}draft/", {"graph": bad})
    assert saved.status_code == 200 and not saved.json()["is_valid"]
    assert any(p["node"] == "start" for p in saved.json()["problems"])
    refused = caller.post(f"{url}publish/", {})
    assert refused.status_code == 400 and error_code(refused) == "invalid_flow"
    assert Flow.objects.get(pk=flow["id"]).published_version is None


def test_validate_changes_nothing_and_readers_may_use_it(caller: Caller, supervisor, sales) -> None:
    flow = caller.post(FLOWS, {"name": "Main"}).json()
    versions = FlowVersion.objects.count()
    for client_post in (
        caller.post,
        lambda url, data: supervisor.client.post(url, data, content_type="application/json"),
    ):
        response = client_post(
            f"{FLOWS}{flow['id']}/validate/", {"graph": graph("00000000-0000-0000-0000-000000000000")}
        )
        assert response.status_code == 200
        assert [(p["node"], p["code"]) for p in response.json()] == [("sales", "unknown_target")]
    assert FlowVersion.objects.count() == versions


def test_supervisor_reads_but_cannot_edit(caller: Caller, supervisor) -> None:
    flow = caller.post(FLOWS, {"name": "Main"}).json()
    client = supervisor.client
    assert client.get(f"{FLOWS}{flow['id']}/versions/").status_code == 200
    for action in ("draft", "publish", "restore"):
        response = client.post(f"{FLOWS}{flow['id']}/{action}/", {}, content_type="application/json")
        assert response.status_code == 403, action


def test_other_centers_flows_are_404(caller: Caller, outsider) -> None:
    flow = caller.post(FLOWS, {"name": "Main"}).json()
    for method, suffix in (("get", ""), ("get", "versions/"), ("post", "publish/"), ("delete", "")):
        response = getattr(outsider.client, method)(
            f"{FLOWS}{flow['id']}/{suffix}", content_type="application/json"
        )
        assert response.status_code == 404, (method, suffix)


def test_a_flow_with_numbers_cannot_be_deleted(caller: Caller) -> None:
    flow = caller.post(FLOWS, {"name": "Main"}).json()
    assert caller.post("/api/v1/numbers/", {"number": "+442079460018", "flow": flow["id"]}).status_code == 201
    response = caller.delete(f"{FLOWS}{flow['id']}/")
    assert response.status_code == 400 and error_code(response) == "flow_in_use"


def test_simulate_runs_the_draft_and_changes_nothing(caller: Caller, supervisor, sales) -> None:
    menu = {
        "nodes": {
            "start": {"type": "start", "config": {}, "next": {"next": "menu"}},
            "menu": {
                "type": "menu",
                "config": {"prompt": "Press 1 for sales."},
                "next": {"1": "sales", "invalid": "bye", "timeout": "bye"},
            },
            "sales": {
                "type": "route",
                "config": {"target": {"type": "queue", "id": str(sales.pk)}},
                "next": {},
            },
            "bye": {"type": "hangup", "config": {}, "next": {}},
        }
    }
    flow = caller.post(FLOWS, {"name": "Main", "graph": menu}).json()
    versions, events = FlowVersion.objects.count(), AuditEvent.objects.count()
    body = {"caller": "+442079460999", "at": "2026-11-24T10:00:00+00:00", "digits": ["1"]}
    response = supervisor.client.post(f"{FLOWS}{flow['id']}/simulate/", body, content_type="application/json")
    assert response.status_code == 200, response.json()
    steps = response.json()
    assert [s["instructions"][-1]["verb"] for s in steps] == ["gather", "dial"]
    assert steps[1]["path"][-1] == "sales" and steps[1]["destination"]["extension"] == "4323"
    assert (FlowVersion.objects.count(), AuditEvent.objects.count()) == (versions, events)
