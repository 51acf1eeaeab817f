"""The Refer-To parser: a table of values a SIP layer may post to /api/v1/telephony/refer
(sip.md §5 rows, §3.2 provider examples, RFC examples, hostile and sloppy senders), then
properties over generated input. Pure unit tests: no database."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voiso_byob.errors import DomainError
from voiso_byob.sip import (
    REFER_TO_MAX_LENGTH,
    Headers,
    ReferTo,
    ReferToError,
    Replaces,
    external_handoff_uri,
    handoff_name_addr,
    parse_refer_to,
)

ACME = "acme.voiso.com"


def ok(value: str, *, id: str | None = None, **expected: Any) -> Any:
    return pytest.param(value, expected, id=id or value[:70])


def err(value: str, code: str, status: int = 400, *, id: str | None = None) -> Any:
    """`status`: 400 for what does not parse; a well-formed value refused on its merits has its own."""
    return pytest.param(value, code, status, id=id or value[:70])


def padded(length: int) -> str:
    """A valid name-addr of exactly `length` characters."""
    head = f"<sip:1001@{ACME}?X-Pad="
    return head + "a" * (length - len(head) - 1) + ">"


OK_CASES = [
    # sip.md §5, parse level (the resolver then answers queue/user/external/404/403).
    ok(f"<sip:4323@{ACME}>", scheme="sip", user="4323", host=ACME, port=None, extension="4323", number=None),
    ok(f"sip:1001@{ACME}", user="1001", extension="1001", header_params={}, uri=f"sip:1001@{ACME}"),
    ok(
        f'"Sales" <sip:4323@{ACME};transport=tcp>',
        display_name="Sales",
        extension="4323",
        uri_params={"transport": "tcp"},
    ),
    ok("<tel:+1-212-555-0199>", scheme="tel", user="", host="", number="+12125550199", extension=None),
    ok(f"<sip:+12125550199@{ACME};user=phone>", number="+12125550199", extension=None, host=ACME),
    ok(
        f"<sip:1001@{ACME}?Replaces=a%40b%3Bto-tag%3D1%3Bfrom-tag%3D2>",
        extension="1001",
        replaces=Replaces(call_id="a@b", to_tag="1", from_tag="2"),
        headers={"Replaces": "a@b;to-tag=1;from-tag=2"},
    ),
    ok(f"<sip:5555@{ACME}>", extension="5555", host=ACME),
    ok("<sip:4323@globex.voiso.com>", extension="4323", host="globex.voiso.com"),
    ok("<sip:4323@pbx.example.net>", extension="4323", host="pbx.example.net"),
    # §3.2 provider examples.
    ok(f"<sip:1001@{ACME};transport=tls>", uri_params={"transport": "tls"}, extension="1001"),
    ok("sip:15557654321@sip.zadarma.com", extension="15557654321", number=None, id="vapi digits"),
    ok("<sip:+12125550199@sip.zadarma.com>", number="+12125550199", extension=None, id="vapi +E.164"),
    ok(
        "<sip:15557654321@sip.zadarma.com?X-Foo=bar>",
        headers={"X-Foo": "bar"},
        extension="15557654321",
        uri="sip:15557654321@sip.zadarma.com?X-Foo=bar",
    ),
    ok("sip:1234567890@example.com", extension="1234567890", host="example.com"),
    ok("sips:user@domain", scheme="sips", user="user", host="domain", extension=None),
    ok(
        "<sip:1234567890@example.com?User-to-User=56a390f3d2b7310023a2%3Bencoding%3Dhex>",
        headers={"User-to-User": "56a390f3d2b7310023a2;encoding=hex"},
        id="elevenlabs user-to-user",
    ),
    ok("sip:user@retellai.com", user="user", host="retellai.com", port=None),
    ok("sip:user@retellai.com:5060", port=5060, uri="sip:user@retellai.com:5060"),
    ok("<sip:user@retellai.com:5061;transport=tls>", port=5061, uri_params={"transport": "tls"}),
    ok("sip:user@domain.com;transport=tcp", uri_params={}, header_params={"transport": "tcp"}),
    ok("<sip:user@domain.com;transport=UDP>", uri_params={"transport": "udp"}),
    ok("sip:manager@mytrunk.com", user="manager", host="mytrunk.com"),
    ok("<sip:manager@mytrunk.com?X-Call-Reason=escalation>", headers={"X-Call-Reason": "escalation"}),
    ok("sip:2001@pbx.example.com", extension="2001", host="pbx.example.com", id="bland sip"),
    ok("tel:+14155550123", scheme="tel", number="+14155550123", id="openai tel"),
    ok("sip:agent@example.com", user="agent", extension=None, id="openai sip"),
    ok(
        "<sip:dave@denver.example.org?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994>",
        user="dave",
        host="denver.example.org",
        replaces=Replaces(call_id="12345@192.168.118.3", to_tag="12345", from_tag="5FFE-3994"),
        uri="sip:dave@denver.example.org?Replaces=12345%40192.168.118.3%3Bto-tag%3D12345%3Bfrom-tag%3D5FFE-3994",
        id="rfc3891 example",
    ),
    # Display names: quoted text is data, never structure.
    ok(f'"Sales <EU>" <sip:4323@{ACME}>', display_name="Sales <EU>", extension="4323"),
    ok(f'"Sales > Support" <sip:4323@{ACME}>', display_name="Sales > Support", extension="4323"),
    ok(f'"Smith, John" <sip:1001@{ACME}>', display_name="Smith, John", extension="1001"),
    ok(f'"He said \\"hi\\"" <sip:1001@{ACME}>', display_name='He said "hi"'),
    ok(f'"back\\\\slash" <sip:1001@{ACME}>', display_name="back\\slash"),
    ok(f'"<sip:9999@evil.net>" <sip:4323@{ACME}>', display_name="<sip:9999@evil.net>", host=ACME),
    ok(f"Sales Team <sip:4323@{ACME}>", display_name="Sales Team", extension="4323"),
    ok(f"Sales   Team\t<sip:4323@{ACME}>", display_name="Sales Team", id="token display name, LWS"),
    ok(f'"" <sip:4323@{ACME}>', display_name="", extension="4323"),
    ok(f'"Продажи" <sip:4323@{ACME}>', display_name="Продажи", extension="4323"),
    ok(f'"Sales"<sip:4323@{ACME}>', display_name="Sales", extension="4323"),
    ok(f'"x;y?z=1" <sip:4323@{ACME}>', display_name="x;y?z=1", uri_params={}, headers={}),
    # Parameters after > or after a bare addr-spec are header params (RFC 3261 §20).
    ok(
        f"sip:1001@{ACME};transport=tls",
        uri_params={},
        header_params={"transport": "tls"},
        uri=f"sip:1001@{ACME}",
    ),
    ok(f"<sip:1001@{ACME}>;transport=tls", uri_params={}, header_params={"transport": "tls"}),
    ok(f'<sip:1001@{ACME}>;x="a, b; c"', header_params={"x": "a, b; c"}, id="quoted header param"),
    ok(f"<sip:1001@{ACME}> ; A = 1 ; flag", header_params={"a": "1", "flag": ""}),
    ok(f"sip:1001@{ACME} ;transport=tcp", header_params={"transport": "tcp"}, extension="1001"),
    ok("tel:+1-201-555-0123;ext=1234", number="+12015550123", uri_params={}, header_params={"ext": "1234"}),
    ok(f"sip:1001@{ACME};maddr=[2001:db8::1]", header_params={"maddr": "[2001:db8::1]"}, uri_params={}),
    # URI parameters inside <>.
    ok(f"<sip:1001@{ACME};lr>", uri_params={"lr": ""}, uri=f"sip:1001@{ACME};lr"),
    ok(f"<sip:1001@{ACME};Transport=TLS;TTL=5>", uri_params={"transport": "tls", "ttl": "5"}),
    ok(f"<sip:1001@{ACME};x-tag=%41b>", uri_params={"x-tag": "Ab"}),
    ok(
        f"<sip:1001@{ACME};maddr=evil.net>",
        uri_params={"maddr": "evil.net"},
        host=ACME,
        id="maddr is reported",
    ),
    ok(f"<sip:1001@{ACME};method=INVITE>", uri_params={"method": "INVITE"}),
    ok(
        f"<sip:1001@{ACME};transport=tcp?X-A=1>",
        uri_params={"transport": "tcp"},
        headers={"X-A": "1"},
        uri=f"sip:1001@{ACME};transport=tcp?X-A=1",
    ),
    # Telephone numbers in sip users.
    ok(
        "<sip:+1-212-555-1212@gw.example.com;user=phone>",
        user="+1-212-555-1212",
        number="+12125551212",
        extension=None,
        id="rfc3261 user=phone",
    ),
    ok(f"<sip:+1(212)555.0199@{ACME};user=phone>", number="+12125550199"),
    ok(f"<sip:%2B12125550199@{ACME};user=phone>", user="+12125550199", number="+12125550199"),
    ok(
        "<sip:+12125550199;ext=22@gw.example.com;user=phone>",
        user="+12125550199;ext=22",
        number="+12125550199",
        phone_ext="22",
    ),
    ok(
        "<sip:555-0199;phone-context=+1-212@gw.example.com;user=phone>",
        number=None,
        local_number="5550199",
        phone_context="+1212",
        extension=None,
        id="phone-context is not a prefix (sip)",
    ),
    ok(f"<sip:+12125550199@{ACME};user=Phone>", number="+12125550199", uri_params={"user": "phone"}),
    ok(
        f"<sip:+1-212-555-0199@{ACME}>", number="+12125550199", extension=None, id="+ user without user=phone"
    ),
    ok(f"<sip:+44-20-7946-0000@{ACME}>", number="+442079460000"),
    ok(f"<sip:+abc@{ACME}>", user="+abc", number=None, extension=None),
    ok(
        f"<sip:12125550199@{ACME}>",
        number=None,
        extension="12125550199",
        id="digits without + stay extension",
    ),
    # tel: URIs.
    ok(
        "<tel:+1-201-555-0123;ext=1234>",
        number="+12015550123",
        uri_params={"ext": "1234"},
        phone_ext="1234",
        isub=None,
        uri="tel:+12015550123;ext=1234",
    ),
    ok(
        "<tel:555-0199;phone-context=+1-212>",
        number=None,
        local_number="5550199",
        phone_context="+1212",
        extension=None,
        uri_params={},
        uri="tel:5550199;phone-context=+1212",
        id="phone-context is not a prefix (tel)",
    ),
    ok("<TEL:+12125550199>", scheme="tel", number="+12125550199"),
    ok("<tel:+1(212)555-0199>", number="+12125550199"),
    ok("<tel:+44.20.7946.0000>", number="+442079460000"),
    ok("<tel:+12125550199;isub=1234>", uri_params={"isub": "1234"}, isub="1234", phone_ext=None),
    ok("<tel:+12125550199;Foo=Bar>", uri_params={"foo": "Bar"}),
    # IP hosts.
    ok(
        "<sip:1001@[2001:DB8::1]:5061;transport=tls>",
        host="[2001:db8::1]",
        port=5061,
        uri="sip:1001@[2001:db8::1]:5061;transport=tls",
    ),
    ok("sip:1001@[::1]", host="[::1]", port=None),
    ok("<sip:1001@[2001:0db8:0000:0000:0000:0000:0000:0001]>", host="[2001:db8::1]"),
    ok("sip:1001@[::ffff:192.0.2.1]:5060", host="[::ffff:c000:201]", port=5060),
    ok("sip:1001@192.0.2.10", host="192.0.2.10", port=None),
    ok("sip:1001@192.0.2.10:5080", host="192.0.2.10", port=5080),
    # Ports.
    ok(f"sip:1001@{ACME}:1", port=1),
    ok(f"sip:1001@{ACME}:65535", port=65535),
    ok(f"sip:1001@{ACME}:05060", port=5060, uri=f"sip:1001@{ACME}:5060"),
    # Case: scheme and host fold, the user never does.
    ok("SIP:1001@ACME.VOISO.COM", scheme="sip", host=ACME, uri=f"sip:1001@{ACME}"),
    ok("<Sip:Alice@Acme.Voiso.Com>", user="Alice", host=ACME, uri=f"sip:Alice@{ACME}"),
    ok(f"<SIPS:1001@{ACME}>", scheme="sips", extension="1001"),
    ok(f"<sip:ALICE@{ACME}>", user="ALICE"),
    # %-escapes in the user: decoded exactly once.
    ok(f"<sip:%31001@{ACME}>", user="1001", extension="1001", uri=f"sip:1001@{ACME}"),
    ok(f"<sip:12%23@{ACME}>", user="12#", extension=None, uri=f"sip:12%23@{ACME}"),
    ok(f"<sip:%2a72@{ACME}>", user="*72", extension=None, uri=f"sip:*72@{ACME}"),
    ok(f"<sip:%2531@{ACME}>", user="%31", extension=None, uri=f"sip:%2531@{ACME}"),
    ok(f"<sip:%D9%A4%D9%A3%D9%A2%D9%A3@{ACME}>", user="٤٣٢٣", extension=None, id="escaped arabic-indic"),
    ok(
        f"<sip:%EF%BC%94%EF%BC%93%EF%BC%92%EF%BC%93@{ACME}>",
        user="４３２３",
        extension=None,
        id="escaped fullwidth",
    ),
    ok(f"<sip:al%20ice@{ACME}>", user="al ice", uri=f"sip:al%20ice@{ACME}"),
    ok(f"<sip:a%40b@{ACME}>", user="a@b", host=ACME, uri=f"sip:a%40b@{ACME}"),
    ok(f"<sip:1001;tag@{ACME}>", user="1001;tag", extension=None, uri_params={}),
    ok(f"<sip:a,b@{ACME}>", user="a,b", extension=None),
    ok(f"<sip:*72@{ACME}>", user="*72", extension=None),
    # Hosts: plain DNS names, compared exactly by the resolver.
    ok("sip:4323@acme.voiso.com.evil.net", host="acme.voiso.com.evil.net", extension="4323"),
    ok(f"sip:4323@{ACME}.", host=ACME, uri=f"sip:4323@{ACME}", id="trailing dot"),
    ok("<sip:4323@ACME.Voiso.Com.>", host=ACME),
    ok("sip:4323@xn--80ak6aa92e.com", host="xn--80ak6aa92e.com", id="punycode is plain LDH"),
    ok("sip:4323@acme-voiso.com", host="acme-voiso.com"),
    ok(f"sip:{ACME}", user="", host=ACME, extension=None, uri=f"sip:{ACME}"),
    ok("sip:4323@localhost", host="localhost"),
    ok("sip:4323@1acme.voiso.com", host="1acme.voiso.com"),
    ok(f"sip:4323@{'a' * 63}.com", host=f"{'a' * 63}.com", id="63-char label"),
    # Whitespace around the whole value.
    ok(f"  <sip:1001@{ACME}>  ", extension="1001"),
    ok(f'\t"Sales" <sip:4323@{ACME}>\t', display_name="Sales"),
    # URI headers (allow-list: X-*, User-to-User, Replaces).
    ok(f"<sip:1001@{ACME}?x-foo=bar>", headers={"x-foo": "bar"}),
    ok(f"<sip:1001@{ACME}?X-A=1&X-B=2>", headers={"X-A": "1", "X-B": "2"}),
    ok(f"<sip:1001@{ACME}?X-A=>", headers={"X-A": ""}),
    ok(
        f"<sip:1001@{ACME}?X-A=hello%20world%26more>",
        headers={"X-A": "hello world&more"},
        uri=f"sip:1001@{ACME}?X-A=hello%20world%26more",
    ),
    ok(f"<sip:1001@{ACME}?X%2DFoo=1>", headers={"X-Foo": "1"}),
    ok(f"<sip:1001@{ACME}?user-to-user=abc>", headers={"user-to-user": "abc"}),
    ok(f"<sip:1001@{ACME}?X-A=%25>", headers={"X-A": "%"}, id="escaped percent decoded once"),
    # Replaces variants.
    ok(
        f"<sip:1001@{ACME}?Replaces=abc%3Bfrom-tag%3D2%3Bto-tag%3D1%3Bearly-only>",
        replaces=Replaces(call_id="abc", to_tag="1", from_tag="2", early_only=True),
    ),
    ok(
        f"<sip:1001@{ACME}?Replaces=abc%40host%20%3B%20to-tag%3D1%3Bfrom-tag%3D2%3Bfoo%3Dbar>",
        replaces=Replaces(call_id="abc@host", to_tag="1", from_tag="2"),
        id="replaces with spaces and generic param",
    ),
    ok(
        f"<sip:1001@{ACME}?replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>",
        replaces=Replaces(call_id="abc", to_tag="1", from_tag="2"),
        id="replaces header name any case",
    ),
    ok(
        f"<sip:1001@{ACME}?X-A=1&Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2>",
        headers={"X-A": "1", "Replaces": "abc;to-tag=1;from-tag=2"},
        replaces=Replaces(call_id="abc", to_tag="1", from_tag="2"),
    ),
    # Length: exactly at the limit is fine.
    ok(padded(REFER_TO_MAX_LENGTH), extension="1001", id="at the length limit"),
    # Issue #12 item 1: a local number keeps its context; a domain context may name our plan.
    ok(
        f"<tel:4323;phone-context={ACME}>",
        number=None,
        local_number="4323",
        phone_context=ACME,
        extension="4323",
        uri=f"tel:4323;phone-context={ACME}",
        id="local number in a domain context",
    ),
    ok("<tel:4323;phone-context=ACME.Voiso.Com.>", phone_context=ACME, extension="4323"),
    ok(
        f"<sip:4323;phone-context={ACME}@{ACME};user=phone>",
        number=None,
        local_number="4323",
        phone_context=ACME,
        extension="4323",
    ),
    ok("<tel:863-1234;phone-context=+1-914-555>", local_number="8631234", phone_context="+1914555"),
    ok(f"<tel:1001;phone-context={ACME}>", extension="1001", id="domain context"),
    ok("<tel:ABC;phone-context=+1>", local_number="ABC", extension=None, id="hex local number"),
    ok(f"<tel:*72;phone-context={ACME}>", local_number="*72", extension=None),
    # Item 2: ext and isub are reported, never dropped.
    ok("<tel:+1-201-555-0123;isub=1234>", number="+12015550123", isub="1234", phone_ext=None),
    ok("<tel:+12015550123;ext=12-34>", phone_ext="1234", id="ext with a visual separator"),
    ok(
        f"<sip:+1-201-555-0123;ext=1234@{ACME};user=phone>",
        number="+12015550123",
        phone_ext="1234",
        extension=None,
    ),
    ok(f"<sip:+1-201-555-0123;isub=1234@{ACME};user=phone>", isub="1234"),
    ok(f"<tel:4323;ext=1;phone-context={ACME}>", extension="4323", phone_ext="1", id="ext on a local"),
    # Item 3: the method is reported; the resolver refuses all but INVITE.
    ok(f"<sip:4323@{ACME};method=SUBSCRIBE>", uri_params={"method": "SUBSCRIBE"}, extension="4323"),
    # Item 5: harmless URI headers are ignored one by one (RFC 3261 §19.1.3 example).
    ok(
        f"<sip:4323@{ACME}?subject=project%20x&priority=urgent>",
        headers={},
        ignored_headers=("subject", "priority"),
        extension="4323",
        uri=f"sip:4323@{ACME}",
    ),
    ok(f"<sip:4323@{ACME}?X-A=1&Subject=hi>", headers={"X-A": "1"}, ignored_headers=("Subject",)),
    ok(f"<sip:4323@{ACME}?s=hi&k=replaces>", headers={}, ignored_headers=("s", "k"), id="compact forms"),
    # Item 6: RFC 4475 well-formed values, answered on their merits.
    ok(f"<sip:4323%00@{ACME}>", user="4323\x00", extension=None, uri=f"sip:4323%00@{ACME}"),
    ok(f"<sip:%00@{ACME}>", user="\x00", extension=None, id="escaped NUL in user"),
    ok(f"<sip:%0D%0A@{ACME}>", user="\r\n", extension=None, id="escaped CRLF in user"),
    ok(f"<sip:4323%FF@{ACME}>", extension=None, uri=f"sip:4323%FF@{ACME}", id="escape not UTF-8"),
    ok(f'"a\\\x01b\\\x7f" <sip:4323@{ACME}>', display_name="a\x01b\x7f", extension="4323"),
    ok(f'"\\\x00\\\x1b[31m" <sip:4323@{ACME}>', display_name="\x00\x1b[31m", id="quoted NUL, ESC"),
    ok(f'"\\\t" <sip:4323@{ACME}>', display_name="\t", id="quoted tab"),
    ok('"' + "x" * 1500 + f'" <sip:4323@{ACME}>', display_name="x" * 1500, id="1.5 kB display name"),
]

ERROR_CASES = [
    # sip.md §5.
    err(f"<sip:4323@{ACME}", "malformed_uri"),
    err("<https://acme.voiso.com/4323>", "unsupported_scheme"),
    err("<tel:555-0199>", "invalid_number"),
    # Structure: empty, unbalanced, no scheme.
    err("", "malformed_uri", id="empty"),
    err("   ", "malformed_uri", id="blank"),
    err("\t", "malformed_uri", id="tab only"),
    err(f"sip:4323@{ACME}>", "malformed_uri"),
    err(f"<<sip:4323@{ACME}>>", "malformed_uri"),
    err(f"<sip:4323@{ACME}>>", "malformed_uri"),
    err(f"<sip:4323@{ACME}><sip:1001@{ACME}>", "malformed_uri"),
    err(f'"Sales <sip:4323@{ACME}>', "malformed_uri", id="unterminated display name"),
    err("<>", "malformed_uri"),
    err("2001", "malformed_uri", id="bland bare extension"),
    err(f"4323@{ACME}", "malformed_uri", id="no scheme"),
    err("+12125550199", "malformed_uri", id="bare number"),
    err("<sip:>", "malformed_uri"),
    err("sip:", "malformed_uri"),
    err("sip:1001@", "malformed_uri", id="missing host"),
    err("<sip:1001@;transport=tcp>", "malformed_uri", id="missing host before params"),
    err(f"<sip:@{ACME}>", "malformed_uri", id="empty user"),
    # Escapes.
    err(f"<sip:%G1@{ACME}>", "malformed_uri"),
    err(f"<sip:%4@{ACME}>", "malformed_uri"),
    err(f"<sip:100%@{ACME}>", "malformed_uri"),
    # Ports.
    err(f"sip:1001@{ACME}:0", "malformed_uri"),
    err(f"sip:1001@{ACME}:65536", "malformed_uri"),
    err(f"sip:1001@{ACME}:99999", "malformed_uri"),
    err(f"sip:1001@{ACME}:123456", "malformed_uri"),
    err(f"sip:1001@{ACME}:", "malformed_uri"),
    err(f"sip:1001@{ACME}:abc", "malformed_uri"),
    err(f"sip:1001@{ACME}:٥٠٦٠", "malformed_uri", id="arabic-indic port"),
    err(f"sip:1001@{ACME}:5060:5060", "malformed_uri"),
    err(f"sip:1001@{ACME}:-1", "malformed_uri"),
    # Whitespace inside the URI.
    err(f"<sip:1001 @{ACME}>", "malformed_uri"),
    err(f"< sip:1001@{ACME}>", "malformed_uri"),
    err(f"<sip:1001@{ACME} >", "malformed_uri"),
    err("<sip:1001@acme voiso.com>", "malformed_uri"),
    err(f"sip:1001@{ACME} extra", "malformed_uri"),
    err(f"sip: 1001@{ACME}", "malformed_uri"),
    # Line breaks and control characters anywhere (header injection).
    err(f"sip:1001@{ACME}\r\n", "malformed_uri", id="trailing CRLF"),
    err(f"sip:1001@{ACME}\r\nVia: SIP/2.0/UDP evil.net", "malformed_uri", id="CRLF injection"),
    err(f"\r\nsip:1001@{ACME}", "malformed_uri", id="leading CRLF"),
    err(f"sip:1001@{ACME}\n", "malformed_uri", id="LF"),
    err(f"sip:1001@{ACME}\r", "malformed_uri", id="CR"),
    err(f"sip:1001@{ACME}\x00", "malformed_uri", id="NUL"),
    err(f'"Sales\r\n" <sip:4323@{ACME}>', "malformed_uri", id="CRLF in display name"),
    err(f"sip:1001@{ACME}\x0b", "malformed_uri", id="vertical tab"),
    err(f"\x1b[31msip:1001@{ACME}", "malformed_uri", id="ESC"),
    err(f"sip:1001@{ACME}\x7f", "malformed_uri", id="DEL"),
    err(f"sip:1001@{ACME}\x85", "malformed_uri", id="NEL"),
    err(f"sip:1001@{ACME}\u2028", "malformed_uri", id="line separator"),
    err(f"sip:1001\ud800@{ACME}", "malformed_uri", id="lone surrogate"),
    # Lookalikes.
    err("sip:1001@асme.voiso.com", "malformed_uri", id="cyrillic host"),
    err("sip:4323@\u212aiwi.voiso.com", "malformed_uri", id="kelvin sign host"),
    err("sip:4323@ａｃｍｅ.voiso.com", "malformed_uri", id="fullwidth host"),
    err(f"sip:4323@{ACME}\u200b", "malformed_uri", id="zero-width space host"),
    err(f"sip:٤٣٢٣@{ACME}", "malformed_uri", id="raw arabic-indic user"),
    err(f"sip:４３２３@{ACME}", "malformed_uri", id="raw fullwidth user"),
    err(f"ſip:4323@{ACME}", "malformed_uri", id="long s scheme"),
    err(f"sip:1001@evil.net@{ACME}", "malformed_uri", id="two @"),
    # Hosts.
    err("sip:1001@acme..voiso.com", "malformed_uri"),
    err("sip:1001@-acme.voiso.com", "malformed_uri"),
    err("sip:1001@acme-.voiso.com", "malformed_uri"),
    err("sip:1001@acme.voiso.123", "malformed_uri"),
    err("sip:1001@acme_eu.voiso.com", "malformed_uri"),
    err("sip:1001@.acme.voiso.com", "malformed_uri"),
    err(f"sip:1001@{ACME}..", "malformed_uri"),
    err("sip:1001@%61cme.voiso.com", "malformed_uri", id="escape in host"),
    err("sip:1001@1.2.3", "malformed_uri"),
    err("sip:1001@256.1.1.1", "malformed_uri"),
    err("sip:1001@01.2.3.4", "malformed_uri"),
    err("sip:1001@1.2.3.4.", "malformed_uri"),
    err("<sip:1001@[::1%eth0]>", "malformed_uri", id="ipv6 zone id"),
    err("sip:1001@[1.2.3.4]", "malformed_uri"),
    err("sip:1001@[::g]", "malformed_uri"),
    err("sip:1001@[::1", "malformed_uri"),
    err("sip:1001@[::1]x", "malformed_uri"),
    err("sip:1001@::1", "malformed_uri", id="ipv6 without brackets"),
    err(f"sip:1001@{'a' * 64}.com", "malformed_uri", id="64-char label"),
    err(f"sip:1001@{'a.' * 127}com", "malformed_uri", id="host over 253"),
    # URI headers and parameters: syntax.
    err(f"sip:1001@{ACME}?X-Foo=bar", "malformed_uri", id="bare addr-spec with headers"),
    err(f"<sip:1001@{ACME}?>", "malformed_uri"),
    err(f"<sip:1001@{ACME}?X-Foo>", "malformed_uri"),
    err(f"<sip:1001@{ACME}?=bar>", "malformed_uri"),
    err(f"<sip:1001@{ACME}?X-A=1&>", "malformed_uri"),
    err(f"<sip:1001@{ACME}?X-A=a=b>", "malformed_uri"),
    err(f"<sip:1001@{ACME}?X-A=1&x-a=2>", "malformed_uri", id="repeated header"),
    err(f"<sip:1001@{ACME}?Replaces=abc;to-tag=1;from-tag=2>", "malformed_uri", id="unescaped replaces"),
    err(f"<sip:1001@{ACME}?X-A=bot@evil.net>", "malformed_uri", id="unescaped @ in header value"),
    err(f"<sip:1001@{ACME};>", "malformed_uri"),
    err(f"<sip:1001@{ACME};;lr>", "malformed_uri"),
    err(f"<sip:1001@{ACME};transport=>", "malformed_uri"),
    err(f"<sip:1001@{ACME};=tcp>", "malformed_uri"),
    err(f"<sip:1001@{ACME};a=b=c>", "malformed_uri"),
    err(f"<sip:1001@{ACME};transport=tcp;TRANSPORT=udp>", "malformed_uri", id="repeated uri param"),
    err(f"<sip:1001@{ACME};x=%0A>", "malformed_uri", id="escaped LF in param"),
    err(f"<sip:1001@{ACME};%E2%84%AAey=1>", "malformed_uri", id="non-ASCII param name"),
    # Header parameters and display names.
    err(f"sip:1001@{ACME};transport=tls;transport=tcp", "malformed_uri", id="repeated header param"),
    err(f"<sip:1001@{ACME}> junk", "malformed_uri"),
    err(f"<sip:1001@{ACME}>;a b", "malformed_uri"),
    err(f"<sip:1001@{ACME}>;", "malformed_uri"),
    err(f'<sip:1001@{ACME}>;x="unterminated', "malformed_uri"),
    err(f"<sip:1001@{ACME}>;x=a@b", "malformed_uri"),
    err(f'"A" "B" <sip:1001@{ACME}>', "malformed_uri"),
    err(f'"Sales" junk <sip:1001@{ACME}>', "malformed_uri"),
    err(f"Продажи <sip:4323@{ACME}>", "malformed_uri", id="unquoted non-ASCII display name"),
    err(f'"\\é" <sip:4323@{ACME}>', "malformed_uri", id="quoted-pair of non-ASCII"),
    # tel: syntax.
    err("tel:", "malformed_uri"),
    err("<tel:+>", "malformed_uri"),
    err("tel:+1 212 555 0199", "malformed_uri"),
    err(f"<tel:+12125550199@{ACME}>", "malformed_uri"),
    err("<tel:+12125550199?X-A=1>", "malformed_uri"),
    err("<tel:xyz>", "malformed_uri"),
    err("<tel:+12125550199;ext=>", "malformed_uri"),
    err("<tel:+12125550199;ext=abc>", "malformed_uri"),
    err("<tel:+12125550199;phone-context=+1>", "malformed_uri", id="context on a global number"),
    err("<tel:+12125550199;ext=1;ext=2>", "malformed_uri"),
    err("<tel:+12125550199;x_y=1>", "malformed_uri"),
    err("<tel:+١٢١٢٥٥٥٠١٩٩>", "malformed_uri", id="arabic-indic tel digits"),
    # Schemes.
    err("https://acme.voiso.com/4323", "unsupported_scheme"),
    err("<http://acme.voiso.com>", "unsupported_scheme"),
    err("<HTTPS://acme.voiso.com>", "unsupported_scheme"),
    err(f"<mailto:agent@{ACME}>", "unsupported_scheme"),
    err("<urn:uuid:f81d4fae-7dec-11d0-a765-00a0c91e6bf6>", "unsupported_scheme"),
    err("<data:text/plain,4323>", "unsupported_scheme"),
    err("<javascript:alert(1)>", "unsupported_scheme"),
    err("javascript:alert(1)", "unsupported_scheme"),
    err("<file:///etc/passwd>", "unsupported_scheme"),
    err(f"<sipx:1001@{ACME}>", "unsupported_scheme"),
    err(f"<sip+tls:1001@{ACME}>", "unsupported_scheme"),
    err("<tels:+12125550199>", "unsupported_scheme"),
    err(f"<im:agent@{ACME}>", "unsupported_scheme"),
    err(f"<h323:1001@{ACME}>", "unsupported_scheme"),
    err(f"<ws://{ACME}>", "unsupported_scheme"),
    err(f"{ACME}:5060", "unsupported_scheme", id="host:port reads as a scheme"),
    # Numbers that do not parse: 400.
    err("tel:5550199", "invalid_number"),
    err(f"<sip:4323@{ACME};user=phone>", "invalid_number", id="user=phone local without context"),
    err(f"<sip:alice@{ACME};user=phone>", "invalid_number"),
    err(f"<sip:{ACME};user=phone>", "invalid_number", id="user=phone without user"),
    err("<sip:+12125550199;phone-context=+1@gw.example.com;user=phone>", "invalid_number"),
    err("<tel:555;phone-context=a_b.com>", "malformed_uri", id="context neither domain nor digits"),
    err("<tel:555;phone-context=+>", "malformed_uri", id="context without digits"),
    err("<tel:+12015550123;isub=a%20b>", "malformed_uri", id="isub with a space"),
    err("<tel:+12015550123;isub=" + "1" * 41 + ">", "malformed_uri", id="isub over 20 octets"),
    # Well-formed numbers that no numbering plan assigns: 404, or 484 when digits are missing.
    err("<tel:+15557654321>", "invalid_number", 404, id="fictional 555 area code"),
    err("<tel:+2065551212>", "invalid_number", 404, id="issue 12 example"),
    err("<tel:+1234567890123456>", "invalid_number", 404, id="16 digits"),
    err("<tel:+999123>", "invalid_number", 404),
    err("<tel:+1212555019>", "invalid_number", 484, id="too short"),
    err("<tel:+0123456789>", "invalid_number", 404, id="country code 0"),
    err("<sip:+15557654321@sip.zadarma.com>", "invalid_number", 404, id="vapi fictional +E.164"),
    err(f"<sip:+4323@{ACME}>", "invalid_number", 484),
    err(f"<sip:+1-212-555-0199-9999-99@{ACME}>", "invalid_number", 404, id="17 digits in sip user"),
    err(f"<sip:%2B15557654321@{ACME};user=phone>", "invalid_number", 404),
    err("<tel:+12015550123;ext=" + "1" * 33 + ">", "invalid_number", 404, id="ext over 32 digits"),
    # Several values.
    err(f"<sip:4323@{ACME}>, <sip:1001@{ACME}>", "multiple_values"),
    err(f"sip:4323@{ACME},sip:1001@{ACME}", "multiple_values"),
    err(f"sip:4323@{ACME}, sip:1001@{ACME}", "multiple_values"),
    err(f"<sip:4323@{ACME}>,", "multiple_values"),
    err(f",<sip:4323@{ACME}>", "multiple_values"),
    err(f"sip:a,b@{ACME}", "multiple_values", id="bare comma splits values"),
    err(f'"A" <sip:4323@{ACME}>, "B" <sip:1001@{ACME}>', "multiple_values"),
    err(f"<sip:4323@{ACME}>;x=1,<sip:9999@evil.net>", "multiple_values"),
    err(f"Sales, Support <sip:4323@{ACME}>", "multiple_values", id="unquoted comma in display name"),
    err("<tel:+12125550199>, <tel:+14155550123>", "multiple_values"),
    # Length, checked before anything else.
    err(padded(REFER_TO_MAX_LENGTH + 1), "too_long", id="one character over"),
    err("x" * (REFER_TO_MAX_LENGTH + 1), "too_long"),
    err("\r\n" * (REFER_TO_MAX_LENGTH // 2 + 1), "too_long", id="long and CRLF"),
    err(" " * (REFER_TO_MAX_LENGTH + 1), "too_long", id="length counted before stripping"),
    err(f"<sip:{'%31' * (REFER_TO_MAX_LENGTH // 3)}@{ACME}>", "too_long"),
    err('"' + "x" * REFER_TO_MAX_LENGTH + f'" <sip:4323@{ACME}>', "too_long", id="the display name counts"),
    # Credentials.
    err(f"sip:1001:secret@{ACME}", "credentials_in_uri"),
    err(f"<sips:alice:hunter2@{ACME}>", "credentials_in_uri"),
    err(f"<sip:1001:@{ACME}>", "credentials_in_uri"),
    err(f"<sip:1001:p%40ss@{ACME};transport=tls>", "credentials_in_uri"),
    err(f"<sip:+12125550199:pw@{ACME};user=phone>", "credentials_in_uri"),
    # URI headers we will not honour (RFC 3261 §19.1.5): a policy refusal, 403.
    err(f"<sip:1001@{ACME}?Referred-By=%3Csip:bot%40evil.net%3E>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?Call-ID=abc>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?i=abc>", "header_not_allowed", 403, id="compact Call-ID"),
    err(f"<sip:1001@{ACME}?From=%3Csip:ceo%40{ACME}%3E>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?Via=SIP/2.0/UDP%20evil.net>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?body=hello>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?Contact=sip:evil.net>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?Route=%3Csip:evil.net%3Blr%3E>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?X-=1>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?X_Foo=1>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?XFoo=1>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?Replace=abc>", "header_not_allowed", 403, id="not Replaces, not ignored"),
    err(f"<sip:1001@{ACME}?User-to-User=ok&Max-Forwards=70>", "header_not_allowed", 403),
    err(f"<sip:1001@{ACME}?Subject=a&Route=%3Csip:evil.net%3E>", "header_not_allowed", 403),
    # URI headers that do not decode to a header: 400.
    err(f"<sip:1001@{ACME}?X-%E2%84%AA=1>", "malformed_uri", id="kelvin sign in header name"),
    err(f"<sip:1001@{ACME}?X-Foo%0D%0A=1>", "malformed_uri", id="CRLF in header name"),
    err(f"<sip:1001@{ACME}?X-Foo=a%0D%0AVia:%20SIP/2.0/UDP%20evil.net>", "malformed_uri", id="CRLF value"),
    err(f"<sip:1001@{ACME}?X-Foo=%00>", "malformed_uri", id="NUL value"),
    err(f"<sip:1001@{ACME}?X-Foo=%0A>", "malformed_uri", id="LF value"),
    err(f"<sip:1001@{ACME}?X-Foo=%E2%80%A8>", "malformed_uri", id="line separator value"),
    err(f"<sip:1001@{ACME}?Subject=%0D%0AVia:%20x>", "malformed_uri", id="CRLF in an ignored header"),
    err(f"<sip:1001@{ACME}?Subject=a&subject=b>", "malformed_uri", id="repeated ignored header"),
    # Quoted-pairs may escape control characters, but not CR or LF; raw ones are refused.
    err(f'"a\\\r" <sip:4323@{ACME}>', "malformed_uri", id="quoted-pair CR"),
    err(f'"a\\\n" <sip:4323@{ACME}>', "malformed_uri", id="quoted-pair LF"),
    err(f'"a\x01" <sip:4323@{ACME}>', "malformed_uri", id="raw control in quotes"),
    err(f'"a\\\\\x01" <sip:4323@{ACME}>', "malformed_uri", id="escaped backslash, raw control"),
    err(f"\\\x01<sip:4323@{ACME}>", "malformed_uri", id="quoted-pair outside quotes"),
    err(f"<sip:4323\\\x01@{ACME}>", "malformed_uri", id="quoted-pair in the URI"),
    # Replaces (RFC 3891) that cannot name one dialog.
    err(f"<sip:1001@{ACME}?Replaces=>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=abc>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=abc%3Bto-tag%3D1>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=abc%3Bfrom-tag%3D2>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=%3Bto-tag%3D1%3Bfrom-tag%3D2>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=abc%3Bto-tag%3D%3Bfrom-tag%3D2>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=abc%3Bto-tag%3D1%3Bto-tag%3D3%3Bfrom-tag%3D2>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2%3Bearly-only%3D1>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=a%20b%3Bto-tag%3D1%3Bfrom-tag%3D2>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=abc%3Bto-tag%3D%221%22%3Bfrom-tag%3D2>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=abc%3Bto-tag%3D1%3Bfrom-tag%3D2%3B>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=a%40b%40c%3Bto-tag%3D1%3Bfrom-tag%3D2>", "malformed_replaces"),
    err(f"<sip:1001@{ACME}?Replaces=a%2Cb%3Bto-tag%3D1%3Bfrom-tag%3D2>", "malformed_replaces"),
]


def test_the_table_is_big_enough() -> None:
    assert len(OK_CASES) + len(ERROR_CASES) >= 120


@pytest.mark.parametrize(("value", "expected"), OK_CASES)
def test_parses(value: str, expected: dict[str, Any]) -> None:
    result = parse_refer_to(value)
    assert {name: getattr(result, name) for name in expected} == expected


@pytest.mark.parametrize(("value", "code", "status"), ERROR_CASES)
def test_refuses(value: str, code: str, status: int) -> None:
    with pytest.raises(ReferToError) as caught:
        parse_refer_to(value)
    assert (caught.value.code, caught.value.sip_status) == (code, status)


def _uri_fields(result: ReferTo) -> tuple[Any, ...]:
    return (
        result.scheme,
        result.user,
        result.host,
        result.port,
        result.uri_params,
        dict(result.headers),
        result.number,
        result.replaces,
        result.extension,
        result.local_number,
        result.phone_context,
        result.phone_ext,
        result.isub,
    )


@pytest.mark.parametrize(("value", "expected"), OK_CASES)
def test_normalised_uri_parses_back_to_the_same_target(value: str, expected: dict[str, Any]) -> None:
    result = parse_refer_to(value)
    assert _uri_fields(parse_refer_to(f"<{result.uri}>")) == _uri_fields(result)


def test_error_carries_code_message_and_sip_status() -> None:
    with pytest.raises(ReferToError) as caught:
        parse_refer_to("<https://acme.voiso.com/4323>")
    error = caught.value
    assert isinstance(error, DomainError)  # the API's exception handler shapes it
    assert (error.code, error.sip_status, error.status_code, error.field) == (
        "unsupported_scheme",
        400,
        400,
        "refer_to",
    )
    assert "sip:" in error.message


def test_non_string_is_malformed() -> None:
    with pytest.raises(ReferToError) as caught:
        parse_refer_to(None)  # type: ignore[arg-type]
    assert caught.value.code == "malformed_uri"


def test_headers_keep_their_spelling_and_ignore_case_on_lookup() -> None:
    headers = parse_refer_to(f"<sip:1001@{ACME}?x-Call-Reason=escalation&User-To-User=ab>").headers
    assert list(headers) == ["x-Call-Reason", "User-To-User"]
    assert headers["X-CALL-REASON"] == "escalation"
    assert headers.get("user-to-user") == "ab"
    assert "x-call-reason" in headers
    assert "X-Other" not in headers
    assert headers == {"x-Call-Reason": "escalation", "User-To-User": "ab"}
    assert "X-\u212aey" not in Headers({"X-key": "1"})  # the Kelvin sign does not fold to "k"


def test_result_is_immutable_and_hashable() -> None:
    result = parse_refer_to(f"<sip:1001@{ACME}>")
    with pytest.raises(AttributeError):
        result.user = "4323"  # type: ignore[misc]
    assert hash(result) == hash(parse_refer_to(f"sip:1001@{ACME}"))


@pytest.mark.parametrize(
    ("extension", "transport"),
    [("4323", None), ("1001", "tls"), ("0042", "tcp"), ("12#", None), ("*72", "wss")],
)
def test_parses_what_handoff_name_addr_builds(extension: str, transport: str | None) -> None:
    result = parse_refer_to(handoff_name_addr(extension, "acme", transport=transport))
    assert (result.user, result.host) == (extension, ACME)
    assert result.uri_params == ({"transport": transport} if transport else {})
    assert result.extension == (extension if extension.isdigit() else None)


def test_parses_what_external_handoff_uri_builds() -> None:
    uri = external_handoff_uri("+12125550199", "acme")
    bracketed, bare = parse_refer_to(f"<{uri}>"), parse_refer_to(uri)
    assert (bracketed.number, bracketed.uri_params, bracketed.uri) == ("+12125550199", {"user": "phone"}, uri)
    # Providers wrap the addr-spec themselves; sent bare, ;user=phone is a header param (RFC 3261 §20).
    assert (bare.number, bare.uri_params, bare.header_params) == ("+12125550199", {}, {"user": "phone"})


# --- properties -------------------------------------------------------------------------------

# Pieces of SIP syntax, so that random text reaches the deeper branches, not only "no scheme".
SIP_PIECES = [
    *'<>"\\;?=&@%[]:.,-+() \t#*/',
    *"0123456789abcdefxyzABCDEF",
    "sip:",
    "sips:",
    "tel:",
    "SIP:",
    "%2",
    "%3B",
    "%40",
    "%00",
    "%0D%0A",
    "%D9%A4",
    "٤",
    "а",
    "\r\n",
    "X-A=",
    "Replaces=",
    "to-tag=",
    "from-tag=",
    "early-only",
    "user=phone",
    "transport=tls",
    "phone-context=+1",
    "ext=",
    "acme.voiso.com",
    "[::1]",
    ":5060",
    "+1-212-555-0199",
    "1001",
]
sipish_text = st.lists(st.sampled_from(SIP_PIECES), max_size=40).map("".join)
# Random pieces dropped into one slot of an otherwise valid value reach each component's parser.
FRAMES = [
    "<sip:{}@acme.voiso.com>",
    "<sip:{}@gw.example.com;user=phone>",
    "<sip:1001@{}>",
    "<sip:1001@acme.voiso.com;{}>",
    "<sip:1001@acme.voiso.com?{}>",
    "<sip:1001@acme.voiso.com?X-A={}>",
    "<sip:1001@acme.voiso.com?Replaces={}>",
    "<tel:{}>",
    "sip:1001@acme.voiso.com;{}",
    '"{}" <sip:1001@acme.voiso.com>',
    "{}<sip:1001@acme.voiso.com>",
]
framed_text = st.builds(lambda frame, piece: frame.format(piece), st.sampled_from(FRAMES), sipish_text)


def _parse_or_refuse(value: str) -> ReferTo | None:
    try:
        return parse_refer_to(value)
    except ReferToError as error:
        # 400: does not parse; 403 a header we will not honour; 404/484 a number no plan assigns.
        assert error.code
        assert error.sip_status == 400 or (error.code, error.sip_status) in {
            ("header_not_allowed", 403),
            ("invalid_number", 404),
            ("invalid_number", 484),
        }
        return None


@settings(max_examples=300)
@given(st.text(max_size=300))
def test_arbitrary_text_parses_or_is_refused(value: str) -> None:
    _parse_or_refuse(value)


@settings(max_examples=1000)
@given(sipish_text | framed_text)
def test_sipish_text_parses_or_is_refused_and_what_parses_is_consistent(value: str) -> None:
    result = _parse_or_refuse(value)
    if result is None:
        return
    assert result.scheme in {"sip", "sips", "tel"}
    assert result.host == result.host.lower() and result.host.isascii()
    if result.extension is not None:
        assert result.extension.isascii() and result.extension.isdigit()
        # Only the user itself, or a local number whose context is a domain (never "+digits").
        assert result.extension == result.user or (
            result.extension == result.local_number and not (result.phone_context or "+").startswith("+")
        )
    assert result.number is None or result.local_number is None
    assert result.scheme != "tel" or (result.number or result.local_number) is not None
    if len(result.uri) <= REFER_TO_MAX_LENGTH - 2:
        assert _uri_fields(parse_refer_to(f"<{result.uri}>")) == _uri_fields(result)


dns_labels = st.from_regex(r"[a-z0-9](?:[a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
top_labels = st.from_regex(r"[a-z](?:[a-z0-9-]{0,10}[a-z0-9])?", fullmatch=True)
hostnames = st.builds(
    lambda labels, top: ".".join([*labels, top]), st.lists(dns_labels, max_size=4), top_labels
)


@given(
    extension=st.from_regex(r"[0-9]{1,32}", fullmatch=True),
    host=hostnames,
    port=st.none() | st.integers(min_value=1, max_value=65535),
    transport=st.sampled_from([None, "udp", "tcp", "tls", "ws", "wss", "sctp"]),
    is_upper=st.booleans(),
)
def test_generated_uris_round_trip(
    extension: str, host: str, port: int | None, transport: str | None, is_upper: bool
) -> None:
    hostport = host + ("" if port is None else f":{port}")
    uri = f"sip:{extension}@{hostport}" + (f";transport={transport}" if transport else "")
    result = parse_refer_to(f"<{uri.upper() if is_upper else uri}>")
    assert (result.user, result.extension, result.host, result.port) == (extension, extension, host, port)
    assert result.uri_params == ({"transport": transport} if transport else {})
    assert result.header_params == {} and result.number is None
    assert result.uri == uri


def test_a_megabyte_is_refused_as_too_long() -> None:
    for value in ("sip:" + "1" * 1_000_000 + f"@{ACME}", "<" * 1_000_000, "\r\n" * 500_000):
        with pytest.raises(ReferToError) as caught:
            parse_refer_to(value)
        assert caught.value.code == "too_long"
