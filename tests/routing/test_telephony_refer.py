"""POST /api/v1/telephony/refer answers every case in shared/sip.md §5 exactly, and then some."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import bearer, error_code
from tests.factories import make_api_key, make_member, make_queue
from virtual_agents import services as va_services
from voiso_byob.models import ApiKeyScope, ExternalTransferPolicy
from voiso_byob.sip import REFER_TO_MAX_LENGTH, ReferToError

URL = "/api/v1/telephony/refer"


@pytest.fixture
def telephony(acme, api_keys) -> Client:
    make_queue(acme, name="Sales", extension="4323")
    make_member(acme, extension="1001", email="ana@acme.example")
    client = Client()
    client.defaults.update(bearer(api_keys["telephony"]))
    return client


def refer(client: Client, refer_to: Any, **extra: Any) -> Any:
    return client.post(
        URL, {"call_id": "c-1", "refer_to": refer_to, **extra}, content_type="application/json"
    )


# shared/sip.md §5, row by row: (refer_to, HTTP, sip_status, expected destination or error code)
PUBLIC_EXAMPLES = [
    ("<sip:4323@acme.voiso.com>", 200, 202, {"type": "queue", "extension": "4323"}),
    ("sip:1001@acme.voiso.com", 200, 202, {"type": "user", "extension": "1001"}),
    ('"Sales" <sip:4323@acme.voiso.com;transport=tcp>', 200, 202, {"type": "queue", "extension": "4323"}),
    ("<tel:+1-212-555-0199>", 200, 202, {"type": "external", "number": "+12125550199"}),
    (
        "<sip:+12125550199@acme.voiso.com;user=phone>",
        200,
        202,
        {"type": "external", "number": "+12125550199"},
    ),
    (
        "<sip:1001@acme.voiso.com?Replaces=a%40b%3Bto-tag%3D1%3Bfrom-tag%3D2>",
        200,
        202,
        {"type": "user", "extension": "1001"},
    ),
    ("<sip:5555@acme.voiso.com>", 404, 404, "unknown_extension"),
    ("<sip:4323@globex.voiso.com>", 403, 403, "foreign_domain"),
    ("<sip:4323@pbx.example.net>", 403, 403, "foreign_domain"),
    ("<sip:4323@acme.voiso.com", 400, 400, "malformed_uri"),
    ("<https://acme.voiso.com/4323>", 400, 400, "unsupported_scheme"),
    ("<tel:555-0199>", 400, 400, "invalid_number"),
]

MORE_CASES = [
    ("<SIP:4323@ACME.VOISO.COM>", 200, 202, {"type": "queue", "extension": "4323"}),
    ("<sip:4323@acme.voiso.com.>", 200, 202, {"type": "queue", "extension": "4323"}),
    ("<sips:4323@acme.voiso.com:5061;transport=tls>", 200, 202, {"type": "queue", "extension": "4323"}),
    ("<sip:%34323@acme.voiso.com>", 200, 202, {"type": "queue", "extension": "4323"}),
    ("<sip:4323@acme.voiso.com.evil.net>", 403, 403, "foreign_domain"),
    ("<sip:4323@evil-acme.voiso.com>", 403, 403, "foreign_domain"),
    ("<sip:4323@acme.voiso.co>", 403, 403, "foreign_domain"),
    ("<sip:４３２３@acme.voiso.com>", 400, 400, "malformed_uri"),
    ("<sip:%D9%A4%D9%A3%D9%A2%D9%A3@acme.voiso.com>", 404, 404, "unknown_extension"),
    ("<sip:sales@acme.voiso.com>", 404, 404, "unknown_extension"),
    ("<sip:432@acme.voiso.com>", 404, 404, "unknown_extension"),
    ("<sip:4323@acme.voiso.com>, <sip:1001@acme.voiso.com>", 400, 400, "multiple_values"),
    ("<sip:4323@acme.voiso.com>\r\nX-Evil: 1", 400, 400, "malformed_uri"),
    ("<sip:user:secret@acme.voiso.com>", 400, 400, "credentials_in_uri"),
    ("<sip:4323@acme.voiso.com?Route=%3Csip:evil%3E>", 403, 403, "header_not_allowed"),
    ("2001", 400, 400, "malformed_uri"),
    # Validation errors of the request still tell the switch what to answer (issue #12 item 4).
    ("", 400, 400, None),
    ("   ", 400, 400, "malformed_uri"),
    ("<sip:" + "1" * 2000 + "@acme.voiso.com>", 404, 404, "unknown_extension"),  # within the bound
    ("<sip:" + "1" * 3000 + "@acme.voiso.com>", 400, 400, None),
    ("<sip:4323@acme.voiso.com>" + " " * REFER_TO_MAX_LENGTH, 400, 400, None),
    ("x" * 5000, 400, 400, None),
]

# Issue #12, items 1-3, 5 and 6: well-formed values answered on their merits.
ISSUE_12_CASES = [
    # 1. phone-context is not a prefix; a local number reaches only an extension of our own plan.
    ("<tel:555-0123;phone-context=+1-201>", 404, 404, "unknown_number"),
    ("<sip:555-0123;phone-context=+1-201@acme.voiso.com;user=phone>", 404, 404, "unknown_number"),
    ("<tel:4323;phone-context=+1-201>", 404, 404, "unknown_number"),
    ("<tel:4323;phone-context=globex.voiso.com>", 404, 404, "unknown_number"),
    ("<tel:4323;phone-context=acme.voiso.com>", 200, 202, {"type": "queue", "extension": "4323"}),
    ("<sip:1001;phone-context=acme.voiso.com@acme.voiso.com;user=phone>", 200, 202, {"type": "user"}),
    ("<sip:4323;phone-context=acme.voiso.com@globex.voiso.com;user=phone>", 403, 403, "foreign_domain"),
    ("<tel:5555;phone-context=acme.voiso.com>", 404, 404, "unknown_extension"),
    # 2. ext and isub are carried beside the number, never dropped.
    (
        "<tel:+1-201-555-0123;ext=1234>",
        200,
        202,
        {"type": "external", "number": "+12015550123", "extension": "1234"},
    ),
    (
        "<tel:+1-201-555-0123;isub=1234>",
        200,
        202,
        {"type": "external", "number": "+12015550123", "subaddress": "1234"},
    ),
    (
        "<sip:+1-201-555-0123;ext=1234@acme.voiso.com;user=phone>",
        200,
        202,
        {"type": "external", "number": "+12015550123", "extension": "1234"},
    ),
    ("<tel:4323;ext=12;phone-context=acme.voiso.com>", 404, 404, "unknown_extension"),
    # 3. A REFER starts a call: any method but INVITE is refused.
    ("<sip:4323@acme.voiso.com;method=SUBSCRIBE>", 403, 403, "unsupported_method"),
    ("<sip:4323@acme.voiso.com;method=BYE>", 403, 403, "unsupported_method"),
    ("<sip:4323@acme.voiso.com;method=REGISTER>", 403, 403, "unsupported_method"),
    ("<sip:4323@acme.voiso.com;method=invite>", 403, 403, "unsupported_method"),  # case-sensitive
    ("<sip:4323@acme.voiso.com;method=INVITE>", 200, 202, {"type": "queue", "extension": "4323"}),
    ("sip:4323@acme.voiso.com;method=BYE", 200, 202, {"type": "queue"}),  # a header param
    # 5. Policy refusals are not syntax errors.
    (
        "<sip:4323@acme.voiso.com?subject=project%20x&priority=urgent>",
        200,
        202,
        {"type": "queue", "extension": "4323"},
    ),
    ("<sip:4323@acme.voiso.com?Call-ID=abc>", 403, 403, "header_not_allowed"),
    ("<tel:+2065551212>", 404, 404, "invalid_number"),
    ("<tel:+1212555019>", 409, 484, "invalid_number"),
    ("<tel:+1-212-555-0199-9999>", 404, 404, "invalid_number"),
    # 6. RFC 4475 well-formed values.
    ("<sip:4323%00@acme.voiso.com>", 404, 404, "unknown_extension"),
    ("<sip:4323%FF@acme.voiso.com>", 404, 404, "unknown_extension"),
    ("<sip:%00@acme.voiso.com>", 404, 404, "unknown_extension"),
    ('"Sales\\\x01\\\x1f" <sip:4323@acme.voiso.com>', 200, 202, {"type": "queue", "extension": "4323"}),
    ('"' + "S" * 1500 + '" <sip:4323@acme.voiso.com>', 200, 202, {"type": "queue", "extension": "4323"}),
]


@pytest.mark.parametrize(
    ("refer_to", "http", "sip_status", "expected"), PUBLIC_EXAMPLES + MORE_CASES + ISSUE_12_CASES
)
def test_refer_answers(telephony: Client, refer_to: str, http: int, sip_status: int, expected: Any) -> None:
    response = refer(telephony, refer_to)
    assert response.status_code == http, response.content
    body = response.json()
    if http == 200:
        assert body["sip_status"] == sip_status
        for key, value in expected.items():
            assert body["destination"][key] == value
        return
    assert body["error"]["sip_status"] == sip_status
    if expected is None:
        assert error_code(response) == "validation_error" and body["error"]["fields"]["refer_to"]
    else:
        assert error_code(response) == expected


@pytest.mark.parametrize(("refer_to", "http", "sip_status", "expected"), PUBLIC_EXAMPLES + ISSUE_12_CASES)
def test_the_orm_resolver_and_ingestion_agree_with_the_api(
    acme, telephony: Client, refer_to: str, http: int, sip_status: int, expected: Any
) -> None:
    """routing.refer.resolve_refer (ORM) and reporting.ingest.resolve_targets (the events' own
    query) answer as the endpoint's one-query path does."""
    from reporting.ingest import resolve_targets
    from routing.refer import resolve_refer

    answer = refer(telephony, refer_to).json()
    try:
        _, destination = resolve_refer(acme, refer_to)
    except ReferToError as exc:
        assert (exc.code, exc.sip_status) == (answer["error"]["code"], answer["error"]["sip_status"])
    else:
        assert answer["destination"] == destination.as_dict()
    target = resolve_targets(acme, [refer_to])[refer_to]
    assert target.error == answer.get("error", {}).get("code", "")
    assert target.type == answer.get("destination", {}).get("type", "")
    # An external number's ;ext= is kept with the handoff, as the switch is told to dial it.
    assert target.extension == answer.get("destination", {}).get("extension", "")


def test_an_external_destination_carries_ext_and_isub(telephony: Client) -> None:
    body = refer(telephony, "<tel:+1-201-555-0123;ext=12-34;isub=a1>").json()
    assert body == {
        "sip_status": 202,
        "destination": {
            "type": "external",
            "number": "+12015550123",
            "extension": "1234",
            "subaddress": "a1",
        },
    }


def test_destinations_carry_names_and_uris(telephony: Client) -> None:
    queue = refer(telephony, "<sip:4323@acme.voiso.com>").json()["destination"]
    assert queue == {
        "type": "queue",
        "extension": "4323",
        "name": "Sales",
        "sip_uri": "sip:4323@acme.voiso.com",
    }
    user = refer(telephony, "sip:1001@acme.voiso.com").json()["destination"]
    assert user["type"] == "user" and user["name"] == "ana@acme.example"


def test_attended_transfer_reports_replaces(telephony: Client) -> None:
    body = refer(telephony, "<sip:1001@acme.voiso.com?Replaces=a%40b%3Bto-tag%3D1%3Bfrom-tag%3D2>").json()
    assert body["replaces"] == {"call_id": "a@b", "to_tag": "1", "from_tag": "2", "early_only": False}


def test_a_virtual_agent_with_an_extension_is_a_refer_target(acme, telephony: Client) -> None:
    integration = va_services.create_integration(
        center=acme, provider="generic_sip", label="House", credentials=None, by="t"
    )
    bot = va_services.create_virtual_agent(
        integration=integration,
        by="t",
        name="Overflow bot",
        sip_uri="sip:bot@10.0.0.5;transport=tcp",
        extension="7001",
        connect=True,
    )
    body = refer(telephony, "<sip:7001@acme.voiso.com>").json()
    assert body["destination"] == {
        "type": "virtual_agent",
        "extension": "7001",
        "name": "Overflow bot",
        "sip_uri": "sip:bot@10.0.0.5;transport=tcp",
    }
    va_services.update_virtual_agent(agent=bot, by="t", is_enabled=False)
    response = refer(telephony, "<sip:7001@acme.voiso.com>")
    assert response.status_code == 409
    assert error_code(response) == "target_unavailable" and response.json()["error"]["sip_status"] == 480


def test_external_numbers_follow_the_center_policy(acme, telephony: Client) -> None:
    acme.external_transfer_policy = ExternalTransferPolicy.BLOCKED
    acme.save()
    for value in ("<tel:+1-212-555-0199>", "<sip:+12125550199@acme.voiso.com;user=phone>"):
        response = refer(telephony, value)
        assert response.status_code == 403 and error_code(response) == "external_not_allowed"
        assert response.json()["error"]["sip_status"] == 403


def test_the_key_decides_the_tenant(globex, telephony: Client) -> None:
    _, raw = make_api_key(globex, ApiKeyScope.TELEPHONY)
    response = Client().post(
        URL,
        {"call_id": "c", "refer_to": "<sip:4323@acme.voiso.com>"},
        content_type="application/json",
        **bearer(raw),
    )
    assert response.status_code == 403 and error_code(response) == "foreign_domain"


@pytest.mark.parametrize("scope", ["read", "admin"])
def test_only_telephony_keys(api_keys, scope: str, telephony: Client) -> None:
    response = Client().post(
        URL,
        {"call_id": "c", "refer_to": "sip:1001@acme.voiso.com"},
        content_type="application/json",
        **bearer(api_keys[scope]),
    )
    assert response.status_code == 403


def test_sessions_and_anonymous_are_refused(admin, telephony: Client) -> None:
    body = {"call_id": "c", "refer_to": "sip:1001@acme.voiso.com"}
    assert admin.client.post(URL, body, content_type="application/json").status_code == 401
    assert Client().post(URL, body, content_type="application/json").status_code == 401


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"call_id": "c"},
        {"refer_to": "sip:1001@acme.voiso.com"},
        {"call_id": "c", "refer_to": 42},
        {"call_id": "c", "refer_to": ["sip:1001@acme.voiso.com"]},
        {"call_id": "c" * 300, "refer_to": "sip:x@y"},
        {"call_id": "c", "refer_to": "sip:1001@acme.voiso.com", "headers": "X-A: 1"},
    ],
)
def test_bad_requests_are_400_with_fields(telephony: Client, payload: dict[str, Any]) -> None:
    response = telephony.post(URL, payload, content_type="application/json")
    assert response.status_code == 400 and response.json()["error"]["fields"]
    assert response.json()["error"]["sip_status"] == 400


def test_malformed_json_is_400(telephony: Client) -> None:
    response = telephony.post(URL, "{not json", content_type="application/json")
    assert response.status_code == 400 and error_code(response) == "parse_error"


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=st.text(max_size=300))
def test_never_a_500(telephony: Client, value: str) -> None:
    response = refer(telephony, value)
    assert response.status_code in (200, 400, 403, 404, 409)
    if response.status_code != 200:
        assert response.json()["error"]["sip_status"] in (400, 403, 404, 480, 484)


def test_one_sql_query_per_refer_after_warm_up(telephony: Client, django_assert_max_num_queries) -> None:
    refer(telephony, "<sip:4323@acme.voiso.com>")  # warm-up: caches the key, records its use
    with django_assert_max_num_queries(1):
        assert refer(telephony, "<sip:4323@acme.voiso.com>").status_code == 200
    with django_assert_max_num_queries(1):
        assert refer(telephony, "<sip:4323@globex.voiso.com>").status_code == 403


def test_a_revoked_key_stops_working_at_once_despite_the_cache(acme, telephony: Client) -> None:
    from voiso_byob.models import ApiKey
    from voiso_byob.services import revoke_api_key

    assert refer(telephony, "<sip:4323@acme.voiso.com>").status_code == 200
    revoke_api_key(key=ApiKey.objects.get(contact_center=acme, scope="telephony"), by="t")
    response = refer(telephony, "<sip:4323@acme.voiso.com>")
    assert response.status_code == 401 and error_code(response) == "revoked_api_key"


def test_a_cache_outage_falls_back_to_the_database(telephony: Client, monkeypatch) -> None:
    from django.core.cache import cache

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("cache is down")

    for method in ("get", "set", "add", "delete_many"):
        monkeypatch.setattr(cache, method, down)
    assert refer(telephony, "<sip:4323@acme.voiso.com>").status_code == 200


# --- the plain-view plumbing both telephony endpoints share (voiso_byob.plain_api) --------


@pytest.mark.parametrize("url", [URL, "/api/v1/telephony/route"])
def test_other_methods_get_405_in_the_error_shape(telephony: Client, url: str) -> None:
    response = telephony.get(url)
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"
    assert "POST" in response["Allow"]


@pytest.mark.parametrize("url", [URL, "/api/v1/telephony/route"])
@pytest.mark.parametrize(
    ("send", "http", "sip_status"),
    [
        (lambda c, url: c.get(url), 405, 500),
        (lambda c, url: c.post(url, {"call_id": "c"}), 415, 500),
        (lambda c, url: c.post(url, "{not json", content_type="application/json"), 400, 400),
        (lambda c, url: c.post(url, "[]", content_type="application/json"), 400, 400),
        (lambda c, url: c.post(url, "{}", content_type="application/json"), 400, 400),
        (lambda c, url: Client().post(url, "{}", content_type="application/json"), 401, 500),
        (
            lambda c, url: Client().post(
                url, "{}", content_type="application/json", HTTP_AUTHORIZATION="Bearer vbk_nope"
            ),
            401,
            500,
        ),
    ],
)
def test_every_refusal_carries_a_sip_status(
    telephony: Client, url: str, send: Any, http: int, sip_status: int
) -> None:
    """Issue #12 item 4: the switch always knows what to answer. A refusal of the switch's own
    request (its key, method or content type) is its set-up failing: 500, never "fix your REFER"."""
    response = send(telephony, url)
    assert response.status_code == http
    assert response.json()["error"]["sip_status"] == sip_status


def test_a_key_of_another_scope_is_a_500_for_the_switch(api_keys, telephony: Client) -> None:
    response = Client(**bearer(api_keys["read"])).post(
        URL, {"call_id": "c", "refer_to": "sip:1001@acme.voiso.com"}, content_type="application/json"
    )
    assert response.status_code == 403 and error_code(response) == "permission_denied"
    assert response.json()["error"]["sip_status"] == 500


def test_the_events_endpoint_answers_no_sip_request(telephony: Client) -> None:
    # It shares the plain views' plumbing, but nobody answers a SIP request with its refusals.
    response = telephony.get("/api/v1/telephony/events")
    assert response.status_code == 405 and "sip_status" not in response.json()["error"]


@pytest.mark.parametrize("url", [URL, "/api/v1/telephony/route"])
def test_only_json_bodies(telephony: Client, url: str) -> None:
    response = telephony.post(url, {"call_id": "c"})  # form-encoded
    assert response.status_code == 415 and error_code(response) == "unsupported_media_type"


@pytest.mark.parametrize("body", ["[]", '"text"', "42", "null"])
def test_the_body_must_be_an_object(telephony: Client, body: str) -> None:
    response = telephony.post(URL, body, content_type="application/json")
    assert response.status_code == 400 and error_code(response) == "invalid"


def test_a_stranger_learns_nothing_from_an_invalid_body(db) -> None:
    # Authentication is decided before validation: a bad key gets 401 whatever the body.
    response = Client().post(URL, "{}", content_type="application/json", HTTP_AUTHORIZATION="Bearer vbk_nope")
    assert response.status_code == 401 and error_code(response) == "invalid_api_key"
    assert response["WWW-Authenticate"] == "Bearer"


def test_the_schema_still_describes_both_endpoints(anonymous: Client) -> None:
    schema = anonymous.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    for path, request_schema in (
        ("/api/v1/telephony/refer", "ReferRequestRequest"),
        ("/api/v1/telephony/route", "RouteRequestRequest"),
    ):
        operation = schema["paths"][path]["post"]
        assert operation["tags"] == ["telephony"]
        body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        assert body.endswith(request_schema)
        assert "200" in operation["responses"]
