"""The start-up check of SIP_PROXY_ADDRESSES (virtual_agents.checks), as `manage.py check` runs it."""

from __future__ import annotations

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from virtual_agents.checks import check_sip_proxy_addresses


@pytest.mark.parametrize(
    "addresses", [[], ["203.0.113.10"], ["203.0.113.10/32", "198.51.100.0/24"], ["198.51.100.7/28"]]
)
def test_addresses_vapi_accepts_pass(settings, addresses: list[str]) -> None:
    settings.SIP_PROXY_ADDRESSES = addresses

    assert check_sip_proxy_addresses() == []


@pytest.mark.parametrize(
    ("address", "check_id", "words"),
    [
        ("10.0.0.0/16", "virtual_agents.E002", "a /16 network is wider than Vapi accepts (/24 to /32)"),
        ("198.51.100.0/23", "virtual_agents.E002", "/23"),
        ("sip-proxy.voiso.com", "virtual_agents.E001", "not an IP address or network"),
        ("203.0.113.10/33", "virtual_agents.E001", "not an IP address or network"),
        ("2001:db8::10", "virtual_agents.W001", "Vapi takes IPv4 gateways only"),
    ],
)
def test_each_bad_address_gets_a_clear_message(settings, address: str, check_id: str, words: str) -> None:
    settings.SIP_PROXY_ADDRESSES = ["203.0.113.10", address]

    problems = check_sip_proxy_addresses()

    assert [p.id for p in problems] == [check_id]
    assert words in problems[0].msg and address in problems[0].msg


def test_manage_py_check_stops_on_a_wide_network(settings) -> None:
    settings.SIP_PROXY_ADDRESSES = ["10.0.0.0/8"]

    with pytest.raises(SystemCheckError, match=r"virtual_agents\.E002"):
        call_command("check")
