"""Each adapter operation against the same operation made with the provider's official SDK.

One local capture server per provider (the stand-in, on 127.0.0.1): the adapter runs the
operation and its requests are recorded; the stand-in is reset to its seed and the official SDK
client (elevenlabs 2.78.0, vapi_server_sdk 3.0.0, retell-sdk 6.2.13) makes the same calls with the
same inputs, through its own request types and serialisation. The two lists of requests must
match in method, path, query and JSON body. Nothing leaves the machine.

Where the SDK has no method for an operation (Vapi 3.0 has no credentials client), the SDK's own
request type is serialised by the SDK's own HTTP client wrapper, and the case says so.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from elevenlabs import (
    AgentConfig,
    BuiltInToolsOutput,
    ConversationalConfig,
    ElevenLabs,
    InboundSipTrunkConfigRequestModel,
    OutboundSipTrunkConfigRequestModel,
    PhoneNumberTransfer,
    PhoneNumberTransferTransferDestination_SipUri,
    PromptAgentApiModelOutput,
    SystemToolConfigOutput,
    SystemToolConfigOutputParams_TransferToNumber,
)
from elevenlabs.conversational_ai.phone_numbers.types import PhoneNumbersCreateRequestBody_SipTrunk
from retell import Retell
from vapi import (
    CreatePhoneNumbersRequest_ByoPhoneNumber,
    CreateToolsRequest_TransferCall,
    CreateTransferCallToolDtoDestinationsItem_Sip,
    SipTrunkGateway,
    TransferPlan,
    UpdateToolsRequestBody_TransferCall,
    UpdateTransferCallToolDtoDestinationsItem_Sip,
    Vapi,
)
from vapi.core.serialization import convert_and_respect_annotation_metadata
from vapi.types.assistant_credentials_item import AssistantCredentialsItem_ByoSipTrunk

from tests.virtual_agents.fake_providers import ElevenLabsFake, FakeProvider, RetellFake, VapiFake
from virtual_agents.providers import adapter_for
from virtual_agents.providers.base import ProviderAdapter, TransferTarget

# The Fern SDKs still call pydantic's v1 API (`__fields__`, `.dict()`): their noise, not ours.
pytestmark = pytest.mark.filterwarnings("ignore::pydantic.warnings.PydanticDeprecatedSince20")

SIP_DOMAIN = "acme.voiso.com"
IDENTIFIER = "+19990000042"
NAME = "voiso acme / Sales bot"
PROXY = ["203.0.113.10"]
QUEUE = TransferTarget(label="Sales queue", sip_uri=f"sip:4323@{SIP_DOMAIN}")
EXTERNAL = TransferTarget(label="Escalation line", sip_uri=f"sip:+12125550199@{SIP_DOMAIN};user=phone")
TARGETS = [QUEUE, EXTERNAL]

Wire = list[tuple[str, str, dict[str, str], Any]]


def wire(fake: FakeProvider) -> Wire:
    return [(r.method, r.path, r.query, r.json) for r in fake.requests]


def same_requests(
    fake: FakeProvider, ours: Callable[[ProviderAdapter], Any], theirs: Callable[[Any], Any], sdk: Any
) -> tuple[Wire, Wire]:
    """Run the adapter's operation, reset the capture server, run the SDK's; both request lists."""
    ours(adapter_for(fake.provider, {"api_key": fake.api_key}))
    adapter_wire = wire(fake)
    assert fake.violations == []
    fake.reset()
    theirs(sdk)
    return adapter_wire, wire(fake)


def connect(client: ProviderAdapter, agent_id: str) -> Any:
    return client.connect(
        agent_id=agent_id, identifier=IDENTIFIER, sip_domain=SIP_DOMAIN, name=NAME, proxy_addresses=PROXY
    )


# --- ElevenLabs ----------------------------------------------------------------------------


@pytest.fixture
def eleven(elevenlabs_fake: ElevenLabsFake) -> ElevenLabs:
    return ElevenLabs(api_key=elevenlabs_fake.api_key, base_url=elevenlabs_fake.url)


# The SDK's update type nests the *Output* prompt models (ConversationalConfig → AgentConfig).
def el_transfer_tool(targets: list[TransferTarget]) -> SystemToolConfigOutput:
    return SystemToolConfigOutput(
        name="transfer_to_number",
        description="",
        params=SystemToolConfigOutputParams_TransferToNumber(
            enable_client_message=True,
            transfers=[
                PhoneNumberTransfer(
                    transfer_destination=PhoneNumberTransferTransferDestination_SipUri(sip_uri=t.sip_uri),
                    condition=f"The caller should be handed to {t.label}.",
                    transfer_type="sip_refer",
                    sip_refer_play_dialtone=False,
                )
                for t in targets
            ],
        ),
    )


def el_config(tool: SystemToolConfigOutput | None) -> ConversationalConfig:
    return ConversationalConfig(
        agent=AgentConfig(
            prompt=PromptAgentApiModelOutput(built_in_tools=BuiltInToolsOutput(transfer_to_number=tool))
        )
    )


def test_elevenlabs_verify_and_list(elevenlabs_fake: ElevenLabsFake, eleven: ElevenLabs) -> None:
    def theirs(sdk: ElevenLabs) -> None:
        sdk.conversational_ai.agents.list(page_size=1)
        sdk.conversational_ai.agents.list(page_size=100)

    ours, sdk = same_requests(elevenlabs_fake, lambda a: (a.verify(), a.list_agents()), theirs, eleven)

    assert ours == sdk


def test_elevenlabs_connect(elevenlabs_fake: ElevenLabsFake, eleven: ElevenLabs) -> None:
    def theirs(sdk: ElevenLabs) -> None:
        created = sdk.conversational_ai.phone_numbers.create(
            request=PhoneNumbersCreateRequestBody_SipTrunk(
                phone_number=IDENTIFIER,
                label=NAME,
                inbound_trunk_config=InboundSipTrunkConfigRequestModel(
                    allowed_addresses=PROXY, media_encryption="allowed", remote_domains=[SIP_DOMAIN]
                ),
                outbound_trunk_config=OutboundSipTrunkConfigRequestModel(
                    address=SIP_DOMAIN, transport="tls", media_encryption="allowed"
                ),
            )
        )
        sdk.conversational_ai.phone_numbers.update(created.phone_number_id, agent_id="agent_01")

    ours, sdk = same_requests(elevenlabs_fake, lambda a: connect(a, "agent_01"), theirs, eleven)

    assert ours == sdk


def test_elevenlabs_configure_transfers(elevenlabs_fake: ElevenLabsFake, eleven: ElevenLabs) -> None:
    def theirs(sdk: ElevenLabs) -> None:
        sdk.conversational_ai.agents.get("agent_01")
        sdk.conversational_ai.agents.update(
            "agent_01", conversation_config=el_config(el_transfer_tool(TARGETS))
        )
        sdk.conversational_ai.agents.get("agent_01")

    ours, sdk = same_requests(
        elevenlabs_fake,
        lambda a: a.configure_transfers(agent_id="agent_01", state={}, targets=TARGETS),
        theirs,
        eleven,
    )

    assert ours == sdk


def test_elevenlabs_disconnect(elevenlabs_fake: ElevenLabsFake, eleven: ElevenLabs) -> None:
    def ours(client: ProviderAdapter) -> None:
        state = connect(client, "agent_01").state
        elevenlabs_fake.requests.clear()  # connect is compared above
        client.disconnect(agent_id="agent_01", state=state)

    def theirs(sdk: ElevenLabs) -> None:
        created = sdk.conversational_ai.phone_numbers.create(
            request=PhoneNumbersCreateRequestBody_SipTrunk(
                phone_number=IDENTIFIER,
                label=NAME,
                inbound_trunk_config=InboundSipTrunkConfigRequestModel(allowed_addresses=PROXY),
                outbound_trunk_config=OutboundSipTrunkConfigRequestModel(address=SIP_DOMAIN, transport="tls"),
            )
        )
        elevenlabs_fake.requests.clear()
        sdk.conversational_ai.agents.update("agent_01", conversation_config=el_config(None))
        sdk.conversational_ai.phone_numbers.delete(created.phone_number_id)

    ours_wire, sdk_wire = same_requests(elevenlabs_fake, ours, theirs, eleven)

    assert ours_wire == sdk_wire


# --- Vapi ----------------------------------------------------------------------------------


@pytest.fixture
def vapi(vapi_fake: VapiFake) -> Vapi:
    return Vapi(token=vapi_fake.api_key, base_url=vapi_fake.url)


def vapi_raw(sdk: Vapi, method: str, path: str, body: Any = None, annotation: Any = None) -> Any:
    """A call the SDK has no method for, through the SDK's own HTTP wrapper and serialiser."""
    json = None
    if body is not None:
        json = convert_and_respect_annotation_metadata(object_=body, annotation=annotation, direction="write")
    response = sdk._client_wrapper.httpx_client.request(path, method=method, json=json)
    return response.json() if response.content else None


def vapi_destinations(kind: Any, targets: list[TransferTarget]) -> list[Any]:
    return [
        kind(
            sip_uri=t.sip_uri,
            description=f"Hand the caller to {t.label}.",
            message="",
            transfer_plan=TransferPlan(mode="blind-transfer"),
        )
        for t in targets
    ]


def vapi_credential() -> AssistantCredentialsItem_ByoSipTrunk:
    return AssistantCredentialsItem_ByoSipTrunk(
        name=NAME[:40],
        gateways=[
            SipTrunkGateway(ip=PROXY[0], port=5060, netmask=32, inbound_enabled=True, outbound_enabled=False),
            SipTrunkGateway(
                ip=SIP_DOMAIN,
                port=5061,
                inbound_enabled=False,
                outbound_enabled=True,
                outbound_protocol="tls",
            ),
        ],
    )


def vapi_connect(sdk: Vapi, assistant_id: str = "asst-01") -> tuple[str, str]:
    credential = vapi_raw(sdk, "POST", "credential", vapi_credential(), AssistantCredentialsItem_ByoSipTrunk)
    number = sdk.phone_numbers.create(
        request=CreatePhoneNumbersRequest_ByoPhoneNumber(
            number=IDENTIFIER,
            number_e_164_check_enabled=False,
            credential_id=credential["id"],
            assistant_id=assistant_id,
            name=NAME[:40],
        )
    )
    return credential["id"], number.id


def vapi_attach(sdk: Vapi, tool_id: str, *, attached: bool) -> None:
    model = sdk.assistants.get("asst-01").model.dict(by_alias=True, exclude_unset=True)  # as GET gave it
    ids = [t for t in model.get("toolIds", []) if t != tool_id]
    sdk.assistants.update("asst-01", model={**model, "toolIds": [*ids, tool_id] if attached else ids})


def test_vapi_verify_and_list(vapi_fake: VapiFake, vapi: Vapi) -> None:
    def theirs(sdk: Vapi) -> None:
        sdk.assistants.list(limit=1)
        sdk.assistants.list(limit=100)

    ours, sdk = same_requests(vapi_fake, lambda a: (a.verify(), a.list_agents()), theirs, vapi)

    assert ours == sdk


def test_vapi_connect(vapi_fake: VapiFake, vapi: Vapi) -> None:
    ours, sdk = same_requests(vapi_fake, lambda a: connect(a, "asst-01"), vapi_connect, vapi)

    assert ours == sdk


def test_vapi_configure_transfers_create_then_update(vapi_fake: VapiFake, vapi: Vapi) -> None:
    def ours(client: ProviderAdapter) -> None:
        state = client.configure_transfers(agent_id="asst-01", state={}, targets=TARGETS)
        client.configure_transfers(agent_id="asst-01", state=state, targets=[QUEUE])

    def theirs(sdk: Vapi) -> None:
        tool = sdk.tools.create(
            request=CreateToolsRequest_TransferCall(
                destinations=vapi_destinations(CreateTransferCallToolDtoDestinationsItem_Sip, TARGETS)
            )
        )
        vapi_attach(sdk, tool.id, attached=True)
        sdk.tools.update(
            tool.id,
            request=UpdateToolsRequestBody_TransferCall(
                destinations=vapi_destinations(UpdateTransferCallToolDtoDestinationsItem_Sip, [QUEUE])
            ),
        )
        sdk.assistants.get("asst-01")

    ours_wire, sdk_wire = same_requests(vapi_fake, ours, theirs, vapi)

    assert ours_wire == sdk_wire
    assert sdk_wire[3][3]["type"] == "transferCall"  # the SDK sends the type on PATCH /tool too


def test_vapi_disconnect(vapi_fake: VapiFake, vapi: Vapi) -> None:
    def ours(client: ProviderAdapter) -> None:
        state = connect(client, "asst-01").state
        state = client.configure_transfers(agent_id="asst-01", state=state, targets=TARGETS)
        vapi_fake.requests.clear()  # connect and configure are compared above
        client.disconnect(agent_id="asst-01", state=state)

    def theirs(sdk: Vapi) -> None:
        credential_id, number_id = vapi_connect(sdk)
        tool = sdk.tools.create(
            request=CreateToolsRequest_TransferCall(
                destinations=vapi_destinations(CreateTransferCallToolDtoDestinationsItem_Sip, TARGETS)
            )
        )
        vapi_attach(sdk, tool.id, attached=True)
        vapi_fake.requests.clear()
        vapi_attach(sdk, tool.id, attached=False)
        sdk.tools.delete(tool.id)
        sdk.phone_numbers.delete(number_id)
        vapi_raw(sdk, "DELETE", f"credential/{credential_id}")

    ours_wire, sdk_wire = same_requests(vapi_fake, ours, theirs, vapi)

    assert ours_wire == sdk_wire


# --- Retell --------------------------------------------------------------------------------


@pytest.fixture
def retell(retell_fake: RetellFake) -> Retell:
    return Retell(api_key=retell_fake.api_key, base_url=retell_fake.url, max_retries=0)


def retell_tools(targets: list[TransferTarget]) -> list[dict[str, Any]]:
    return [
        {
            "type": "transfer_call",
            "name": name,
            "description": f"Transfer the caller to {t.label}.",
            "transfer_destination": {"type": "predefined", "number": t.sip_uri},
            "transfer_option": {"type": "cold_transfer", "cold_transfer_mode": "sip_refer"},
            "speak_during_execution": False,
            "ignore_e164_validation": True,
        }
        for name, t in zip(
            ["voiso_transfer_1_sales_queue", "voiso_transfer_2_escalation_line"], targets, strict=False
        )
    ]


def test_retell_verify_and_list(retell_fake: RetellFake, retell: Retell) -> None:
    def theirs(sdk: Retell) -> None:
        sdk.concurrency.retrieve()
        sdk.agent.list(
            limit=1000, filter_criteria={"channel": {"op": "eq", "type": "string", "value": "voice"}}
        )

    ours, sdk = same_requests(retell_fake, lambda a: (a.verify(), a.list_agents()), theirs, retell)

    assert ours == sdk


def test_retell_connect(retell_fake: RetellFake, retell: Retell) -> None:
    def theirs(sdk: Retell) -> None:
        sdk.phone_number.import_(
            phone_number=IDENTIFIER,
            termination_uri=SIP_DOMAIN,
            transport="TLS",
            inbound_agents=[{"agent_id": "agent_01", "weight": 1}],
            outbound_agents=[{"agent_id": "agent_01", "weight": 1}],
            nickname=NAME,
            ignore_e164_validation=True,
        )

    ours, sdk = same_requests(retell_fake, lambda a: connect(a, "agent_01"), theirs, retell)

    assert ours == sdk


def test_retell_configure_transfers(retell_fake: RetellFake, retell: Retell) -> None:
    def theirs(sdk: Retell) -> None:
        sdk.agent.retrieve("agent_01")
        llm = sdk.llm.retrieve("llm_01")
        kept = [tool.to_dict() for tool in llm.general_tools or []]
        sdk.llm.update("llm_01", general_tools=[*kept, *retell_tools(TARGETS)])

    ours, sdk = same_requests(
        retell_fake,
        lambda a: a.configure_transfers(agent_id="agent_01", state={}, targets=TARGETS),
        theirs,
        retell,
    )

    assert ours == sdk


def test_retell_disconnect(retell_fake: RetellFake, retell: Retell) -> None:
    def ours(client: ProviderAdapter) -> None:
        state = connect(client, "agent_01").state
        state = client.configure_transfers(agent_id="agent_01", state=state, targets=TARGETS)
        retell_fake.requests.clear()  # connect and configure are compared above
        client.disconnect(agent_id="agent_01", state=state)

    def theirs(sdk: Retell) -> None:
        sdk.phone_number.import_(
            phone_number=IDENTIFIER,
            termination_uri=SIP_DOMAIN,
            transport="TLS",
            inbound_agents=[{"agent_id": "agent_01", "weight": 1}],
            outbound_agents=[{"agent_id": "agent_01", "weight": 1}],
        )
        kept = [tool.to_dict() for tool in sdk.llm.retrieve("llm_01").general_tools or []]
        sdk.llm.update("llm_01", general_tools=[*kept, *retell_tools(TARGETS)])
        retell_fake.requests.clear()
        tools = [tool.to_dict() for tool in sdk.llm.retrieve("llm_01").general_tools or []]
        sdk.llm.update(
            "llm_01", general_tools=[t for t in tools if not t["name"].startswith("voiso_transfer_")]
        )
        sdk.phone_number.delete(IDENTIFIER)

    ours_wire, sdk_wire = same_requests(retell_fake, ours, theirs, retell)

    assert ours_wire == sdk_wire
