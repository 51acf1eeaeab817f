"""Matching provider reports and call records whichever comes first, and the races between them.

`attach_pending_reports(records)` looks inside the caller's transaction and again after it
commits; ingestion (reporting.ingest) uses `attach_pending_reports_on_commit`, which only looks
after the commit — the race tests at the end drive real ingestion against a webhook.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection, transaction
from django.test import Client

from reporting.models import CallRecord, ProviderCallReport
from reporting.provider_reports import attach_pending_reports, store_report
from tests.reporting import webhook_payloads as wp
from virtual_agents.models import ProviderIntegration
from virtual_agents.webhooks import ProviderReport
from voiso_byob.models import ContactCenter

SECRET = "wsec_matching_0123456789abcdef"


@pytest.fixture
def eleven(acme: ContactCenter) -> ProviderIntegration:
    return ProviderIntegration.objects.create(
        contact_center=acme,
        provider="elevenlabs",
        label="ElevenLabs",
        credentials={"api_key": "xi-key", "webhook_secret": SECRET},
    )


def report(provider_call_id: str, call_id: str = "", **fields) -> ProviderReport:
    return ProviderReport(
        provider_call_id=provider_call_id, event="post_call_transcription", call_id=call_id, **fields
    )


def test_pending_reports_attach_by_call_id_or_provider_call_id(acme, globex, eleven) -> None:
    by_ours = store_report(integration=eleven, report=report("conv-a", "call-a")).report
    by_theirs = store_report(integration=eleven, report=report("conv-b")).report
    other_call = store_report(integration=eleven, report=report("conv-c", "call-c")).report
    # Our call id is authoritative: a provider id that happens to match does not override it.
    contradicting = store_report(integration=eleven, report=report("conv-d", "call-elsewhere")).report
    records = [
        CallRecord.objects.create(contact_center=acme, call_id="call-a"),
        CallRecord.objects.create(contact_center=acme, call_id="call-b", provider_call_id="conv-b"),
        CallRecord.objects.create(contact_center=acme, call_id="call-d", provider_call_id="conv-d"),
        # Another tenant's record with the same call id never takes acme's report.
        CallRecord.objects.create(contact_center=globex, call_id="call-c"),
    ]

    assert attach_pending_reports(records) == 2

    for stored in (by_ours, by_theirs, other_call, contradicting):
        stored.refresh_from_db()
    assert by_ours.call_record == records[0] and by_theirs.call_record == records[1]
    assert other_call.call_record is None and contradicting.call_record is None
    assert attach_pending_reports(records) == 0  # matched reports are not touched again


def test_attaching_is_a_few_queries_however_many_records(acme, eleven, django_assert_max_num_queries) -> None:
    for n in range(20):
        store_report(integration=eleven, report=report(f"conv-{n}", f"call-{n}"))
    records = [
        CallRecord.objects.create(contact_center=acme, call_id=f"call-{n}", provider_call_id=f"p-{n}")
        for n in range(200)
    ]
    # One SELECT of the pending reports, one UPDATE per matched record.
    with django_assert_max_num_queries(21):
        assert attach_pending_reports(records) == 20
    with django_assert_max_num_queries(1):
        assert attach_pending_reports(records) == 0
    assert attach_pending_reports([]) == 0


def test_attach_looks_again_after_the_ingesting_transaction_commits(
    acme, eleven, django_capture_on_commit_callbacks
) -> None:
    record = CallRecord.objects.create(contact_center=acme, call_id="call-race")
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        assert attach_pending_reports([record]) == 0
        # Stands in for a webhook committed by another worker before this transaction commits.
        ProviderCallReport.objects.create(
            contact_center=acme,
            integration=eleven,
            provider="elevenlabs",
            provider_call_id="c",
            call_id="call-race",
        )
    assert len(callbacks) == 1
    assert ProviderCallReport.objects.get().call_record == record


def test_an_unmatched_report_looks_again_after_its_own_commit(
    acme, eleven, django_capture_on_commit_callbacks
) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        stored = store_report(integration=eleven, report=report("conv-x", "call-x")).report
        assert stored.call_record is None
        # Stands in for ingestion committing the record meanwhile, too early to see the report.
        record = CallRecord.objects.create(contact_center=acme, call_id="call-x")
    assert len(callbacks) == 1
    stored.refresh_from_db()
    assert stored.call_record == record


def test_a_matched_report_schedules_nothing(acme, eleven, django_capture_on_commit_callbacks) -> None:
    CallRecord.objects.create(contact_center=acme, call_id="call-y")
    with django_capture_on_commit_callbacks() as callbacks:
        assert store_report(integration=eleven, report=report("conv-y", "call-y")).report.call_record_id
    assert callbacks == []


def test_a_later_delivery_never_erases_what_an_earlier_one_said(acme, eleven) -> None:
    transcript = [{"role": "bot", "text": "Hello", "seconds": 0.0}]
    store_report(
        integration=eleven,
        report=report(
            "conv-m", "call-m", transcript=transcript, summary="Asked for sales.", recording_url="https://r/1"
        ),
    )
    stored = store_report(integration=eleven, report=report("conv-m", ended_reason="hangup")).report
    stored.refresh_from_db()
    assert stored.transcript == transcript and stored.summary == "Asked for sales."
    assert (
        stored.recording_url == "https://r/1"
        and stored.call_id == "call-m"
        and stored.ended_reason == "hangup"
    )


# --- PostgreSQL: real concurrency ------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parallel_deliveries_of_one_report_make_one_row(acme, eleven) -> None:
    body = wp.dumps(wp.elevenlabs_transcription())
    url = f"/api/v1/webhooks/elevenlabs/{eleven.pk}/"
    start = threading.Barrier(8)

    def deliver(_: int) -> int:
        try:
            start.wait()
            response = Client().post(
                url, data=body, content_type="application/json", **wp.elevenlabs_headers(body, SECRET)
            )
            return response.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(deliver, range(8)))

    assert statuses == [200] * 8
    assert ProviderCallReport.objects.count() == 1
    assert ProviderCallReport.objects.get().transcript[0]["role"] == "bot"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_webhook_committed_while_ingestion_is_open_is_matched_when_ingestion_commits(acme, eleven) -> None:
    """The interleaving both in-transaction lookups miss: ingestion has created the record and
    looked for reports; the webhook then stores its report (it cannot see the uncommitted
    record) and commits; ingestion commits last. The after-commit look finds it."""
    with transaction.atomic():
        record = CallRecord.objects.create(contact_center=acme, call_id="call-interleaved")
        assert attach_pending_reports([record]) == 0

        def webhook() -> bool:
            try:
                stored = store_report(integration=eleven, report=report("conv-i", "call-interleaved"))
                return stored.report.call_record_id is None
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=1) as pool:
            assert pool.submit(webhook).result() is True  # committed, unmatched

    assert ProviderCallReport.objects.get().call_record_id == record.pk


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_ingestion_matches_a_webhook_committed_while_its_transaction_was_open(acme, eleven, bot) -> None:
    """Real ingestion: its transaction creates the record; meanwhile a webhook stores the report
    (unmatched: the record is not committed yet) and commits; the look after ingestion's commit
    matches it."""
    from reporting.events import validate_events
    from reporting.ingest import ingest_events
    from tests.reporting.conftest import call_events

    validated, agents = validate_events(acme, {"events": call_events("call-ingest-race")[:2]})
    with transaction.atomic():
        ingest_events(center=acme, events=validated, agents=agents)
        record_id = CallRecord.objects.get(call_id="call-ingest-race").pk

        def webhook() -> bool:
            try:
                stored = store_report(integration=eleven, report=report("conv-r", "call-ingest-race"))
                return stored.report.call_record_id is None
            finally:
                connection.close()

        with ThreadPoolExecutor(max_workers=1) as pool:
            assert pool.submit(webhook).result() is True  # committed, unmatched
        assert ProviderCallReport.objects.get().call_record_id is None  # not matched inside
    assert ProviderCallReport.objects.get().call_record_id == record_id
