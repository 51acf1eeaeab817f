"""Fake provider APIs (fake_providers): one real local HTTP server per test, with settings pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from routing.models import Queue
from tests.factories import make_queue
from tests.virtual_agents.fake_providers import API_KEYS, ElevenLabsFake, FakeProvider, RetellFake, VapiFake
from virtual_agents import services
from virtual_agents.models import ProviderIntegration
from voiso_byob.models import ContactCenter

Fake = TypeVar("Fake", bound=FakeProvider)


def _serve(fake: Fake, settings) -> Iterator[Fake]:
    fake.start()
    try:
        # A new dict: the settings fixture restores the attribute, not a dict mutated in place.
        settings.PROVIDER_API_URLS = {**settings.PROVIDER_API_URLS, fake.provider: fake.url}
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def elevenlabs_fake(settings) -> Iterator[ElevenLabsFake]:
    yield from _serve(ElevenLabsFake(API_KEYS["elevenlabs"]), settings)


@pytest.fixture
def vapi_fake(settings) -> Iterator[VapiFake]:
    yield from _serve(VapiFake(API_KEYS["vapi"]), settings)


@pytest.fixture
def retell_fake(settings) -> Iterator[RetellFake]:
    yield from _serve(RetellFake(API_KEYS["retell"]), settings)


# Shared by the service, API and page tests of virtual agents.


@pytest.fixture(autouse=True)
def proxy_addresses(settings) -> None:
    # Vapi's trunk needs our SIP proxy's address; every test here may connect a Vapi bot.
    settings.SIP_PROXY_ADDRESSES = ["203.0.113.10"]


@pytest.fixture
def sales(acme: ContactCenter) -> Queue:
    return make_queue(acme, name="Sales", extension="4323")


@pytest.fixture
def support(acme: ContactCenter) -> Queue:
    return make_queue(acme, name="Support", extension="4400")


@pytest.fixture
def vapi(acme: ContactCenter, vapi_fake: VapiFake) -> ProviderIntegration:
    return services.create_integration(
        center=acme, provider="vapi", label="Vapi prod", credentials={"api_key": API_KEYS["vapi"]}, by="tests"
    )
