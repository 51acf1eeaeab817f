"""Provider adapters, one module per provider, behind `ProviderAdapter` (base.py)."""

from __future__ import annotations

from typing import Any

import httpx
from django.conf import settings

from virtual_agents.models import Provider
from virtual_agents.providers.base import ProviderAdapter
from virtual_agents.providers.elevenlabs import ElevenLabsAdapter
from virtual_agents.providers.generic_sip import GenericSipAdapter
from virtual_agents.providers.retell import RetellAdapter
from virtual_agents.providers.vapi import VapiAdapter

ADAPTERS: dict[str, type[ProviderAdapter]] = {
    Provider.ELEVENLABS: ElevenLabsAdapter,
    Provider.VAPI: VapiAdapter,
    Provider.RETELL: RetellAdapter,
    Provider.GENERIC_SIP: GenericSipAdapter,
}


def adapter_for(
    provider: str, credentials: dict[str, Any], *, client: httpx.Client | None = None
) -> ProviderAdapter:
    return ADAPTERS[provider](
        credentials, base_url=settings.PROVIDER_API_URLS.get(provider, ""), client=client
    )
