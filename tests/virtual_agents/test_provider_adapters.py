"""The provider adapters against local stand-ins of the providers' HTTP APIs (fake_providers).

Every happy path ends with `fake.violations == []`: the fake checked each request's method, path,
auth header and JSON shape against SPEC.md §5, and answers 400 to anything else.
"""

from __future__ import annotations

import copy
import logging
from types import SimpleNamespace
from typing import Any

import httpx
import pytest

from tests.virtual_agents.fake_providers import (
    ElevenLabsFake,
    FakeProvider,
    RetellFake,
    VapiFake,
)
from virtual_agents.providers import adapter_for, base
from virtual_agents.providers import elevenlabs as elevenlabs_module
from virtual_agents.providers import retell as retell_module
from virtual_agents.providers import vapi as vapi_module
from virtual_agents.providers.base import ProviderAdapter, ProviderError, TransferTarget

SIP_DOMAIN = "acme.voiso.com"
IDENTIFIER = "+19990000042"
BOT_NAME = "voiso acme / Sales bot"
PROXY = ["203.0.113.10"]
QUEUE_URI = "sip:4323@acme.voiso.com"
EXTERNAL_URI = "sip:+12125550199@acme.voiso.com;user=phone"
TARGETS = [
    TransferTarget(label="Sales queue", sip_uri=QUEUE_URI),
    TransferTarget(label="Escalation line", sip_uri=EXTERNAL_URI),
]

PROVIDERS = ["elevenlabs", "vapi", "retell"]
DISPLAY_NAME = {"elevenlabs": "ElevenLabs", "vapi": "Vapi", "retell": "Retell AI"}
VERIFY_CALL = {
    "elevenlabs": ("GET", "/v1/convai/agents"),
    "vapi": ("GET", "/assistant"),
    "retell": ("GET", "/get-concurrency"),
}
VERIFY_QUERY = {"elevenlabs": {"page_size": "1"}, "vapi": {"limit": "1"}, "retell": {}}
# A seeded agent whose prompt and tools must survive our edits.
AGENT = {"elevenlabs": "agent_01", "vapi": "asst-01", "retell": "agent_01"}


@pytest.fixture(params=PROVIDERS)
def fake(request: pytest.FixtureRequest) -> FakeProvider:
    return request.getfixturevalue(f"{request.param}_fake")


@pytest.fixture
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The waits the retry loop asked for, without waiting (base.time only; the fake keeps real time)."""
    waits: list[float] = []
    monkeypatch.setattr(base, "time", SimpleNamespace(sleep=waits.append))
    return waits


def adapter(fake: FakeProvider, *, api_key: str | None = None) -> ProviderAdapter:
    return adapter_for(fake.provider, {"api_key": fake.api_key if api_key is None else api_key})


def connect(fake: FakeProvider, *, agent_id: str | None = None, proxy: list[str] = PROXY) -> Any:
    return adapter(fake).connect(
        agent_id=agent_id or AGENT[fake.provider],
        identifier=IDENTIFIER,
        sip_domain=SIP_DOMAIN,
        name=BOT_NAME,
        proxy_addresses=proxy,
    )


def provider_error(call: Any) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        call()
    return caught.value


# --- verify, and the error mapping every adapter shares ----------------------------------


def test_verify_accepts_the_right_key(fake: FakeProvider) -> None:
    adapter(fake).verify()

    assert fake.calls == [VERIFY_CALL[fake.provider]]
    assert fake.requests[0].query == VERIFY_QUERY[fake.provider]
    assert fake.violations == []


def test_verify_with_a_wrong_key_is_auth_failed(fake: FakeProvider) -> None:
    error = provider_error(adapter(fake, api_key="sk-wrong-0000000000").verify)

    assert (error.code, error.status) == ("auth_failed", 401)
    assert error.message == f"{DISPLAY_NAME[fake.provider]} rejected the API key."
    assert "sk-wrong" not in error.message
    assert fake.violations == []


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (401, "auth_failed"),
        (403, "auth_failed"),
        (404, "not_found"),
        (500, "provider_unavailable"),
        (502, "provider_unavailable"),
        (503, "provider_unavailable"),
    ],
)
def test_http_errors_map_to_codes(fake: FakeProvider, status: int, code: str) -> None:
    fake.fail(*VERIFY_CALL[fake.provider], status)

    error = provider_error(adapter(fake).verify)

    assert (error.code, error.status) == (code, status)
    assert fake.api_key not in error.message
    assert fake.calls == [VERIFY_CALL[fake.provider]]  # only 429 is retried


# A validation error whose detail echoes the key back, in each provider's error shape.
def _echoing_422(provider: str, detail: str, key: str) -> dict[str, Any]:
    if provider == "elevenlabs":
        return {"detail": [{"loc": ["body", "phone_number"], "msg": f"{detail} (key {key})", "type": "x"}]}
    if provider == "vapi":
        return {"message": [f"{detail} (key {key})"], "error": "Unprocessable Entity", "statusCode": 422}
    return {"status": "error", "message": f"{detail} (key {key})"}


IMPORT_CALL = {
    "elevenlabs": ("POST", "/v1/convai/phone-numbers"),
    "vapi": ("POST", "/credential"),
    "retell": ("POST", "/import-phone-number"),
}


def test_422_is_rejected_with_the_providers_detail_and_never_the_key(fake: FakeProvider) -> None:
    detail = "phone_number is not a valid identifier"
    fake.fail(*IMPORT_CALL[fake.provider], 422, body=_echoing_422(fake.provider, detail, fake.api_key))

    error = provider_error(lambda: connect(fake))

    assert (error.code, error.status) == ("rejected", 422)
    assert detail in error.message
    assert "[redacted]" in error.message
    assert fake.api_key not in error.message


def test_a_long_detail_is_cut_after_the_key_is_redacted(fake: FakeProvider) -> None:
    # Cutting first would leave the head of a key that straddles the 300-character limit.
    detail = "x" * 290
    fake.fail(*IMPORT_CALL[fake.provider], 422, body=_echoing_422(fake.provider, detail, fake.api_key))

    error = provider_error(lambda: connect(fake))

    assert error.code == "rejected"
    assert fake.api_key[:6] not in error.message


def test_429_is_retried_after_retry_after(fake: FakeProvider, sleeps: list[float]) -> None:
    fake.fail(*VERIFY_CALL[fake.provider], 429, headers={"Retry-After": "2"}, times=1)

    adapter(fake).verify()

    assert sleeps == [2.0]
    assert fake.calls == [VERIFY_CALL[fake.provider]] * 2


def test_429_gives_up_as_rate_limited_after_max_retries(fake: FakeProvider, sleeps: list[float]) -> None:
    fake.fail(*VERIFY_CALL[fake.provider], 429, headers={"Retry-After": "120"}, times=None)

    error = provider_error(adapter(fake).verify)

    assert (error.code, error.status) == ("rate_limited", 429)
    assert fake.calls == [VERIFY_CALL[fake.provider]] * (base.MAX_RETRIES + 1)
    assert sleeps == [base.MAX_RETRY_AFTER] * base.MAX_RETRIES  # a long Retry-After is capped


def test_a_slow_provider_is_a_timeout(fake: FakeProvider, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "TIMEOUT", httpx.Timeout(0.3))
    fake.slow(*VERIFY_CALL[fake.provider], seconds=1.0)

    error = provider_error(adapter(fake).verify)

    assert error.code == "timeout"


def test_a_non_json_answer_is_a_bad_response(fake: FakeProvider) -> None:
    fake.malformed(*VERIFY_CALL[fake.provider])

    error = provider_error(adapter(fake).verify)

    assert error.code == "bad_response"


def test_a_closed_port_is_unreachable(fake: FakeProvider) -> None:
    client = adapter(fake)
    fake.stop()

    error = provider_error(client.verify)

    assert error.code == "unreachable"
    assert fake.api_key not in error.message


def test_the_api_key_never_reaches_the_logs(fake: FakeProvider, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    client = adapter(fake)
    connection = connect(fake)
    state = client.configure_transfers(agent_id=AGENT[fake.provider], state=connection.state, targets=TARGETS)
    client.disconnect(agent_id=AGENT[fake.provider], state=state)
    fake.fail(*VERIFY_CALL[fake.provider], 422, body=_echoing_422(fake.provider, "no", fake.api_key))
    provider_error(client.verify)
    provider_error(adapter(fake, api_key="sk-wrong-0000000000").verify)

    assert caplog.records, "the flow logs something, so the check below can fail"
    assert all(fake.api_key not in record.getMessage() for record in caplog.records)
    assert fake.api_key not in caplog.text
    assert fake.violations == []


# --- ElevenLabs --------------------------------------------------------------------------


def _el_prompt(fake: ElevenLabsFake, agent_id: str = "agent_01") -> dict[str, Any]:
    return fake.agents[agent_id]["conversation_config"]["agent"]["prompt"]


def test_elevenlabs_list_agents_reads_every_page(
    elevenlabs_fake: ElevenLabsFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(elevenlabs_module, "PAGE_SIZE", 2)

    agents = adapter(elevenlabs_fake).list_agents()

    assert [(a.id, a.name) for a in agents] == list(ElevenLabsFake.AGENTS)
    assert [r.query for r in elevenlabs_fake.requests] == [
        {"page_size": "2"},
        {"page_size": "2", "cursor": "cur_2"},
        {"page_size": "2", "cursor": "cur_4"},
    ]
    assert elevenlabs_fake.violations == []


def test_elevenlabs_connect_imports_the_number_and_binds_it(elevenlabs_fake: ElevenLabsFake) -> None:
    connection = connect(elevenlabs_fake, proxy=["203.0.113.10/32"])

    assert connection.sip_uri == "sip:+19990000042@sip.rtc.elevenlabs.io:5061;transport=tls"
    assert connection.state == {"phone_number_id": "phnum_1"}
    assert elevenlabs_fake.calls == [
        ("POST", "/v1/convai/phone-numbers"),
        ("PATCH", "/v1/convai/phone-numbers/phnum_1"),
    ]
    number = elevenlabs_fake.phone_numbers["phnum_1"]
    assert (number["phone_number"], number["label"]) == (IDENTIFIER, BOT_NAME)
    assert number["assigned_agent"] == {"agent_id": "agent_01", "agent_name": "Sales bot"}
    assert number["outbound_trunk_config"]["address"] == SIP_DOMAIN
    assert number["outbound_trunk_config"]["transport"] == "tls"
    assert number["inbound_trunk_config"]["allowed_addresses"] == ["203.0.113.10/32"]
    assert elevenlabs_fake.sent("PATCH", "/v1/convai/phone-numbers/phnum_1")[0].json == {
        "agent_id": "agent_01"
    }
    assert elevenlabs_fake.requests[0].headers["xi-api-key"] == elevenlabs_fake.api_key
    assert elevenlabs_fake.violations == []


def test_elevenlabs_connect_deletes_the_import_when_binding_fails(elevenlabs_fake: ElevenLabsFake) -> None:
    error = provider_error(lambda: connect(elevenlabs_fake, agent_id="agent_gone"))

    assert error.code == "not_found"
    assert elevenlabs_fake.phone_numbers == {}
    assert elevenlabs_fake.calls[-1] == ("DELETE", "/v1/convai/phone-numbers/phnum_1")
    assert elevenlabs_fake.violations == []


def test_elevenlabs_connect_reports_the_bind_failure_even_if_cleanup_fails(
    elevenlabs_fake: ElevenLabsFake,
) -> None:
    elevenlabs_fake.fail("DELETE", "/v1/convai/phone-numbers/", 503)

    error = provider_error(lambda: connect(elevenlabs_fake, agent_id="agent_gone"))

    assert error.code == "not_found"  # the admin sees why connecting failed, not why undoing it did


def test_elevenlabs_configure_transfers_writes_only_the_transfer_tool(
    elevenlabs_fake: ElevenLabsFake,
) -> None:
    before = copy.deepcopy(_el_prompt(elevenlabs_fake))
    client = adapter(elevenlabs_fake)

    state = client.configure_transfers(
        agent_id="agent_01", state={"phone_number_id": "phnum_9"}, targets=TARGETS
    )

    assert state == {"phone_number_id": "phnum_9", "transfers": [QUEUE_URI, EXTERNAL_URI]}
    agent_path = "/v1/convai/agents/agent_01"
    assert elevenlabs_fake.calls == [("GET", agent_path), ("PATCH", agent_path), ("GET", agent_path)]
    prompt = _el_prompt(elevenlabs_fake)
    tool = prompt["built_in_tools"]["transfer_to_number"]
    assert tool["params"]["system_tool_type"] == "transfer_to_number"
    assert [(t["transfer_destination"], t["transfer_type"]) for t in tool["params"]["transfers"]] == [
        ({"type": "sip_uri", "sip_uri": QUEUE_URI}, "sip_refer"),
        ({"type": "sip_uri", "sip_uri": EXTERNAL_URI}, "sip_refer"),
    ]
    assert "Sales queue" in tool["params"]["transfers"][0]["condition"]
    # The customer's prompt, tool ids and other built-in tools are as they were.
    assert {k: v for k, v in prompt.items() if k != "built_in_tools"} == {
        k: v for k, v in before.items() if k != "built_in_tools"
    }
    assert {k: v for k, v in prompt["built_in_tools"].items() if k != "transfer_to_number"} == before[
        "built_in_tools"
    ]
    assert client.configured_transfers(agent_id="agent_01", state=state) == [QUEUE_URI, EXTERNAL_URI]
    assert elevenlabs_fake.violations == []


def test_elevenlabs_configure_transfers_twice_replaces_the_list(elevenlabs_fake: ElevenLabsFake) -> None:
    client = adapter(elevenlabs_fake)
    client.configure_transfers(agent_id="agent_01", state={}, targets=TARGETS)
    client.configure_transfers(agent_id="agent_01", state={}, targets=TARGETS)
    assert client.configured_transfers(agent_id="agent_01", state={}) == [QUEUE_URI, EXTERNAL_URI]

    client.configure_transfers(agent_id="agent_01", state={}, targets=TARGETS[1:])

    assert client.configured_transfers(agent_id="agent_01", state={}) == [EXTERNAL_URI]
    assert elevenlabs_fake.violations == []


def test_elevenlabs_configure_transfers_refuses_a_legacy_transfer_tool(
    elevenlabs_fake: ElevenLabsFake,
) -> None:
    agent_id = ElevenLabsFake.LEGACY_AGENT

    error = provider_error(
        lambda: adapter(elevenlabs_fake).configure_transfers(agent_id=agent_id, state={}, targets=TARGETS)
    )

    assert error.code == "conflict"
    assert elevenlabs_fake.calls == [("GET", f"/v1/convai/agents/{agent_id}")]  # nothing written


def test_elevenlabs_configure_transfers_warns_when_the_prompt_moved(
    elevenlabs_fake: ElevenLabsFake, caplog: pytest.LogCaptureFixture
) -> None:
    def warnings() -> list[str]:
        return [
            r.getMessage()
            for r in caplog.records
            if r.name == elevenlabs_module.__name__ and r.levelno == logging.WARNING
        ]

    client = adapter(elevenlabs_fake)
    client.configure_transfers(agent_id="agent_01", state={}, targets=TARGETS)
    assert warnings() == []
    elevenlabs_fake.prompt_drift = "Something else entirely."

    client.configure_transfers(agent_id="agent_01", state={}, targets=TARGETS)

    assert len(warnings()) == 1 and "agent_01" in warnings()[0]


def test_elevenlabs_disconnect_removes_what_connect_and_configure_made(
    elevenlabs_fake: ElevenLabsFake,
) -> None:
    before = copy.deepcopy(_el_prompt(elevenlabs_fake))
    client = adapter(elevenlabs_fake)
    state = client.configure_transfers(
        agent_id="agent_01", state=connect(elevenlabs_fake).state, targets=TARGETS
    )
    elevenlabs_fake.requests.clear()

    client.disconnect(agent_id="agent_01", state=state)

    assert elevenlabs_fake.calls == [
        ("PATCH", "/v1/convai/agents/agent_01"),
        ("DELETE", "/v1/convai/phone-numbers/phnum_1"),
    ]
    assert elevenlabs_fake.phone_numbers == {}
    assert _el_prompt(elevenlabs_fake) == before
    assert elevenlabs_fake.violations == []


def test_elevenlabs_disconnect_tolerates_what_is_already_gone(elevenlabs_fake: ElevenLabsFake) -> None:
    del elevenlabs_fake.agents["agent_01"]

    adapter(elevenlabs_fake).disconnect(agent_id="agent_01", state={"phone_number_id": "phnum_404"})

    assert elevenlabs_fake.calls == [
        ("PATCH", "/v1/convai/agents/agent_01"),
        ("DELETE", "/v1/convai/phone-numbers/phnum_404"),
    ]
    assert elevenlabs_fake.violations == []


# --- Vapi --------------------------------------------------------------------------------


def test_vapi_list_agents_reads_every_page(vapi_fake: VapiFake, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vapi_module, "PAGE_SIZE", 2)

    agents = adapter(vapi_fake).list_agents()

    assert [(a.id, a.name) for a in agents] == [(i, name or i) for i, name in VapiFake.ASSISTANTS]
    created = {i: a["createdAt"] for i, a in vapi_fake.assistants.items()}
    assert [r.query for r in vapi_fake.requests] == [
        {"limit": "2"},
        {"limit": "2", "createdAtLt": created["asst-02"]},
        {"limit": "2", "createdAtLt": created["asst-04"]},
    ]
    assert vapi_fake.violations == []


def test_vapi_connect_makes_a_credential_and_a_number(vapi_fake: VapiFake) -> None:
    connection = connect(vapi_fake, proxy=["203.0.113.10", "198.51.100.0/24"])

    assert vapi_fake.calls == [("POST", "/credential"), ("POST", "/phone-number")]
    assert connection.sip_uri == "sip:+19990000042@cred-1.sip.vapi.ai"
    assert connection.state == {"credential_id": "cred-1", "phone_number_id": "pn-2"}
    assert vapi_fake.credentials["cred-1"]["gateways"] == [
        {"ip": "203.0.113.10", "port": 5060, "netmask": 32, "inboundEnabled": True, "outboundEnabled": False},
        {"ip": "198.51.100.0", "port": 5060, "netmask": 24, "inboundEnabled": True, "outboundEnabled": False},
        {
            "ip": SIP_DOMAIN,
            "port": 5061,
            "inboundEnabled": False,
            "outboundEnabled": True,
            "outboundProtocol": "tls",
        },
    ]
    number = vapi_fake.phone_numbers["pn-2"]
    assert (number["number"], number["credentialId"], number["assistantId"]) == (
        IDENTIFIER,
        "cred-1",
        "asst-01",
    )
    assert vapi_fake.requests[0].headers["authorization"] == f"Bearer {vapi_fake.api_key}"
    assert vapi_fake.violations == []


@pytest.mark.parametrize("proxy", [[], ["2001:db8::10"], ["sip-proxy.voiso.com"]])
def test_vapi_connect_needs_ipv4_proxy_addresses(vapi_fake: VapiFake, proxy: list[str]) -> None:
    error = provider_error(lambda: connect(vapi_fake, proxy=proxy))

    assert error.code == "not_configured"
    assert vapi_fake.requests == []


def test_vapi_connect_deletes_the_credential_when_the_number_fails(vapi_fake: VapiFake) -> None:
    error = provider_error(lambda: connect(vapi_fake, agent_id="asst-gone"))

    assert error.code == "rejected"
    assert "asst-gone" in error.message
    assert vapi_fake.calls == [
        ("POST", "/credential"),
        ("POST", "/phone-number"),
        ("DELETE", "/credential/cred-1"),
    ]
    assert (vapi_fake.credentials, vapi_fake.phone_numbers) == ({}, {})
    assert vapi_fake.violations == []


def test_vapi_configure_transfers_creates_and_attaches_a_tool(vapi_fake: VapiFake) -> None:
    model_before = copy.deepcopy(vapi_fake.assistants["asst-01"]["model"])
    client = adapter(vapi_fake)

    state = client.configure_transfers(agent_id="asst-01", state={"credential_id": "cred-9"}, targets=TARGETS)

    tool_id = state["tool_id"]
    assert state == {"credential_id": "cred-9", "tool_id": tool_id, "transfers": [QUEUE_URI, EXTERNAL_URI]}
    assert vapi_fake.calls == [
        ("POST", "/tool"),
        ("GET", "/assistant/asst-01"),
        ("PATCH", "/assistant/asst-01"),
    ]
    tool = vapi_fake.tools[tool_id]
    assert tool["type"] == "transferCall"
    # No sipVerb: the spec's default is REFER, and it types sipVerb as an object, not "refer".
    assert [(d["type"], d["sipUri"], d["transferPlan"]) for d in tool["destinations"]] == [
        ("sip", QUEUE_URI, {"mode": "blind-transfer"}),
        ("sip", EXTERNAL_URI, {"mode": "blind-transfer"}),
    ]
    model = vapi_fake.assistants["asst-01"]["model"]
    assert model == {**model_before, "toolIds": [*VapiFake.CUSTOMER_TOOLS, tool_id]}
    assert client.configured_transfers(agent_id="asst-01", state=state) == [QUEUE_URI, EXTERNAL_URI]
    assert vapi_fake.violations == []


def test_vapi_configure_transfers_twice_updates_the_same_tool(vapi_fake: VapiFake) -> None:
    client = adapter(vapi_fake)
    state = client.configure_transfers(agent_id="asst-01", state={}, targets=TARGETS)
    vapi_fake.requests.clear()

    again = client.configure_transfers(agent_id="asst-01", state=state, targets=TARGETS[:1])

    assert again["tool_id"] == state["tool_id"]
    # Already attached: no second assistant PATCH.
    assert vapi_fake.calls == [("PATCH", f"/tool/{state['tool_id']}"), ("GET", "/assistant/asst-01")]
    # The PATCH body is a oneOf discriminated by type, so the type goes with it.
    assert vapi_fake.requests[0].json["type"] == "transferCall"
    assert [t for t in vapi_fake.tools.values() if t["type"] == "transferCall"] == [
        vapi_fake.tools[state["tool_id"]]
    ]
    assert vapi_fake.assistants["asst-01"]["model"]["toolIds"] == [*VapiFake.CUSTOMER_TOOLS, state["tool_id"]]
    assert client.configured_transfers(agent_id="asst-01", state=again) == [QUEUE_URI]
    assert vapi_fake.violations == []


def test_vapi_configure_transfers_recreates_a_tool_deleted_at_vapi(vapi_fake: VapiFake) -> None:
    state = adapter(vapi_fake).configure_transfers(
        agent_id="asst-01", state={"tool_id": "tool-gone"}, targets=TARGETS
    )

    assert state["tool_id"] != "tool-gone"
    assert vapi_fake.calls[:2] == [("PATCH", "/tool/tool-gone"), ("POST", "/tool")]
    assert state["tool_id"] in vapi_fake.assistants["asst-01"]["model"]["toolIds"]
    assert vapi_fake.violations == []


def test_vapi_configure_transfers_with_no_targets_removes_the_tool(vapi_fake: VapiFake) -> None:
    client = adapter(vapi_fake)
    state = client.configure_transfers(agent_id="asst-01", state={"credential_id": "cred-9"}, targets=TARGETS)

    state = client.configure_transfers(agent_id="asst-01", state=state, targets=[])

    assert state == {"credential_id": "cred-9", "transfers": []}
    assert set(vapi_fake.tools) == set(VapiFake.CUSTOMER_TOOLS)
    assert vapi_fake.assistants["asst-01"]["model"]["toolIds"] == list(VapiFake.CUSTOMER_TOOLS)
    assert vapi_fake.violations == []


def test_vapi_configure_transfers_leaves_no_orphan_tool_when_attaching_fails(vapi_fake: VapiFake) -> None:
    error = provider_error(
        lambda: adapter(vapi_fake).configure_transfers(agent_id="asst-gone", state={}, targets=TARGETS)
    )

    assert error.code == "not_found"
    assert set(vapi_fake.tools) == set(VapiFake.CUSTOMER_TOOLS)
    assert vapi_fake.violations == []


def test_vapi_configured_transfers_is_empty_when_the_tool_is_detached(vapi_fake: VapiFake) -> None:
    client = adapter(vapi_fake)
    state = client.configure_transfers(agent_id="asst-01", state={}, targets=TARGETS)
    vapi_fake.assistants["asst-01"]["model"]["toolIds"] = list(VapiFake.CUSTOMER_TOOLS)  # an admin removed it

    assert client.configured_transfers(agent_id="asst-01", state=state) == []


def test_vapi_disconnect_removes_what_connect_and_configure_made(vapi_fake: VapiFake) -> None:
    model_before = copy.deepcopy(vapi_fake.assistants["asst-01"]["model"])
    client = adapter(vapi_fake)
    state = client.configure_transfers(agent_id="asst-01", state=connect(vapi_fake).state, targets=TARGETS)
    vapi_fake.requests.clear()

    client.disconnect(agent_id="asst-01", state=state)

    assert vapi_fake.calls == [
        ("GET", "/assistant/asst-01"),
        ("PATCH", "/assistant/asst-01"),
        ("DELETE", f"/tool/{state['tool_id']}"),
        ("DELETE", "/phone-number/pn-2"),
        ("DELETE", "/credential/cred-1"),
    ]
    assert (vapi_fake.credentials, vapi_fake.phone_numbers) == ({}, {})
    assert set(vapi_fake.tools) == set(VapiFake.CUSTOMER_TOOLS)
    assert vapi_fake.assistants["asst-01"]["model"] == model_before
    assert vapi_fake.violations == []


def test_vapi_disconnect_tolerates_what_is_already_gone(vapi_fake: VapiFake) -> None:
    state = {"credential_id": "cred-404", "phone_number_id": "pn-404", "tool_id": "tool-404"}

    adapter(vapi_fake).disconnect(agent_id="asst-gone", state=state)

    assert vapi_fake.calls == [
        ("GET", "/assistant/asst-gone"),
        ("DELETE", "/tool/tool-404"),
        ("DELETE", "/phone-number/pn-404"),
        ("DELETE", "/credential/cred-404"),
    ]
    assert vapi_fake.violations == []


# --- Retell ------------------------------------------------------------------------------


def test_retell_list_agents_reads_every_page_of_voice_agents(
    retell_fake: RetellFake, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(retell_module, "PAGE_SIZE", 2)

    agents = adapter(retell_fake).list_agents()

    voice = [(i, name or i) for i, name, channel, _ in RetellFake.AGENTS if channel == "voice"]
    assert [(a.id, a.name) for a in agents] == voice
    # Paging in the query only; the body is the filter alone, with the type the SDK requires.
    assert [r.query for r in retell_fake.requests] == [
        {"limit": "2"},
        {"limit": "2", "pagination_key": "agent_02"},
        {"limit": "2", "pagination_key": "agent_04"},
    ]
    assert all(
        r.json == {"filter_criteria": {"channel": {"op": "eq", "type": "string", "value": "voice"}}}
        for r in retell_fake.requests
    )
    assert retell_fake.violations == []


def test_retell_connect_imports_the_number(retell_fake: RetellFake) -> None:
    connection = connect(retell_fake)

    assert retell_fake.calls == [("POST", "/import-phone-number")]
    assert connection.sip_uri == "sip:+19990000042@sip.retellai.com;transport=tcp"
    assert connection.state == {"phone_number": IDENTIFIER}
    number = retell_fake.phone_numbers[IDENTIFIER]
    assert (number["termination_uri"], number["transport"]) == (SIP_DOMAIN, "TLS")
    assert number["inbound_agents"] == number["outbound_agents"] == [{"agent_id": "agent_01", "weight": 1}]
    assert retell_fake.violations == []


def test_retell_connect_again_repoints_the_existing_number(retell_fake: RetellFake) -> None:
    connect(retell_fake)

    connection = connect(retell_fake, agent_id="agent_02")

    assert connection.state == {"phone_number": IDENTIFIER}
    assert retell_fake.calls[1:] == [
        ("POST", "/import-phone-number"),
        ("PATCH", "/update-phone-number/+19990000042"),
    ]
    assert retell_fake.phone_numbers[IDENTIFIER]["inbound_agents"] == [{"agent_id": "agent_02", "weight": 1}]
    assert retell_fake.violations == []


def test_retell_connect_to_an_unknown_agent_is_rejected(retell_fake: RetellFake) -> None:
    error = provider_error(lambda: connect(retell_fake, agent_id="agent_gone"))

    assert error.code == "rejected"
    assert "agent_gone" in error.message
    assert retell_fake.phone_numbers == {}
    assert retell_fake.violations == []


def test_retell_configure_transfers_keeps_the_customers_tools(retell_fake: RetellFake) -> None:
    tools_before = copy.deepcopy(retell_fake.llms["llm_01"]["general_tools"])
    client = adapter(retell_fake)

    state = client.configure_transfers(
        agent_id="agent_01", state={"phone_number": IDENTIFIER}, targets=TARGETS
    )

    assert state == {"phone_number": IDENTIFIER, "llm_id": "llm_01", "transfers": [QUEUE_URI, EXTERNAL_URI]}
    assert retell_fake.calls == [
        ("GET", "/get-agent/agent_01"),
        ("GET", "/get-retell-llm/llm_01"),
        ("PATCH", "/update-retell-llm/llm_01"),
    ]
    tools = retell_fake.llms["llm_01"]["general_tools"]
    assert tools[:2] == tools_before
    ours = tools[2:]
    assert [t["name"] for t in ours] == ["voiso_transfer_1_sales_queue", "voiso_transfer_2_escalation_line"]
    assert [t["transfer_destination"] for t in ours] == [
        {"type": "predefined", "number": QUEUE_URI},
        {"type": "predefined", "number": EXTERNAL_URI},
    ]
    assert all(
        t["transfer_option"] == {"type": "cold_transfer", "cold_transfer_mode": "sip_refer"} for t in ours
    )
    assert client.configured_transfers(agent_id="agent_01", state=state) == [QUEUE_URI, EXTERNAL_URI]
    assert retell_fake.violations == []


def test_retell_configure_transfers_twice_does_not_duplicate(retell_fake: RetellFake) -> None:
    client = adapter(retell_fake)
    state = client.configure_transfers(agent_id="agent_01", state={}, targets=TARGETS)
    retell_fake.requests.clear()

    client.configure_transfers(agent_id="agent_01", state=state, targets=TARGETS)

    # The stored llm_id saves the agent lookup.
    assert retell_fake.calls == [("GET", "/get-retell-llm/llm_01"), ("PATCH", "/update-retell-llm/llm_01")]
    names = [t["name"] for t in retell_fake.llms["llm_01"]["general_tools"]]
    assert names == [
        "end_call",
        "lookup_order",
        "voiso_transfer_1_sales_queue",
        "voiso_transfer_2_escalation_line",
    ]
    assert retell_fake.violations == []


def test_retell_configure_transfers_refuses_a_conversation_flow_agent(retell_fake: RetellFake) -> None:
    agent_id = RetellFake.FLOW_AGENT

    error = provider_error(
        lambda: adapter(retell_fake).configure_transfers(agent_id=agent_id, state={}, targets=TARGETS)
    )

    assert error.code == "unsupported_agent_type"
    assert retell_fake.calls == [("GET", f"/get-agent/{agent_id}")]


def test_retell_disconnect_removes_what_connect_and_configure_made(retell_fake: RetellFake) -> None:
    tools_before = copy.deepcopy(retell_fake.llms["llm_01"]["general_tools"])
    client = adapter(retell_fake)
    state = client.configure_transfers(agent_id="agent_01", state=connect(retell_fake).state, targets=TARGETS)
    retell_fake.requests.clear()

    client.disconnect(agent_id="agent_01", state=state)

    assert retell_fake.calls == [
        ("GET", "/get-retell-llm/llm_01"),
        ("PATCH", "/update-retell-llm/llm_01"),
        ("DELETE", "/delete-phone-number/+19990000042"),
    ]
    assert retell_fake.llms["llm_01"]["general_tools"] == tools_before
    assert retell_fake.phone_numbers == {}
    assert retell_fake.violations == []


def test_retell_disconnect_tolerates_what_is_already_gone(retell_fake: RetellFake) -> None:
    adapter(retell_fake).disconnect(
        agent_id="agent_01", state={"llm_id": "llm_gone", "phone_number": IDENTIFIER}
    )

    assert retell_fake.calls == [
        ("GET", "/get-retell-llm/llm_gone"),
        ("DELETE", "/delete-phone-number/+19990000042"),
    ]
    assert retell_fake.violations == []


# --- any SIP bot -------------------------------------------------------------------------


def test_generic_sip_pushes_nothing_and_remembers_the_uris() -> None:
    client = adapter_for("generic_sip", {})

    assert client.has_api is False
    assert client.verify() is None
    assert client.list_agents() == []
    state = client.configure_transfers(agent_id="", state={"note": "kept"}, targets=TARGETS)
    assert state == {"note": "kept", "transfers": [QUEUE_URI, EXTERNAL_URI]}
    assert client.configured_transfers(agent_id="", state=state) == [QUEUE_URI, EXTERNAL_URI]
    assert client.disconnect(agent_id="", state=state) == []


# --- what the providers' definitions asked of the adapters (issue 17) ----------------------


def test_vapi_on_the_eu_api_gives_the_eu_sip_host(vapi_fake: VapiFake) -> None:
    eu = vapi_module.VapiAdapter({"api_key": vapi_fake.api_key}, base_url="https://api.eu.vapi.ai")
    us = vapi_module.VapiAdapter({"api_key": vapi_fake.api_key}, base_url="https://api.vapi.ai")

    assert (eu.sip_host, us.sip_host) == ("sip.eu.vapi.ai", "sip.vapi.ai")
    # The fake stands at 127.0.0.1: the host decision is the base URL's, so connect uses sip_host.
    connection = connect(vapi_fake)
    assert connection.sip_uri.endswith("@cred-1.sip.vapi.ai")


def test_vapi_connect_refuses_a_netmask_wider_than_24(vapi_fake: VapiFake) -> None:
    error = provider_error(lambda: connect(vapi_fake, proxy=["203.0.113.10", "198.51.0.0/16"]))

    assert error.code == "not_configured"
    assert "/24 to /32" in error.message and "198.51.0.0/16" in error.message
    assert vapi_fake.requests == []


def test_vapi_disconnect_removes_number_and_credential_when_the_tool_is_pinned(vapi_fake: VapiFake) -> None:
    client = adapter(vapi_fake)
    state = client.configure_transfers(agent_id="asst-01", state=connect(vapi_fake).state, targets=TARGETS)
    body = {"message": "Tool is pinned to a published assistant version", "error": "tool_pinned"}
    vapi_fake.fail("DELETE", "/tool/", 409, body={**body, "statusCode": 409})

    left = client.disconnect(agent_id="asst-01", state=state)

    assert (vapi_fake.credentials, vapi_fake.phone_numbers) == ({}, {})
    assert state["tool_id"] not in vapi_fake.assistants["asst-01"]["model"]["toolIds"]
    assert len(left) == 1
    assert state["tool_id"] in left[0] and "Vapi kept the transfer tool" in left[0]
    assert "delete it in the Vapi dashboard" in left[0]
    assert vapi_fake.api_key not in left[0]


def test_vapi_disconnect_still_fails_on_other_tool_errors(vapi_fake: VapiFake) -> None:
    client = adapter(vapi_fake)
    state = client.configure_transfers(agent_id="asst-01", state=connect(vapi_fake).state, targets=TARGETS)
    vapi_fake.fail("DELETE", "/tool/", 503)

    error = provider_error(lambda: client.disconnect(agent_id="asst-01", state=state))

    assert error.code == "provider_unavailable"


def test_retell_transfer_tools_skip_the_e164_check_for_sip_targets(retell_fake: RetellFake) -> None:
    adapter(retell_fake).configure_transfers(agent_id="agent_01", state={}, targets=TARGETS)

    ours = [t for t in retell_fake.llms["llm_01"]["general_tools"] if t["name"].startswith("voiso_")]
    assert [t["ignore_e164_validation"] for t in ours] == [True, True]
    assert retell_fake.violations == []


def test_elevenlabs_refer_plays_no_dial_tone(elevenlabs_fake: ElevenLabsFake) -> None:
    adapter(elevenlabs_fake).configure_transfers(agent_id="agent_01", state={}, targets=TARGETS)

    transfers = _el_prompt(elevenlabs_fake)["built_in_tools"]["transfer_to_number"]["params"]["transfers"]
    assert [t["sip_refer_play_dialtone"] for t in transfers] == [False, False]
    assert elevenlabs_fake.violations == []
