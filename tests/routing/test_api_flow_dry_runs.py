"""Who may POST a flow's dry runs: validate (pure) and simulate (whose http_request nodes reach out).

Read keys and supervisors may validate (it changes nothing and contacts nothing) and run a test
call, but their test call sends no http_request node's request; administrators and admin keys
run it as a real call would. Telephony keys and agents are refused; another center's flow is 404.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.test import Client
from django.urls import reverse

from routing.models import FlowVersion
from tests.conftest import Persona, bearer, error_code
from tests.factories import make_queue
from voiso_byob.models import AuditEvent

FLOWS = "/api/v1/flows/"
SIMULATE_BODY = {"caller": "+442079460999", "at": "2026-11-24T10:00:00+00:00", "digits": []}


class _Recorder(BaseHTTPRequestHandler):
    server: Any

    def do_GET(self) -> None:
        self.server.paths.append(self.path)
        body = b'{"tier": "gold"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def crm(settings) -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server that records every request it gets."""
    settings.FLOW_HTTP_ALLOW_PRIVATE = True
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    httpd.daemon_threads = True
    httpd.paths = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/crm", httpd.paths  # type: ignore[attr-defined]
    httpd.shutdown()
    httpd.server_close()


def http_graph(url: str, done_id: str, error_id: str) -> dict[str, Any]:
    """start → lookup (GET url) → done: the Sales queue; error: the Support queue."""
    return {
        "nodes": {
            "start": {"type": "start", "config": {}, "next": {"next": "lookup"}},
            "lookup": {
                "type": "http_request",
                "config": {"method": "GET", "url": url, "save_as": "crm"},
                "next": {"done": "done", "error": "error"},
            },
            "done": {"type": "route", "config": {"target": {"type": "queue", "id": done_id}}, "next": {}},
            "error": {"type": "route", "config": {"target": {"type": "queue", "id": error_id}}, "next": {}},
        }
    }


@pytest.fixture
def flow_id(admin: Persona, crm) -> str:
    sales = make_queue(admin.center, name="Sales", extension="4323")
    support = make_queue(admin.center, name="Support", extension="4400")
    graph = http_graph(crm[0], str(sales.pk), str(support.pk))
    response = admin.client.post(FLOWS, {"name": "Main", "graph": graph}, content_type="application/json")
    assert response.status_code == 201, response.json()
    return response.json()["id"]


def _post(client: Client, url: str, body: dict[str, Any], headers: dict[str, str] | None = None):
    return client.post(url, body, content_type="application/json", **(headers or {}))


@pytest.mark.parametrize("who", ["admin_session", "admin_key"])
def test_write_access_runs_the_http_request(who, admin, api_keys, flow_id, crm) -> None:
    client, headers = (admin.client, {}) if who == "admin_session" else (Client(), bearer(api_keys["admin"]))
    response = _post(client, f"{FLOWS}{flow_id}/simulate/", SIMULATE_BODY, headers)
    assert response.status_code == 200, response.json()
    step = response.json()[-1]
    assert step["path"] == ["start", "lookup", "done"]
    assert step["destination"]["extension"] == "4323"
    assert crm[1] == ["/crm"]


@pytest.mark.parametrize("who", ["supervisor_session", "read_key"])
def test_readers_test_call_contacts_nothing_and_says_so(who, supervisor, api_keys, flow_id, crm) -> None:
    client, headers = (
        (supervisor.client, {}) if who == "supervisor_session" else (Client(), bearer(api_keys["read"]))
    )
    versions, events = FlowVersion.objects.count(), AuditEvent.objects.count()
    response = _post(client, f"{FLOWS}{flow_id}/simulate/", SIMULATE_BODY, headers)
    assert response.status_code == 200, response.json()
    step = response.json()[-1]
    assert step["path"] == ["start", "lookup", "error"]
    assert step["destination"]["extension"] == "4400"
    assert any("lookup: request not sent" in note for note in step["notes"]), step["notes"]
    assert crm[1] == []
    assert (FlowVersion.objects.count(), AuditEvent.objects.count()) == (versions, events)


@pytest.mark.parametrize("who", ["supervisor_session", "read_key", "admin_key"])
def test_validate_is_open_to_readers_and_contacts_nothing(who, supervisor, api_keys, flow_id, crm) -> None:
    client, headers = {
        "supervisor_session": (supervisor.client, {}),
        "read_key": (Client(), bearer(api_keys["read"])),
        "admin_key": (Client(), bearer(api_keys["admin"])),
    }[who]
    graph = http_graph(crm[0], "00000000-0000-0000-0000-000000000000", "00000000-0000-0000-0000-000000000000")
    versions = FlowVersion.objects.count()
    response = _post(client, f"{FLOWS}{flow_id}/validate/", {"graph": graph}, headers)
    assert response.status_code == 200, response.json()
    assert sorted((p["node"], p["code"]) for p in response.json()) == [
        ("done", "unknown_target"),
        ("error", "unknown_target"),
    ]
    assert crm[1] == [] and FlowVersion.objects.count() == versions


@pytest.mark.parametrize("action", ["validate", "simulate"])
def test_telephony_keys_and_agents_are_refused(action, agent, api_keys, flow_id, crm) -> None:
    body = SIMULATE_BODY if action == "simulate" else {"graph": {"nodes": {}}}
    url = f"{FLOWS}{flow_id}/{action}/"
    by_key = _post(Client(), url, body, bearer(api_keys["telephony"]))
    by_agent = _post(agent.client, url, body)
    assert (by_key.status_code, error_code(by_key)) == (403, "permission_denied")
    assert (by_agent.status_code, error_code(by_agent)) == (403, "permission_denied")
    anonymous = _post(Client(), url, body)
    assert anonymous.status_code in (401, 403)
    assert crm[1] == []


@pytest.mark.parametrize("action", ["validate", "simulate"])
def test_another_centers_flow_is_404(action, outsider, globex_admin_key, flow_id, crm) -> None:
    body = SIMULATE_BODY if action == "simulate" else {"graph": {"nodes": {}}}
    url = f"{FLOWS}{flow_id}/{action}/"
    assert _post(outsider.client, url, body).status_code == 404
    assert _post(Client(), url, body, bearer(globex_admin_key)).status_code == 404
    assert crm[1] == []


@pytest.mark.parametrize(("persona_name", "is_sent"), [("admin", True), ("supervisor", False)])
def test_portal_test_call_sends_the_request_only_for_administrators(
    request: pytest.FixtureRequest, persona_name: str, is_sent: bool, flow_id, crm
) -> None:
    persona: Persona = request.getfixturevalue(persona_name)
    response = persona.client.post(
        reverse("routing:flow_test_call", args=[flow_id]),
        {"caller": "+442079460018", "at": "2025-06-02T10:00", "digits": "", "version": 1},
    )
    assert response.status_code == 200
    path = response.context["steps"][-1]["path"]
    assert path == (["start", "lookup", "done"] if is_sent else ["start", "lookup", "error"])
    assert crm[1] == (["/crm"] if is_sent else [])
    if not is_sent:
        assert b"request not sent" in response.content
