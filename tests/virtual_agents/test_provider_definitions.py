"""The stand-ins hold each request to the provider's published definition (the official SDKs' types).

Each case is a request a real provider would refuse or misread: a field the SDK type does not
define, a required field left out, a value of the wrong type. The stand-in must record a
violation and answer 400, whatever our own reading of the docs said.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.virtual_agents.fake_providers import ElevenLabsFake, FakeProvider, RetellFake, VapiFake
from tests.virtual_agents.fake_providers.definitions import conform

SIP_DOMAIN = "acme.voiso.com"


def send(fake: FakeProvider, method: str, path: str, body: Any, params: dict[str, str] | None = None) -> int:
    headers = (
        {"xi-api-key": fake.api_key}
        if fake.provider == "elevenlabs"
        else {"Authorization": f"Bearer {fake.api_key}"}
    )
    return httpx.request(method, fake.url + path, json=body, params=params, headers=headers).status_code


def sip_transfer(plan: dict[str, Any]) -> dict[str, Any]:
    return {"type": "sip", "sipUri": f"sip:4323@{SIP_DOMAIN}", "transferPlan": plan}


VAPI_CREDENTIAL = {
    "provider": "byo-sip-trunk",
    "name": "voiso",
    "gateways": [
        {"ip": "203.0.113.10", "netmask": 32, "inboundEnabled": True, "outboundEnabled": False},
        {"ip": SIP_DOMAIN, "inboundEnabled": False, "outboundEnabled": True, "outboundProtocol": "tls"},
    ],
}
EL_NUMBER = {
    "provider": "sip_trunk",
    "phone_number": "+19990000042",
    "label": "voiso",
    "inbound_trunk_config": {"allowed_addresses": ["203.0.113.10"]},
    "outbound_trunk_config": {"address": SIP_DOMAIN, "transport": "tls"},
}
RETELL_FILTER = {"filter_criteria": {"channel": {"op": "eq", "type": "string", "value": "voice"}}}
RETELL_IMPORT = {
    "phone_number": "+19990000042",
    "termination_uri": SIP_DOMAIN,
    "transport": "TLS",
    "inbound_agents": [{"agent_id": "agent_01", "weight": 1}],
    "outbound_agents": [{"agent_id": "agent_01", "weight": 1}],
}

CASES = [
    # (provider, method, path, body, query, what the violation names)
    (
        "vapi",
        "POST",
        "/tool",
        {"type": "transferCall", "destinations": [sip_transfer({"mode": "blind-transfer"})]},
        None,
        None,
    ),
    # The string "refer" was what the adapter sent: the spec types sipVerb as an object.
    (
        "vapi",
        "POST",
        "/tool",
        {
            "type": "transferCall",
            "destinations": [sip_transfer({"mode": "blind-transfer", "sipVerb": "refer"})],
        },
        None,
        "sipVerb must be an object",
    ),
    (
        "vapi",
        "POST",
        "/tool",
        {
            "type": "transferCall",
            "destinations": [{"type": "sip", "sipUri": f"sip:1@{SIP_DOMAIN}", "sipVerb": "x"}],
        },
        None,
        "sipVerb is not a field",
    ),
    (
        "vapi",
        "POST",
        "/tool",
        {"type": "transferCall", "destinations": [{"type": "sip"}]},
        None,
        "sipUri is required",
    ),
    ("vapi", "POST", "/credential", VAPI_CREDENTIAL, None, None),
    (
        "vapi",
        "POST",
        "/credential",
        {
            **VAPI_CREDENTIAL,
            "gateways": [{**VAPI_CREDENTIAL["gateways"][0], "port": "5060"}, VAPI_CREDENTIAL["gateways"][1]],
        },
        None,
        "port must be of type float",
    ),
    ("vapi", "POST", "/credential", {**VAPI_CREDENTIAL, "region": "eu"}, None, "region is not a field"),
    ("elevenlabs", "POST", "/v1/convai/phone-numbers", EL_NUMBER, None, None),
    (
        "elevenlabs",
        "POST",
        "/v1/convai/phone-numbers",
        {**EL_NUMBER, "termination_uri": SIP_DOMAIN},
        None,
        "termination_uri is not a field",
    ),
    (
        "elevenlabs",
        "POST",
        "/v1/convai/phone-numbers",
        {k: v for k, v in EL_NUMBER.items() if k != "label"},
        None,
        "label is required",
    ),
    (
        "elevenlabs",
        "POST",
        "/v1/convai/phone-numbers",
        {**EL_NUMBER, "outbound_trunk_config": {"address": SIP_DOMAIN, "transport": "sctp"}},
        None,
        "transport must be one of",
    ),
    (
        "elevenlabs",
        "PATCH",
        "/v1/convai/agents/agent_01",
        {
            "conversation_config": {
                "agent": {
                    "prompt": {
                        "built_in_tools": {
                            "transfer_to_number": {
                                "name": "transfer_to_number",
                                "params": {
                                    "system_tool_type": "transfer_to_number",
                                    "transfers": [
                                        {
                                            "transfer_destination": {
                                                "type": "sip_uri",
                                                "sip_uri": f"sip:1@{SIP_DOMAIN}",
                                            },
                                            "condition": "x",
                                            "transfer_type": "sip_refer",
                                            "sip_refer_play_dialtone": "no",
                                        }
                                    ],
                                },
                            }
                        }
                    }
                }
            }
        },
        None,
        "sip_refer_play_dialtone must be of type bool",
    ),
    ("retell", "POST", "/v2/list-agents", RETELL_FILTER, {"limit": "10"}, None),
    # Both were what the adapter sent: paging in the body, and a channel filter without its type.
    (
        "retell",
        "POST",
        "/v2/list-agents",
        {**RETELL_FILTER, "limit": 10},
        {"limit": "10"},
        "limit is not a field",
    ),
    (
        "retell",
        "POST",
        "/v2/list-agents",
        {"filter_criteria": {"channel": {"op": "eq", "value": "voice"}}},
        None,
        "type is required",
    ),
    ("retell", "POST", "/import-phone-number", RETELL_IMPORT, None, None),
    (
        "retell",
        "POST",
        "/import-phone-number",
        {**RETELL_IMPORT, "inbound_agent_id": "agent_01"},
        None,
        "inbound_agent_id is not a field",
    ),
    (
        "retell",
        "POST",
        "/import-phone-number",
        {**RETELL_IMPORT, "transport": "SCTP"},
        None,
        "transport must be one of",
    ),
    (
        "retell",
        "POST",
        "/import-phone-number",
        {k: v for k, v in RETELL_IMPORT.items() if k != "phone_number"},
        None,
        "phone_number is required",
    ),
]


@pytest.mark.parametrize(("provider", "method", "path", "body", "query", "violation"), CASES)
def test_the_stand_in_holds_the_request_to_the_providers_definition(
    request: pytest.FixtureRequest, provider, method, path, body, query, violation
) -> None:
    fake: FakeProvider = request.getfixturevalue(f"{provider}_fake")

    status = send(fake, method, path, body, query)

    if violation is None:
        assert fake.violations == [] and status < 400
    else:
        assert status == 400
        assert len(fake.violations) == 1 and violation in fake.violations[0], fake.violations


def test_the_walk_knows_every_type_in_the_definitions_it_is_given() -> None:
    # A type the walk has no rule for raises instead of passing silently.
    with pytest.raises(TypeError):
        conform(1, complex)


@pytest.mark.parametrize("fake_class", [ElevenLabsFake, VapiFake, RetellFake])
def test_every_write_route_has_a_published_definition(fake_class: type[FakeProvider]) -> None:
    fake = fake_class("k")
    writes = [r for r in fake.routes() if r.method in ("POST", "PATCH", "PUT")]

    assert writes and all(r.body is not None for r in writes), [r.pattern.pattern for r in writes]
