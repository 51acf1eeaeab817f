"""virtual_agents.webhooks without HTTP: each provider's signature scheme and payload parsing.

The signing helpers (tests/reporting/webhook_payloads.py) follow the providers' SDKs; here they
produce Django-style header names, which the verifier reads case-insensitively.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

import pytest

from tests.reporting import webhook_payloads as wp
from virtual_agents.webhooks import (
    PayloadError,
    SignatureError,
    find_call_id,
    parse_report,
    signing_secret,
    verifier_for,
)

SECRET = "whsec_0123456789abcdef0123456789abcdef"
NOW = 1_764_010_000.0


def headers(django_meta: dict[str, str]) -> dict[str, str]:
    """HTTP_X_RETELL_SIGNATURE → x-retell-signature, as request.headers would show it."""
    return {key.removeprefix("HTTP_").replace("_", "-").lower(): value for key, value in django_meta.items()}


def check(
    provider: str, body: bytes, meta: dict[str, str], *, secret: str = SECRET, now: float = NOW
) -> None:
    verifier = verifier_for(provider, headers(meta), secret=secret, now=now)
    # Chunked as the view reads it: the result must not depend on where the chunks split.
    for start in range(0, len(body), 7):
        verifier.update(body[start : start + 7])
    verifier.verify()


BODY = b'{"type":"post_call_transcription","data":{"conversation_id":"c1"}}'


@pytest.mark.parametrize(
    ("provider", "sign"),
    [
        ("elevenlabs", wp.elevenlabs_headers),
        ("vapi", wp.vapi_headers),
        ("retell", wp.retell_headers),
    ],
)
def test_each_scheme_accepts_its_own_signature_and_nothing_else(provider, sign) -> None:
    check(provider, BODY, sign(BODY, SECRET, at=NOW))
    with pytest.raises(SignatureError) as wrong:
        check(provider, BODY, sign(BODY, SECRET + "x", at=NOW))
    assert wrong.value.code == "signature_invalid"
    with pytest.raises(SignatureError) as tampered:
        check(provider, BODY + b" ", sign(BODY, SECRET, at=NOW))
    assert tampered.value.code == "signature_invalid"


def test_the_elevenlabs_window_is_thirty_minutes_back_and_five_ahead() -> None:
    check("elevenlabs", BODY, wp.elevenlabs_headers(BODY, SECRET, at=NOW - 29 * 60))
    check("elevenlabs", BODY, wp.elevenlabs_headers(BODY, SECRET, at=NOW + 4 * 60))
    for at, code in ((NOW - 31 * 60, "signature_expired"), (NOW + 6 * 60, "signature_in_future")):
        with pytest.raises(SignatureError) as caught:
            check("elevenlabs", BODY, wp.elevenlabs_headers(BODY, SECRET, at=at))
        assert caught.value.code == code


@pytest.mark.parametrize(("provider", "sign"), [("vapi", wp.vapi_headers), ("retell", wp.retell_headers)])
def test_vapi_and_retell_allow_five_minutes_either_way(provider, sign) -> None:
    check(provider, BODY, sign(BODY, SECRET, at=NOW - 4 * 60))
    check(provider, BODY, sign(BODY, SECRET, at=NOW + 4 * 60))
    for at, code in ((NOW - 6 * 60, "signature_expired"), (NOW + 6 * 60, "signature_in_future")):
        with pytest.raises(SignatureError) as caught:
            check(provider, BODY, sign(BODY, SECRET, at=at))
        assert caught.value.code == code


def test_the_retell_scheme_matches_the_sdk_formula() -> None:
    # Retell's SDK: hex(HMAC_SHA256(api_key, body + str(ms))), header "v=<ms>,d=<hex>".
    v = "1764010000123"
    digest = hmac.new(b"key_abc", BODY + v.encode(), hashlib.sha256).hexdigest()
    check("retell", BODY, {"x-retell-signature": f"v={v},d={digest}"}, secret="key_abc", now=int(v) / 1000)


def test_vapi_accepts_a_github_style_prefix_and_seconds() -> None:
    meta = wp.vapi_headers(BODY, SECRET, at=NOW, ms=False)
    meta["HTTP_X_SIGNATURE"] = "sha256=" + meta["HTTP_X_SIGNATURE"]
    check("vapi", BODY, meta)


# Each way a Vapi custom credential can sign (vapi_server_sdk 3.0 HMACAuthenticationPlan and
# BearerAuthenticationPlan, plus the legacy X-Vapi-Secret): the headers Vapi would send.
def _vapi_hmac(algorithm, encoding, *, prefix: str = "", timestamp: bool = True) -> dict[str, str]:
    ts = str(int(NOW))
    payload = (ts.encode() + b"." + BODY) if timestamp else BODY
    digest = hmac.new(SECRET.encode(), payload, algorithm).digest()
    text = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    return {"x-signature": prefix + text, **({"x-timestamp": ts} if timestamp else {})}


VAPI_VARIANTS = {
    "hmac-sha256-hex": _vapi_hmac(hashlib.sha256, "hex"),
    "hmac-sha256-base64": _vapi_hmac(hashlib.sha256, "base64"),
    "hmac-sha512-hex": _vapi_hmac(hashlib.sha512, "hex"),
    "hmac-sha512-base64": _vapi_hmac(hashlib.sha512, "base64"),
    "hmac-sha512-prefixed": _vapi_hmac(hashlib.sha512, "hex", prefix="sha512="),
    "hmac-sha256-base64-prefixed": _vapi_hmac(hashlib.sha256, "base64", prefix="sha256="),
    "hmac-body-only": _vapi_hmac(hashlib.sha256, "hex", timestamp=False),
    "bearer": {"authorization": f"Bearer {SECRET}"},
    "bearer-lowercase-scheme": {"authorization": f"bearer {SECRET}"},
    "authorization-without-prefix": {"authorization": SECRET},
    "x-vapi-secret": {"x-vapi-secret": SECRET},
}


@pytest.mark.parametrize("variant", VAPI_VARIANTS)
def test_vapi_accepts_each_way_its_credential_can_sign(variant: str) -> None:
    meta = VAPI_VARIANTS[variant]
    verifier = verifier_for("vapi", meta, secret=SECRET, now=NOW)
    verifier.update(BODY)
    verifier.verify()

    with pytest.raises(SignatureError) as wrong:
        verifier = verifier_for("vapi", meta, secret=SECRET + "x", now=NOW)
        verifier.update(BODY)
        verifier.verify()
    assert wrong.value.code == "signature_invalid"
    if variant.startswith("hmac"):
        with pytest.raises(SignatureError) as tampered:
            verifier = verifier_for("vapi", meta, secret=SECRET, now=NOW)
            verifier.update(BODY + b" ")
            verifier.verify()
        assert tampered.value.code == "signature_invalid"


def test_vapi_hmac_with_a_timestamp_is_still_held_to_the_window() -> None:
    with pytest.raises(SignatureError) as caught:
        verifier_for("vapi", VAPI_VARIANTS["hmac-sha512-base64"], secret=SECRET, now=NOW + 301)
    assert caught.value.code == "signature_expired"


def test_vapi_prefers_the_hmac_when_a_bearer_header_is_also_present() -> None:
    # A proxy's own Authorization header must not stand in for a wrong signature.
    meta = {**_vapi_hmac(hashlib.sha256, "hex"), "authorization": f"Bearer {SECRET}"}
    verifier = verifier_for("vapi", meta, secret=SECRET, now=NOW)
    verifier.update(BODY + b"tampered")
    with pytest.raises(SignatureError):
        verifier.verify()


@pytest.mark.parametrize(
    ("provider", "meta", "code"),
    [
        ("elevenlabs", {}, "signature_missing"),
        ("elevenlabs", {"elevenlabs-signature": "v0=abc"}, "signature_malformed"),
        ("elevenlabs", {"elevenlabs-signature": "t=1764010000"}, "signature_malformed"),
        ("elevenlabs", {"elevenlabs-signature": f"t=soon,v0={'a' * 64}"}, "signature_malformed"),
        ("elevenlabs", {"elevenlabs-signature": "garbage"}, "signature_malformed"),
        ("vapi", {}, "signature_missing"),
        ("vapi", {"x-signature": "a" * 40, "x-timestamp": "1764010000"}, "signature_malformed"),  # sha1
        ("vapi", {"x-signature": "sha512=" + "a" * 64, "x-timestamp": "1764010000"}, "signature_malformed"),
        ("vapi", {"x-signature": "zz", "x-timestamp": "1764010000"}, "signature_malformed"),
        ("vapi", {"x-signature": "a" * 64, "x-timestamp": "²"}, "signature_malformed"),
        ("retell", {}, "signature_missing"),
        ("retell", {"x-retell-signature": "d=abc,v=1"}, "signature_malformed"),
        ("retell", {"x-retell-signature": f"v=1764010000000,d={'a' * 63}"}, "signature_malformed"),
    ],
)
def test_missing_and_malformed_headers_are_refused_before_the_body(provider, meta, code) -> None:
    with pytest.raises(SignatureError) as caught:
        verifier_for(provider, meta, secret=SECRET, now=NOW)
    assert caught.value.code == code


def test_no_secret_refuses_everything() -> None:
    with pytest.raises(SignatureError) as caught:
        verifier_for("vapi", {"x-vapi-secret": ""}, secret="", now=time.time())
    assert caught.value.code == "webhook_secret_not_set"


def test_which_secret_each_provider_signs_with() -> None:
    assert signing_secret("elevenlabs", {"api_key": "k", "webhook_secret": "w"}) == "w"
    assert signing_secret("elevenlabs", {"api_key": "k"}) == ""  # never falls back to the API key
    assert signing_secret("vapi", {"api_key": "k"}) == ""
    assert signing_secret("retell", {"api_key": "k"}) == "k"
    assert signing_secret("retell", {"api_key": "k", "webhook_secret": "w"}) == "w"


def test_our_call_id_is_found_however_the_provider_spells_the_header() -> None:
    for key in (
        "X-Voiso-Call-Id",
        "x-voiso-call-id",
        "sip_x_voiso_call_id",
        "X_VOISO_CALL_ID",
        "voiso-call-id",
    ):
        assert find_call_id(None, {key: " call-7 "}) == "call-7", key
    assert find_call_id({"X-Voiso-Call-Id": ""}, {"x-voiso-call-id": "call-8"}) == "call-8"
    assert find_call_id({"X-Voiso-Caller": "+44"}, "not a map", {"X-Voiso-Call-Id": "x" * 201}) == ""


def test_payloads_parse_into_one_report_shape() -> None:
    eleven = parse_report("elevenlabs", wp.elevenlabs_transcription())
    vapi = parse_report("vapi", wp.vapi_end_of_call())
    retell = parse_report("retell", wp.retell_call("call_analyzed", with_analysis=True))
    assert (eleven.call_id, vapi.call_id, retell.call_id) == ("call-1", "call-2", "call-3")
    assert eleven.transcript == [
        {"role": "bot", "text": "Hello, this is Acme support. How can I help?", "seconds": 0.0},
        {"role": "caller", "text": "I'd like to upgrade my plan, please.", "seconds": 3.0},
    ]
    assert vapi.transcript[0] == {"role": "bot", "text": "Thanks for calling Acme.", "seconds": 0.64}
    assert retell.summary and retell.recording_url.startswith("https://")


def test_a_plain_text_transcript_is_used_when_there_is_no_structured_one() -> None:
    payload = wp.vapi_end_of_call()
    del payload["message"]["artifact"]["messages"]
    assert parse_report("vapi", payload).transcript == [
        {"role": "bot", "text": "Thanks for calling Acme."},
        {"role": "caller", "text": "My order never arrived."},
    ]


@pytest.mark.parametrize(
    ("provider", "payload"),
    [
        (
            "elevenlabs",
            {"type": "post_call_transcription", "data": {"conversation_id": "c", "transcript": "x"}},
        ),
        ("elevenlabs", {"type": "post_call_transcription", "data": {"conversation_id": ["c"]}}),
        ("vapi", {"message": "end-of-call-report"}),
        ("retell", {"event": "call_ended", "call": {"call_id": " "}}),
        ("retell", []),
    ],
)
def test_shapes_that_are_not_reports_raise(provider, payload) -> None:
    with pytest.raises(PayloadError):
        parse_report(provider, payload)
