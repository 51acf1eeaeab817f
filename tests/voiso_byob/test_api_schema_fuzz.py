"""Every operation of /api/schema/, fuzzed from the schema itself (schemathesis, in process over WSGI).

For each operation, requests generated from its declared parameters and bodies (valid ones and
deliberately invalid ones) are sent as acme's administrator (telephony operations with acme's
telephony key), and every answer must:
- never be a 5xx;
- have a status code, content type and body the schema declares for the operation;
- when it is a refusal (4xx), be in the one error shape `{"error": {"code", "message", …}}`.

Path ids are drawn from real objects of acme (so the operations get past 404), another center's
objects (which must be 404) and the generated ones. Bot provider calls go to a local fake.

Bounded for `make test` (about a minute on two cores): few examples per operation, derandomized,
no example database, so a run is reproducible. Run it alone with `pytest -m schema_fuzz`;
SCHEMA_FUZZ_EXAMPLES=200 explores further.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from django.test import Client
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import load_all_checks, not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from campaigns import services as campaign_services
from routing.services import create_flow, create_phone_number, publish_flow
from tests.factories import make_api_key, make_member, make_queue
from tests.reporting.conftest import call_events, post_events
from tests.routing.test_telephony_route import menu_graph
from tests.virtual_agents.fake_providers import API_KEYS, VapiFake
from virtual_agents import services as va_services
from voiso_byob.models import ApiKeyScope, ContactCenter
from voiso_byob.services import invite_member
from voiso_byob.wsgi import application

pytestmark = [pytest.mark.schema_fuzz, pytest.mark.django_db]

MAX_EXAMPLES = int(os.environ.get("SCHEMA_FUZZ_EXAMPLES", "12"))

load_all_checks()
schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
schema.config.generation.update(max_examples=MAX_EXAMPLES, deterministic=True, database="none")


@dataclass
class World:
    """acme with one object of every kind, and keys; globex with its own (foreign) objects."""

    admin_key: str
    telephony_key: str
    ids: dict[str, list[str]]  # path parameter kind → real ids (acme's first, then globex's)


def _objects(center: ContactCenter, *, number: str, prefix: str, telephony_key: str) -> dict[str, str]:
    sales = make_queue(center, name="Sales", extension="4323")
    support = make_queue(center, name="Support", extension="4400")
    graph = menu_graph(str(sales.pk), str(support.pk))
    flow = create_flow(center=center, by="tests", name="Main line", graph=graph)
    publish_flow(flow=flow, by="tests")
    phone = create_phone_number(center=center, by="tests", number=number, flow=flow)
    member = make_member(center, extension="1001")
    invitation, _ = invite_member(
        center=center, email=f"invited@{prefix}.example", role="agent", by="tests", portal_url="http://t"
    )
    integration = va_services.create_integration(
        center=center, provider="vapi", label="Vapi", credentials={"api_key": API_KEYS["vapi"]}, by="tests"
    )
    bot = va_services.create_virtual_agent(
        integration=integration,
        by="tests",
        name="Front desk",
        provider_agent_id="asst-01",
        extension="7001",
        handoff_targets=["4323"],
        # The Vapi fake serves acme's SIP domain only; globex's bot stays unconnected.
        connect=center.slug == "acme",
    )
    # A campaign with a lead to dial (so `start` can succeed) and a do-not-call entry of its own.
    campaign = campaign_services.create_campaign(
        center=center,
        by="tests",
        name="Renewals",
        virtual_agents=[bot],
        handoff_queue=sales,
        caller_ids=[phone],
    )
    campaign_services.import_leads(
        campaign=campaign, rows=[campaign_services.LeadRow("+442079460101", name="Ada")], by="tests"
    )
    dnc = campaign_services.add_do_not_call(
        center=center, phone="+442079460102", by="tests", campaign=campaign
    )
    # A Call-ID with a slash and an @, as SIP allows: the detail's path takes the rest of the URL.
    call_id = f"{prefix}-call/1@pbx"
    assert post_events(Client(), call_events(call_id, start=0), key=telephony_key).status_code == 202
    return {
        "queue": str(sales.pk),
        "flow": str(flow.pk),
        "number": str(phone.pk),
        "member": str(member.pk),
        "invitation": str(invitation.pk),
        "integration": str(integration.pk),
        "virtual_agent": str(bot.pk),
        "call": call_id,
        "campaign": str(campaign.pk),
        "dnc": str(dnc.pk),
    }


@contextmanager
def connection_kept() -> Iterator[None]:
    """As Django's test client does: a WSGI request must not close the test's connection.

    The handler closes connections after each request (CONN_MAX_AGE); inside the test's
    transaction that ends the transaction on PostgreSQL (SQLite's in-memory database survives).
    Around each call only: Django's test client (used by the fixtures) connects them again.
    """
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    try:
        yield
    finally:
        signals.request_started.connect(close_old_connections)
        signals.request_finished.connect(close_old_connections)


@pytest.fixture
def world(acme: ContactCenter, globex: ContactCenter, settings: Any) -> Iterator[World]:
    settings.SIP_PROXY_ADDRESSES = ["203.0.113.10"]
    with VapiFake(API_KEYS["vapi"]) as fake:
        settings.PROVIDER_API_URLS = {**settings.PROVIDER_API_URLS, "vapi": fake.url}
        globex.byob_enabled = True
        globex.save(update_fields=["byob_enabled"])
        telephony_key = make_api_key(acme, ApiKeyScope.TELEPHONY)[1]
        ours = _objects(acme, number="+442079460018", prefix="acme", telephony_key=telephony_key)
        theirs = _objects(
            globex,
            number="+442079460019",
            prefix="globex",
            telephony_key=make_api_key(globex, ApiKeyScope.TELEPHONY)[1],
        )
        yield World(
            admin_key=make_api_key(acme, ApiKeyScope.ADMIN)[1],
            telephony_key=telephony_key,
            ids={kind: [ours[kind], theirs[kind]] for kind in ours},
        )


# The object each path parameter names, by the path's first segment after /api/v1/.
_KINDS = {
    "queues": "queue",
    "flows": "flow",
    "numbers": "number",
    "members": "member",
    "invitations": "invitation",
    "integrations": "integration",
    "virtual-agents": "virtual_agent",
    "calls": "call",
    "campaigns": "campaign",
    "dnc": "dnc",
    "webhooks": "integration",
}


def _with_real_ids(case: Any, world: World) -> None:
    """Mostly replace the generated path ids with acme's (or globex's) real ones.

    The choice follows from the generated value itself, so it is as reproducible as the case
    (a `@schema.given()` strategy would rule out the schema's own examples).
    """
    if not case.path_parameters:
        return
    kind = _KINDS[case.operation.path.split("/")[3]]
    generated = repr(sorted(case.path_parameters.items())).encode()
    which = ["ours", "ours", "ours", "theirs", "generated"][hashlib.sha256(generated).digest()[0] % 5]
    if which == "generated":
        return
    real = world.ids[kind][0 if which == "ours" else 1]
    for name in case.path_parameters:
        if name in {"id", "call_id", "integration_id"}:
            case.path_parameters[name] = real
    if "provider" in case.path_parameters:
        case.path_parameters["provider"] = "vapi"


def _with_real_filters(case: Any, world: World) -> None:
    """Reports: mostly a valid range around the world's calls, and real ids (acme's or globex's,
    which must be refused) in place of the generated filter ids, so both answers get exercised."""
    if not case.operation.path.startswith("/api/v1/reports/"):
        return
    generated = repr(sorted((case.query or {}).items())).encode()
    which = ["ours", "ours", "theirs", "generated"][hashlib.sha256(generated).digest()[0] % 4]
    if which == "generated":
        return
    query = dict(case.query or {})
    query.update(start="2026-05-01", end="2026-05-07")  # the world's calls start on May 1
    for name in ("virtual_agent", "queue", "campaign"):
        if name in query:
            query[name] = [world.ids[name][0 if which == "ours" else 1]]
    case.query = query


def error_shape(ctx: Any, response: Any, case: Any) -> bool | None:
    """Every refusal is `{"error": {"code": text, "message": text, …}}`, as JSON."""
    if not 400 <= response.status_code < 500:
        return None
    try:
        body = response.json()
    except ValueError:
        raise AssertionError(f"a {response.status_code} that is not JSON: {response.text[:200]!r}") from None
    assert isinstance(body, dict) and set(body) == {"error"}, f"not the error shape: {body!r}"
    error = body["error"]
    assert isinstance(error.get("code"), str) and error["code"], f"no error code: {body!r}"
    assert isinstance(error.get("message"), str) and error["message"], f"no error message: {body!r}"
    return True


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_operation_conforms_to_the_schema(case: Any, world: World) -> None:
    _with_real_ids(case, world)
    _with_real_filters(case, world)
    key = world.telephony_key if case.operation.path.startswith("/api/v1/telephony/") else world.admin_key
    headers = {"Authorization": f"Bearer {key}"}
    with connection_kept():
        response = case.call(headers=headers)
    case.validate_response(response, checks=CHECKS, additional_checks=[error_shape], headers=headers)
