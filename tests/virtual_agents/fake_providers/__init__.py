"""Local stand-ins for the ElevenLabs, Vapi and Retell APIs: real HTTP servers on 127.0.0.1.

Each fake checks every request body against the provider's published definition, the official
SDK's request type for that operation (definitions.py), then against SPEC.md §5 for what a type
cannot say (method and path, auth header, our domain, customer data left untouched). It keeps
realistic state (seeded agents with prompts and tools of their own), records every request
in `fake.requests`, and records shape violations in `fake.violations` while answering them 400,
so an adapter that sends the wrong thing fails loudly. Failures are injected with `fake.fail(...)`,
`fake.malformed(...)` and `fake.slow(...)`.

    with VapiFake("sk-test") as fake:
        adapter = VapiAdapter({"api_key": "sk-test"}, base_url=fake.url)
        ...
        assert fake.violations == []

Under pytest, use the `elevenlabs_fake`, `vapi_fake` and `retell_fake` fixtures
(tests/virtual_agents/conftest.py), which also point settings.PROVIDER_API_URLS at the fake.
"""

from tests.virtual_agents.fake_providers.elevenlabs import ElevenLabsFake
from tests.virtual_agents.fake_providers.retell import RetellFake
from tests.virtual_agents.fake_providers.server import FakeProvider, RecordedRequest
from tests.virtual_agents.fake_providers.vapi import VapiFake

# Long and distinctive, so a test can tell when one leaks into a message or a log line.
API_KEYS = {
    "elevenlabs": "sk_el_test_3f9a2c7e51d84b06a1f9",
    "vapi": "vapi-test-7c1e9b24-5d3f-4a8e-b6c2-0e9f1a2b3c4d",
    "retell": "key_retell_test_a8d4f2e6c0b9173e5d2f",
}

__all__ = ["API_KEYS", "ElevenLabsFake", "FakeProvider", "RecordedRequest", "RetellFake", "VapiFake"]
