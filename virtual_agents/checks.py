"""Start-up checks of the settings the provider adapters depend on (`manage.py check`, runserver, migrate)."""

from __future__ import annotations

import ipaddress
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register

from virtual_agents.providers.vapi import MIN_NETMASK


@register()
def check_sip_proxy_addresses(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """SIP_PROXY_ADDRESSES go to the providers' allow-lists as they are, so a bad one is caught here.

    Vapi refuses an inbound gateway whose netmask is outside 24..32 (and any IPv6 one); the admin
    would otherwise learn it from a refused connect, long after deployment.
    """
    problems: list[CheckMessage] = []
    for address in settings.SIP_PROXY_ADDRESSES:
        try:
            network = ipaddress.ip_network(str(address).strip(), strict=False)
        except ValueError:
            problems.append(
                Error(
                    f"SIP_PROXY_ADDRESSES has {address!r}, which is not an IP address or network.",
                    hint="List the SIP proxy's egress addresses, comma-separated, "
                    "e.g. 203.0.113.10,198.51.100.0/28",
                    id="virtual_agents.E001",
                )
            )
            continue
        if isinstance(network, ipaddress.IPv4Network) and network.prefixlen < MIN_NETMASK:
            problems.append(
                Error(
                    f"SIP_PROXY_ADDRESSES has {address!r}: a /{network.prefixlen} network is wider than "
                    f"Vapi accepts (/{MIN_NETMASK} to /32), so connecting a Vapi bot would be refused.",
                    hint=f"List the proxy's addresses, or networks of /{MIN_NETMASK} or narrower.",
                    id="virtual_agents.E002",
                )
            )
        elif isinstance(network, ipaddress.IPv6Network):
            problems.append(
                Warning(
                    f"SIP_PROXY_ADDRESSES has the IPv6 address {address!r}; Vapi takes IPv4 gateways only, "
                    "so Vapi bots cannot be connected until an IPv4 address is listed.",
                    id="virtual_agents.W001",
                )
            )
    return problems
