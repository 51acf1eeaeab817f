import pytest

from voiso_byob.sip import handoff_name_addr, handoff_uri, sip_domain


@pytest.mark.parametrize(
    ("extension", "tenant", "expected"),
    [
        ("4323", "acme", "sip:4323@acme.voiso.com"),
        ("1001", "yourcompany", "sip:1001@yourcompany.voiso.com"),
        ("123", "a", "sip:123@a.voiso.com"),
        ("12345678901234567890", "acme-eu-2", "sip:12345678901234567890@acme-eu-2.voiso.com"),
        ("0042", "ACME", "sip:0042@acme.voiso.com"),  # leading zeros kept, host lower-cased
        ("*72", "acme", "sip:*72@acme.voiso.com"),  # '*' is user-unreserved... as a mark
        ("12#", "acme", "sip:12%23@acme.voiso.com"),  # '#' must be escaped in the user part
    ],
)
def test_handoff_uri(extension: str, tenant: str, expected: str) -> None:
    assert handoff_uri(extension, tenant) == expected


def test_transport_goes_inside_name_addr() -> None:
    assert handoff_uri("1001", "acme", transport="tls") == "sip:1001@acme.voiso.com;transport=tls"
    assert handoff_name_addr("1001", "acme", transport="tcp") == "<sip:1001@acme.voiso.com;transport=tcp>"
    assert handoff_name_addr("1001", "acme") == "<sip:1001@acme.voiso.com>"


def test_suffix_comes_from_settings(settings) -> None:
    settings.SIP_DOMAIN_SUFFIX = "sip.example.net"
    assert handoff_uri("4323", "acme") == "sip:4323@acme.sip.example.net"
    assert sip_domain("acme", suffix="other.test") == "acme.other.test"


@pytest.mark.parametrize(
    "extension",
    ["", "12a4", "1 2", "٤٣٢٣", "４３２３", "1" * 33, "12@3", "1;x", "1\r\n"],
)
def test_rejects_bad_extensions(extension: str) -> None:
    with pytest.raises(ValueError):
        handoff_uri(extension, "acme")


@pytest.mark.parametrize(
    "tenant", ["", "-acme", "acme-", "ac.me", "acme.voiso.com", "a" * 64, "ac me", "acmé", "ac_me"]
)
def test_rejects_bad_tenants(tenant: str) -> None:
    with pytest.raises(ValueError):
        handoff_uri("4323", tenant)


def test_rejects_unknown_transport() -> None:
    with pytest.raises(ValueError):
        handoff_uri("4323", "acme", transport="sctp;evil=1")


def test_center_sip_domain(acme) -> None:
    assert acme.sip_domain == "acme.voiso.com"
