"""Fake provider APIs (fake_providers): one real local HTTP server per test, with settings pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypeVar

import pytest

from tests.virtual_agents.fake_providers import API_KEYS, ElevenLabsFake, FakeProvider, RetellFake, VapiFake

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
