"""The fake providers themselves: each check the adapter tests rely on (`violations == []`) can fail."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.virtual_agents.fake_providers import ElevenLabsFake, FakeProvider, RetellFake, VapiFake

AGENT_PROMPT = ("conversation_config", "agent", "prompt")


def send(fake: FakeProvider, method: str, path: str, json: Any = None, **headers: str) -> httpx.Response:
    auth = {"xi-api-key": fake.api_key} if fake.provider == "elevenlabs" else {}
    auth |= {"Authorization": f"Bearer {fake.api_key}"} if fake.provider != "elevenlabs" else {}
    return httpx.request(method, f"{fake.url}{path}", json=json, headers={**auth, **headers}, timeout=5)


def el_tool(transfer: dict[str, Any]) -> dict[str, Any]:
    tool = {
        "name": "transfer_to_number",
        "params": {"system_tool_type": "transfer_to_number", "transfers": [transfer]},
    }
    return {"conversation_config": {"agent": {"prompt": {"built_in_tools": {"transfer_to_number": tool}}}}}


GOOD_EL_TRANSFER = {
    "transfer_destination": {"type": "sip_uri", "sip_uri": "sip:4323@acme.voiso.com"},
    "condition": "Caller asks for sales",
    "transfer_type": "sip_refer",
}
GOOD_VAPI_DESTINATION = {
    "type": "sip",
    "sipUri": "sip:4323@acme.voiso.com",
    "transferPlan": {"mode": "blind-transfer", "sipVerb": "refer"},
}
VAPI_MODEL = {"provider": "openai", "model": "gpt-4o", "temperature": 0.3}


def retell_tools(fake: RetellFake, *extra: dict[str, Any], keep: int = 2) -> dict[str, Any]:
    return {"general_tools": fake.llms["llm_01"]["general_tools"][:keep] + list(extra)}


GOOD_RETELL_TOOL = {
    "type": "transfer_call",
    "name": "voiso_transfer_1_sales",
    "transfer_destination": {"type": "predefined", "number": "sip:4323@acme.voiso.com"},
    "transfer_option": {"type": "cold_transfer", "cold_transfer_mode": "sip_refer"},
}

# (provider, method, path, json or a function of the fake, a fragment of the violation)
BAD_REQUESTS: list[tuple[str, str, str, Any, str]] = [
    ("elevenlabs", "GET", "/v1/convai/agent", None, "not a documented endpoint"),
    ("elevenlabs", "GET", "/v1/convai/agents?page_size=500", None, "page_size"),
    ("elevenlabs", "GET", "/v1/convai/agents?limit=5", None, "unexpected query"),
    (
        "elevenlabs",
        "POST",
        "/v1/convai/phone-numbers",
        # A Twilio import without its sid and token: refused by the SDK's type before our check.
        {"provider": "twilio", "phone_number": "+1999", "label": "x"},
        "not what the provider defines",
    ),
    (
        "elevenlabs",
        "POST",
        "/v1/convai/phone-numbers",
        {
            "provider": "sip_trunk",
            "phone_number": "+1999",
            "label": "x",
            "outbound_trunk_config": {"address": "sip:acme.voiso.com", "transport": "tls"},
            "inbound_trunk_config": {"allowed_addresses": []},
        },
        "outbound address",
    ),
    (
        "elevenlabs",
        "PATCH",
        "/v1/convai/agents/agent_01",
        {"conversation_config": {"agent": {"prompt": {"prompt": "new", "built_in_tools": {}}}}},
        "writes outside our subtree",
    ),
    (
        "elevenlabs",
        "PATCH",
        "/v1/convai/agents/agent_01",
        el_tool({**GOOD_EL_TRANSFER, "transfer_type": "conference"}),
        "transfer_type must be 'sip_refer'",
    ),
    (
        "elevenlabs",
        "PATCH",
        "/v1/convai/agents/agent_01",
        el_tool(
            {**GOOD_EL_TRANSFER, "transfer_destination": {"type": "sip_uri", "sip_uri": "sip:1@evil.example"}}
        ),
        "not on acme.voiso.com",
    ),
    (
        "vapi",
        "PATCH",
        "/assistant/asst-01",
        {"model": {"toolIds": ["tool-crm", "tool-end-call"]}},
        "model.provider is required",
    ),
    (
        "vapi",
        "PATCH",
        "/assistant/asst-01",
        {"model": {**VAPI_MODEL, "messages": [], "toolIds": ["tool-crm", "tool-end-call"]}},
        "model.messages was dropped or changed",
    ),
    (
        "vapi",
        "PATCH",
        "/assistant/asst-01",
        lambda fake: {"model": {**fake.assistants["asst-01"]["model"], "toolIds": ["tool-crm"]}},
        "dropped the customer's tool 'tool-end-call'",
    ),
    (
        "vapi",
        "POST",
        "/credential",
        {
            "provider": "byo-sip-trunk",
            "name": "x",
            "gateways": [{"ip": "acme.voiso.com", "outboundEnabled": True}],
        },
        "must be an IPv4 address",
    ),
    (
        "vapi",
        "POST",
        "/credential",
        {"provider": "byo-sip-trunk", "name": "x", "gateways": [{"ip": "203.0.113.10"}]},
        "no outbound gateway to acme.voiso.com",
    ),
    (
        "vapi",
        "POST",
        "/tool",
        {
            "type": "transferCall",
            "destinations": [
                {**GOOD_VAPI_DESTINATION, "transferPlan": {"mode": "blind-transfer", "sipVerb": "dial"}}
            ],
        },
        "sipVerb must be an object",
    ),
    ("vapi", "DELETE", "/tool/tool-crm", None, "still attached"),
    (
        "retell",
        "POST",
        "/v2/list-agents",
        {"filter_criteria": {"channel": {"op": "eq", "value": "voice"}}},
        "filter_criteria.channel.type is required",
    ),
    (
        "retell",
        "POST",
        "/v2/list-agents?limit=5",
        {"filter_criteria": {"channel": {"op": "eq", "type": "string", "value": "voice"}}, "limit": 10},
        "body.limit is not a field the provider defines",
    ),
    (
        "retell",
        "POST",
        "/import-phone-number",
        {"phone_number": "+1999", "termination_uri": "sip:acme.voiso.com", "transport": "TLS"},
        "termination_uri must be",
    ),
    (
        "retell",
        "PATCH",
        "/update-retell-llm/llm_01",
        lambda fake: retell_tools(fake, GOOD_RETELL_TOOL, keep=1),
        "dropped or changed the customer's tool 'lookup_order'",
    ),
    (
        "retell",
        "PATCH",
        "/update-retell-llm/llm_01",
        lambda fake: retell_tools(
            fake,
            {
                **GOOD_RETELL_TOOL,
                "transfer_option": {"type": "cold_transfer", "cold_transfer_mode": "sip_invite"},
            },
        ),
        "cold_transfer_mode must be 'sip_refer'",
    ),
    # retell-sdk leaves `+` as is in a path segment; an adapter must send what the SDK sends.
    ("retell", "DELETE", "/delete-phone-number/%2B19990000042", None, "not encoded as the SDK does"),
]


@pytest.mark.parametrize(("provider", "method", "path", "body", "fragment"), BAD_REQUESTS)
def test_a_wrong_request_is_a_violation_answered_400(
    request: pytest.FixtureRequest, provider: str, method: str, path: str, body: Any, fragment: str
) -> None:
    fake = request.getfixturevalue(f"{provider}_fake")
    if provider == "retell" and method == "DELETE":
        fake.phone_numbers["+19990000042"] = {"phone_number": "+19990000042"}

    response = send(fake, method, path, body(fake) if callable(body) else body)

    assert response.status_code == 400
    assert len(fake.violations) == 1 and fragment in fake.violations[0], fake.violations


def test_a_json_body_needs_its_content_type(vapi_fake: VapiFake) -> None:
    response = httpx.post(
        f"{vapi_fake.url}/tool",
        content=b'{"type": "transferCall", "destinations": []}',
        headers={"Authorization": f"Bearer {vapi_fake.api_key}", "Content-Type": "text/plain"},
    )

    assert response.status_code == 400
    assert "Content-Type" in vapi_fake.violations[0]


def test_a_wrong_key_is_401_and_a_malformed_header_also_a_violation(retell_fake: RetellFake) -> None:
    wrong = httpx.get(f"{retell_fake.url}/get-concurrency", headers={"Authorization": "Bearer nope"})
    malformed = httpx.get(
        f"{retell_fake.url}/get-concurrency", headers={"Authorization": retell_fake.api_key}
    )

    assert (wrong.status_code, malformed.status_code) == (401, 401)
    assert retell_fake.violations == ["Authorization header not 'Bearer <key>'"]


def test_elevenlabs_patch_deep_merges_and_null_removes(elevenlabs_fake: ElevenLabsFake) -> None:
    send(elevenlabs_fake, "PATCH", "/v1/convai/agents/agent_01", el_tool(GOOD_EL_TRANSFER))
    removal = {"conversation_config": {"agent": {"prompt": {"built_in_tools": {"transfer_to_number": None}}}}}
    send(elevenlabs_fake, "PATCH", "/v1/convai/agents/agent_01", removal)

    prompt = elevenlabs_fake.agents["agent_01"]["conversation_config"]["agent"]["prompt"]
    assert sorted(prompt["built_in_tools"]) == ["end_call", "language_detection"]
    assert prompt["tool_ids"] == ["tool_crm_lookup", "tool_order_status"]
    assert elevenlabs_fake.violations == []


def test_faults_are_used_up_in_order(vapi_fake: VapiFake) -> None:
    vapi_fake.fail("GET", "/assistant", 503, times=2)

    statuses = [send(vapi_fake, "GET", "/assistant?limit=1").status_code for _ in range(3)]

    assert statuses == [503, 503, 200]
    assert vapi_fake.calls == [("GET", "/assistant")] * 3
