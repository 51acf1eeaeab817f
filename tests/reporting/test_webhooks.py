"""POST /api/v1/webhooks/<provider>/<integration id>/: signed post-call reports from bot providers.

Each provider posts payloads shaped like its documented examples, signed by its own scheme
(tests/reporting/webhook_payloads.py). Refused requests must store nothing; re-sent ones must
not duplicate; reports match the call record of their own contact center only.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from reporting.models import CallRecord, ProviderCallReport
from tests.conftest import error_code
from tests.reporting import webhook_payloads as wp
from tests.reporting.conftest import event, post_events
from virtual_agents.models import ProviderIntegration
from voiso_byob.models import ContactCenter

ELEVEN_SECRET = "wsec_4f1c9e0b2a7d4c8e9f60a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8091a2b3c"
VAPI_SECRET = "vapi-hmac-7d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a"
RETELL_KEY = "key_69b8ad2617f84c75bc1cf1e9bd67"
WRONG = "not-the-secret-0000000000000000000000"


@dataclass(frozen=True)
class Case:
    provider: str
    secret: str
    payload: Callable[..., dict[str, Any]]
    sign: Callable[..., dict[str, str]]
    provider_call_id: str
    call_id: str  # ours, as echoed in the payload's SIP headers
    summary: str
    recording_url: str
    ended_reason: str


CASES = {
    "elevenlabs": Case(
        "elevenlabs",
        ELEVEN_SECRET,
        wp.elevenlabs_transcription,
        wp.elevenlabs_headers,
        "conv_01jm7s0e8yf9b6n2kx4t3w5q8r",
        "call-1",
        "The caller wants to upgrade their plan; the agent transferred them to sales.",
        "",  # ElevenLabs sends audio, never a recording URL
        "Call transferred",
    ),
    "vapi": Case(
        "vapi",
        VAPI_SECRET,
        wp.vapi_end_of_call,
        wp.vapi_headers,
        "3d9f1e42-7c2b-4a51-9a3e-5b7c8d9e0f11",
        "call-2",
        "Missing order; the caller was handed to support.",
        "https://storage.vapi.ai/3d9f1e42-mono.wav",
        "assistant-forwarded-call",
    ),
    "retell": Case(
        "retell",
        RETELL_KEY,
        lambda: wp.retell_call("call_analyzed", with_analysis=True),
        wp.retell_headers,
        "Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
        "call-3",
        "The caller asked for billing and was transferred.",
        "https://dxc03zgurdly9.cloudfront.net/Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6/recording.wav",
        "call_transfer",
    ),
}


def make_integration(center: ContactCenter, provider: str, **credentials: str) -> ProviderIntegration:
    return ProviderIntegration.objects.create(
        contact_center=center, provider=provider, label=f"{provider} {center.slug}", credentials=credentials
    )


@pytest.fixture
def integrations(acme: ContactCenter) -> dict[str, ProviderIntegration]:
    return {
        "elevenlabs": make_integration(
            acme, "elevenlabs", api_key="xi-key-0001", webhook_secret=ELEVEN_SECRET
        ),
        "vapi": make_integration(acme, "vapi", api_key="vapi-key-0001", webhook_secret=VAPI_SECRET),
        # Retell signs with the API key itself.
        "retell": make_integration(acme, "retell", api_key=RETELL_KEY),
    }


def url(integration: ProviderIntegration, provider: str | None = None) -> str:
    return f"/api/v1/webhooks/{provider or integration.provider}/{integration.pk}/"


def deliver(
    integration: ProviderIntegration, body: bytes, headers: dict[str, str], *, provider: str | None = None
):
    return Client().post(url(integration, provider), data=body, content_type="application/json", **headers)


def signed(case: Case, body: bytes, **kwargs: Any) -> dict[str, str]:
    return case.sign(body, kwargs.pop("secret", case.secret), **kwargs)


# --- stored and matched -------------------------------------------------------------------


@pytest.mark.parametrize("provider", list(CASES))
def test_a_signed_report_is_stored_and_matched_to_its_call(provider, acme, integrations) -> None:
    case = CASES[provider]
    record = CallRecord.objects.create(contact_center=acme, call_id=case.call_id)
    body = wp.dumps(case.payload())

    response = deliver(integrations[provider], body, signed(case, body))

    assert response.status_code == 200, response.content
    assert response.json()["status"] == "stored" and response.json()["matched"] is True
    report = ProviderCallReport.objects.get()
    assert report.contact_center == acme and report.integration == integrations[provider]
    assert report.provider == provider and report.provider_call_id == case.provider_call_id
    assert report.call_id == case.call_id and report.call_record == record
    assert report.summary == case.summary
    assert report.recording_url == case.recording_url
    assert report.ended_reason == case.ended_reason
    # Bot and caller turns in order; system prompts and tool calls are not the conversation.
    assert [turn["role"] for turn in report.transcript] == ["bot", "caller"]
    assert all(turn["text"] for turn in report.transcript)
    assert report.transcript[1]["seconds"] > report.transcript[0]["seconds"]


def test_vapi_seconds_timestamps_and_the_shared_secret_header_are_accepted(acme, integrations) -> None:
    body = wp.dumps(wp.vapi_end_of_call())
    assert (
        deliver(integrations["vapi"], body, wp.vapi_headers(body, VAPI_SECRET, ms=False)).status_code == 200
    )
    body = wp.dumps(wp.vapi_end_of_call(call_id="another-call"))
    assert deliver(integrations["vapi"], body, wp.vapi_secret_header(VAPI_SECRET)).status_code == 200
    assert ProviderCallReport.objects.count() == 2


def test_retell_uses_a_separate_webhook_key_when_one_is_set(acme) -> None:
    integration = make_integration(
        acme, "retell", api_key=RETELL_KEY, webhook_secret="key_webhook_badge_0042"
    )
    body = wp.dumps(wp.retell_call())
    assert deliver(integration, body, wp.retell_headers(body, RETELL_KEY)).status_code == 401
    response = deliver(integration, body, wp.retell_headers(body, "key_webhook_badge_0042"))
    assert response.status_code == 200 and ProviderCallReport.objects.count() == 1


def test_elevenlabs_initiation_failure_is_kept_with_its_reason(acme, integrations) -> None:
    body = wp.dumps(wp.elevenlabs_initiation_failure())
    response = deliver(integrations["elevenlabs"], body, wp.elevenlabs_headers(body, ELEVEN_SECRET))
    assert response.status_code == 200
    report = ProviderCallReport.objects.get()
    assert report.provider_call_id == "conv_01jm7s0failed" and report.ended_reason == "busy"
    assert report.transcript == [] and report.call_record is None


# --- refused: nothing stored --------------------------------------------------------------


def _wrong_secret(case: Case, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(case, body, secret=WRONG)


def _tampered(case: Case, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body.replace(b"call-", b"call-X"), signed(case, body)


def _stale(case: Case, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(case, body, at=time.time() - 31 * 60)


def _future(case: Case, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, signed(case, body, at=time.time() + 10 * 60)


def _missing(case: Case, body: bytes) -> tuple[bytes, dict[str, str]]:
    return body, {}


def _malformed(case: Case, body: bytes) -> tuple[bytes, dict[str, str]]:
    headers = signed(case, body)
    name = next(iter(headers))
    return body, {**headers, name: "sha256=" + headers[name][::-1][:20]}


REFUSALS = {
    "wrong secret": (_wrong_secret, "signature_invalid"),
    "tampered body": (_tampered, "signature_invalid"),
    "stale timestamp": (_stale, "signature_expired"),
    "future timestamp": (_future, "signature_in_future"),
    "missing header": (_missing, "signature_missing"),
    "malformed header": (_malformed, "signature_malformed"),
}


@pytest.mark.parametrize("refusal", list(REFUSALS))
@pytest.mark.parametrize("provider", list(CASES))
def test_bad_signatures_are_refused_and_store_nothing(provider, refusal, acme, integrations) -> None:
    case = CASES[provider]
    CallRecord.objects.create(contact_center=acme, call_id=case.call_id)
    make_body, code = REFUSALS[refusal]
    body, headers = make_body(case, wp.dumps(case.payload()))

    response = deliver(integrations[provider], body, headers)

    assert response.status_code == 401, response.content
    assert error_code(response) == code
    assert not ProviderCallReport.objects.exists()


def test_a_wrong_vapi_shared_secret_is_refused(acme, integrations) -> None:
    body = wp.dumps(wp.vapi_end_of_call())
    response = deliver(integrations["vapi"], body, wp.vapi_secret_header(WRONG))
    assert response.status_code == 401 and error_code(response) == "signature_invalid"
    assert not ProviderCallReport.objects.exists()


def test_without_a_webhook_secret_every_report_is_refused(acme) -> None:
    integration = make_integration(acme, "elevenlabs", api_key="xi-key-0001")
    body = wp.dumps(wp.elevenlabs_transcription())
    response = deliver(integration, body, wp.elevenlabs_headers(body, ""))
    assert response.status_code == 401 and error_code(response) == "webhook_secret_not_set"
    assert not ProviderCallReport.objects.exists()


def test_the_signature_of_another_centers_integration_does_not_open_this_one(
    acme, globex, integrations
) -> None:
    theirs = make_integration(globex, "vapi", api_key="vapi-globex", webhook_secret="globex-secret-123456")
    body = wp.dumps(wp.vapi_end_of_call())
    response = deliver(integrations["vapi"], body, wp.vapi_headers(body, "globex-secret-123456"))
    assert response.status_code == 401
    assert deliver(theirs, body, wp.vapi_headers(body, VAPI_SECRET)).status_code == 401
    assert not ProviderCallReport.objects.exists()


# --- not found ----------------------------------------------------------------------------


def test_the_provider_in_the_url_must_be_the_integrations(acme, integrations) -> None:
    body = wp.dumps(wp.vapi_end_of_call())
    headers = wp.vapi_headers(body, VAPI_SECRET)
    for provider in ("elevenlabs", "retell", "generic_sip", "synthflow"):
        response = deliver(integrations["vapi"], body, headers, provider=provider)
        assert response.status_code == 404 and error_code(response) == "not_found", provider
    assert not ProviderCallReport.objects.exists()


def test_unknown_and_generic_sip_integrations_are_not_found(acme) -> None:
    house = make_integration(acme, "generic_sip")
    body = b"{}"
    assert deliver(house, body, {}, provider="generic_sip").status_code == 404
    response = Client().post(
        "/api/v1/webhooks/vapi/6b1f0a55-0000-4000-8000-000000000000/",
        data=body,
        content_type="application/json",
    )
    assert response.status_code == 404 and error_code(response) == "not_found"
    not_a_uuid = Client().post(
        "/api/v1/webhooks/vapi/not-a-uuid/", data=body, content_type="application/json"
    )
    assert not_a_uuid.status_code == 404


def test_only_post_is_allowed(acme, integrations) -> None:
    response = Client().get(url(integrations["vapi"]))
    assert response.status_code == 405 and error_code(response) == "method_not_allowed"


# --- bodies after a valid signature --------------------------------------------------------


@pytest.mark.parametrize("provider", list(CASES))
def test_a_signed_body_that_is_not_json_is_400_and_stores_nothing(provider, acme, integrations) -> None:
    case = CASES[provider]
    body = b'{"type": "post_call_transcription", "data": '
    response = deliver(integrations[provider], body, signed(case, body))
    assert response.status_code == 400 and error_code(response) == "invalid_json"
    assert not ProviderCallReport.objects.exists()


@pytest.mark.parametrize(
    ("provider", "payload", "field"),
    [
        (
            "elevenlabs",
            {"type": "post_call_transcription", "data": {"transcript": []}},
            "data.conversation_id",
        ),
        ("elevenlabs", {"type": "post_call_transcription", "data": "nope"}, "data"),
        ("vapi", {"message": {"type": "end-of-call-report", "call": {}}}, "message.call.id"),
        ("vapi", {"messages": []}, "message"),
        ("retell", {"event": "call_ended", "call": {"call_id": "x" * 201}}, "call.call_id"),
        ("retell", {"event": "call_analyzed"}, "call"),
    ],
)
def test_a_signed_body_that_is_not_a_report_is_400(provider, payload, field, acme, integrations) -> None:
    body = wp.dumps(payload)
    response = deliver(integrations[provider], body, signed(CASES[provider], body))
    assert response.status_code == 400 and error_code(response) == "invalid_report"
    assert field in response.json()["error"]["fields"]
    assert not ProviderCallReport.objects.exists()


def test_a_json_array_is_not_a_report(acme, integrations) -> None:
    body = b"[1, 2]"
    response = deliver(integrations["retell"], body, wp.retell_headers(body, RETELL_KEY))
    assert response.status_code == 400 and error_code(response) == "invalid_report"


@pytest.mark.parametrize(
    ("provider", "payload", "event_name"),
    [
        ("elevenlabs", wp.elevenlabs_audio(), "post_call_audio"),
        ("vapi", wp.vapi_status_update(), "status-update"),
        ("retell", wp.retell_call("call_started"), "call_started"),
    ],
)
def test_events_without_a_report_are_acknowledged_and_not_kept(
    provider, payload, event_name, acme, integrations
) -> None:
    body = wp.dumps(payload)
    response = deliver(integrations[provider], body, signed(CASES[provider], body))
    assert response.status_code == 200
    assert response.json() == {"status": "ignored", "event": event_name}
    assert not ProviderCallReport.objects.exists()


def test_a_large_audio_payload_is_verified_then_acknowledged_without_being_parsed(acme, integrations) -> None:
    body = wp.dumps(wp.elevenlabs_audio(size=5 * 1024 * 1024))
    response = deliver(integrations["elevenlabs"], body, wp.elevenlabs_headers(body, ELEVEN_SECRET))
    assert response.status_code == 200 and response.json()["status"] == "ignored"
    forged = deliver(integrations["elevenlabs"], body, wp.elevenlabs_headers(body, WRONG))
    assert forged.status_code == 401
    assert not ProviderCallReport.objects.exists()


def test_a_recording_url_that_is_not_http_is_dropped(acme, integrations) -> None:
    payload = wp.vapi_end_of_call()
    payload["message"]["artifact"]["recordingUrl"] = "javascript:alert(1)"
    payload["message"]["artifact"]["stereoRecordingUrl"] = None
    body = wp.dumps(payload)
    assert deliver(integrations["vapi"], body, wp.vapi_headers(body, VAPI_SECRET)).status_code == 200
    assert ProviderCallReport.objects.get().recording_url == ""


# --- idempotency and merging ---------------------------------------------------------------


@pytest.mark.parametrize("provider", list(CASES))
def test_a_re_sent_report_updates_the_one_row(provider, acme, integrations) -> None:
    case = CASES[provider]
    body = wp.dumps(case.payload())
    first = deliver(integrations[provider], body, signed(case, body))
    again = deliver(integrations[provider], body, signed(case, body))
    assert first.json()["is_new"] is True and again.json()["is_new"] is False
    assert first.json()["report"] == again.json()["report"]
    assert ProviderCallReport.objects.count() == 1


@pytest.mark.parametrize("order", [("call_ended", "call_analyzed"), ("call_analyzed", "call_ended")])
def test_retell_call_analyzed_adds_the_summary_to_the_call_ended_report(order, acme, integrations) -> None:
    for event_name in order:
        body = wp.dumps(wp.retell_call(event_name, with_analysis=event_name == "call_analyzed"))
        assert deliver(integrations["retell"], body, wp.retell_headers(body, RETELL_KEY)).status_code == 200
    report = ProviderCallReport.objects.get()
    assert report.summary == "The caller asked for billing and was transferred."
    assert report.transcript[0] == {"role": "bot", "text": "hi how are you doing?", "seconds": 0.7}
    assert report.recording_url.endswith("/recording.wav") and report.ended_reason == "call_transfer"


def test_the_same_provider_call_id_at_two_integrations_is_two_reports(acme, globex, integrations) -> None:
    theirs = make_integration(globex, "retell", api_key="key_globex_000000000001")
    body = wp.dumps(wp.retell_call())
    deliver(integrations["retell"], body, wp.retell_headers(body, RETELL_KEY))
    deliver(theirs, body, wp.retell_headers(body, "key_globex_000000000001"))
    assert sorted(r.contact_center.slug for r in ProviderCallReport.objects.all()) == ["acme", "globex"]


# --- matching ------------------------------------------------------------------------------


def test_a_report_matches_only_a_record_of_its_own_center(acme, globex) -> None:
    acme_record = CallRecord.objects.create(contact_center=acme, call_id="call-3")
    theirs = make_integration(globex, "retell", api_key="key_globex_000000000001")
    body = wp.dumps(wp.retell_call())  # echoes call-3, acme's call id

    response = deliver(theirs, body, wp.retell_headers(body, "key_globex_000000000001"))

    assert response.json()["matched"] is False
    report = ProviderCallReport.objects.get()
    assert report.contact_center == globex and report.call_record is None
    assert not acme_record.provider_reports.exists()


def test_without_our_header_a_report_matches_by_the_providers_call_id(acme, integrations) -> None:
    record = CallRecord.objects.create(
        contact_center=acme, call_id="call-9", provider_call_id="3d9f1e42-7c2b-4a51-9a3e-5b7c8d9e0f11"
    )
    body = wp.dumps(wp.vapi_end_of_call(voiso_call_id=None))
    assert deliver(integrations["vapi"], body, wp.vapi_headers(body, VAPI_SECRET)).json()["matched"] is True
    assert ProviderCallReport.objects.get().call_record == record


def test_a_report_that_arrives_first_is_matched_when_the_events_create_the_record(
    acme, integrations, switch, bot, django_capture_on_commit_callbacks
) -> None:
    body = wp.dumps(wp.elevenlabs_transcription(call_id="c-late"))
    response = deliver(integrations["elevenlabs"], body, wp.elevenlabs_headers(body, ELEVEN_SECRET))
    assert response.json()["matched"] is False

    with django_capture_on_commit_callbacks(execute=True):  # ingestion looks once it has committed
        posted = post_events(
            switch,
            [
                event(
                    "call.started", "c-late", 0, direction="inbound", **{"from": "+442079460999", "to": "+1"}
                ),
                event("bot.connected", "c-late", 1, virtual_agent="7001"),
            ],
        )

    assert posted.status_code == 202, posted.content
    report = ProviderCallReport.objects.get()
    assert report.call_record == CallRecord.objects.get(contact_center=acme, call_id="c-late")


def test_a_report_without_our_header_is_matched_by_bot_connected_later(
    acme, integrations, switch, bot, django_capture_on_commit_callbacks
) -> None:
    body = wp.dumps(wp.retell_call(voiso_call_id=None))
    deliver(integrations["retell"], body, wp.retell_headers(body, RETELL_KEY))
    assert ProviderCallReport.objects.get().call_record is None

    post_events(
        switch, [event("call.started", "c-77", 0, direction="inbound", **{"from": "+4420", "to": "+1"})]
    )
    assert ProviderCallReport.objects.get().call_record is None  # no provider call id known yet
    with django_capture_on_commit_callbacks(execute=True):  # ingestion looks once it has committed
        post_events(
            switch,
            [
                event(
                    "bot.connected",
                    "c-77",
                    1,
                    virtual_agent="7001",
                    provider_call_id="Jabr9TXYYJHfvl6Syypi88rdAHYHmcq6",
                )
            ],
        )

    assert ProviderCallReport.objects.get().call_record.call_id == "c-77"


# --- secrets ---------------------------------------------------------------------------------


def test_secrets_and_signatures_are_never_logged_or_echoed(acme, integrations, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    responses: list[str] = []
    signatures: list[str] = []
    for provider, case in CASES.items():
        body = wp.dumps(case.payload())
        for headers in (signed(case, body), signed(case, body, secret=WRONG), {}):
            responses.append(deliver(integrations[provider], body, headers).content.decode())
            signatures.extend(headers.values())
    body = wp.dumps(wp.vapi_end_of_call())
    responses.append(deliver(integrations["vapi"], body, wp.vapi_secret_header(WRONG)).content.decode())

    echoed = "\n".join(responses)
    for secret in (ELEVEN_SECRET, VAPI_SECRET, RETELL_KEY, WRONG):
        assert secret not in caplog.text and secret not in echoed
    for signature in signatures:
        assert signature not in caplog.text and signature not in echoed
    # Refusals are logged, by code and integration only.
    assert "webhook refused (signature_invalid)" in caplog.text
    assert str(integrations["vapi"].pk) in caplog.text
