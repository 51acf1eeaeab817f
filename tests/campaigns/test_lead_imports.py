"""CSV lead files: stored in chunks at upload, imported chunk by chunk by the workers."""

from __future__ import annotations

import io
import threading
import time
import tracemalloc

import pytest
from django.core.management import call_command
from django.db import connections

from campaigns import lead_imports
from campaigns.lead_imports import (
    import_do_not_call,
    process_lead_imports,
    rejects_csv,
    start_lead_import,
)
from campaigns.models import (
    Campaign,
    DoNotCall,
    Lead,
    LeadImport,
    LeadImportChunk,
    LeadImportStatus,
    LeadStatus,
)
from campaigns.read_ahead import ReadAhead
from campaigns.services import add_do_not_call, stop_campaign
from tests.campaigns.conftest import add_leads
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, ContactCenter

pytestmark = pytest.mark.django_db


def upload(text: str) -> io.BytesIO:
    return io.BytesIO(text.encode())


def test_a_file_is_stored_in_chunks_and_imported_with_its_rejects(
    campaign: Campaign, acme: ContactCenter, monkeypatch
) -> None:
    monkeypatch.setattr(lead_imports, "CHUNK_ROWS", 2)
    add_do_not_call(center=acme, phone="+14155550106", by="tests")
    text = (
        "\ufeffNumber,Name,Source,Priority,X-Policy,Ignored\n"
        "+14155550101,Ann,web,10,P-1,x\n"
        "not a number,Bob,web,,,\n"
        "\n"
        "+14155550101,Ann again,web,,,\n"
        '+14155550103,"Cy, ""the"" third",fair,2000,,\n'
        "+14155550106,Dee,,,,\n"
        '+14155550107,Eve,,,,"multi\nline"\n'
        '+14155550108,Fay,,,"two\nlines",\n'
    )

    lead_import = start_lead_import(campaign=campaign, upload=upload(text), filename="leads.csv", by="tests")

    assert lead_import.rows == 7
    assert lead_import.chunks == 4
    assert lead_import.status == LeadImportStatus.PENDING
    assert LeadImportChunk.objects.filter(lead_import=lead_import).count() == 4
    assert not Lead.objects.exists()

    assert process_lead_imports(limit_chunks=2) == 2
    lead_import.refresh_from_db()
    assert lead_import.status == LeadImportStatus.RUNNING
    assert lead_import.processed == 4
    assert process_lead_imports(limit_chunks=5) == 2

    lead_import.refresh_from_db()
    assert lead_import.status == LeadImportStatus.DONE
    assert lead_import.finished_at is not None
    assert (lead_import.created_leads, lead_import.rejected, lead_import.duplicates) == (2, 4, 1)
    assert lead_import.percent == 100
    assert not LeadImportChunk.objects.exists()
    ann = Lead.objects.get(phone="+14155550101")
    assert (ann.name, ann.source, ann.priority, ann.context) == ("Ann", "web", 10, {"X-Policy": "P-1"})
    assert Lead.objects.get(phone="+14155550107").context == {}  # the multi-line value was not X-
    rejects = list(lead_import.rejects.values_list("row", "number", "reason"))
    # Row numbers are the file's (the header is row 1, the blank line 4 counts).
    assert rejects == [
        (3, "not a number", "invalid_number"),
        (5, "+14155550101", "duplicate"),
        (6, "+14155550103", "invalid_priority"),
        (7, "+14155550106", "dnc"),
        (10, "+14155550108", "invalid_context"),  # a header value cannot hold a line break
    ]
    assert "".join(rejects_csv(lead_import)).splitlines() == [
        "Row,Number,Reason",
        "3,not a number,invalid_number",
        "5,+14155550101,duplicate",
        "6,+14155550103,invalid_priority",
        "7,+14155550106,dnc",
        "10,+14155550108,invalid_context",
    ]
    assert AuditEvent.objects.filter(action="campaign.lead_import_started").count() == 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "The file is empty."),
        ("Name,Source\nAnn,web\n", "one of them Number"),
        ("Number,number\n+14155550101,1\n", "same name"),
        ("Number,X-Bad Header\n+14155550101,1\n", "cannot be a SIP header"),
        ("Number\n", "no leads"),
    ],
)
def test_a_file_without_leads_or_a_number_column_is_refused_and_nothing_stored(
    campaign: Campaign, text: str, message: str
) -> None:
    with pytest.raises(DomainError) as refused:
        start_lead_import(campaign=campaign, upload=upload(text), filename="x.csv", by="tests")

    assert message in refused.value.message
    assert refused.value.field == "file"
    assert not LeadImport.objects.exists()
    assert not LeadImportChunk.objects.exists()


def test_a_file_that_is_not_utf8_is_refused_whole(campaign: Campaign, monkeypatch) -> None:
    monkeypatch.setattr(lead_imports, "CHUNK_ROWS", 1)
    data = b"Number\n+14155550101\n+14155550102\n\xff\xfe\n"

    with pytest.raises(DomainError, match="not UTF-8"):
        start_lead_import(campaign=campaign, upload=io.BytesIO(data), filename="x.csv", by="tests")

    assert not LeadImport.objects.exists()
    assert not LeadImportChunk.objects.exists()


def test_context_values_that_could_inject_sip_headers_are_rejected(campaign: Campaign) -> None:
    text = 'Number,X-Note\n+14155550101,"ok"\n+14155550102,"evil\r\nX-Voiso-Call-Id: 1"\n'
    lead_import = start_lead_import(campaign=campaign, upload=upload(text), filename="x.csv", by="tests")

    process_lead_imports()

    assert list(Lead.objects.values_list("phone", "context")) == [("+14155550101", {"X-Note": "ok"})]
    assert lead_import.rejects.get().reason == "invalid_context"


def test_an_import_into_a_campaign_stopped_meanwhile_fails_with_the_reason(campaign: Campaign) -> None:
    add_leads(campaign, "+14155550101")
    lead_import = start_lead_import(
        campaign=campaign, upload=upload("Number\n+14155550102\n"), filename="x.csv", by="tests"
    )
    campaign.status = "paused"
    campaign.save()
    stop_campaign(campaign=campaign, by="tests")

    assert process_lead_imports() == 1

    lead_import.refresh_from_db()
    assert lead_import.status == LeadImportStatus.FAILED
    assert "finished campaign" in lead_import.error
    assert not LeadImportChunk.objects.exists()
    assert Lead.objects.count() == 1


def _peak_memory_of_storing(campaign: Campaign, rows: int) -> tuple[int, int]:
    data = io.BytesIO()
    data.write(b"Number,Name,X-Ref\n")
    for n in range(rows):
        data.write(b"+1415%07d,Lead number %d,ref-%d\n" % (n, n, n))
    size = data.tell()
    data.seek(0)
    tracemalloc.start()
    try:
        lead_import = start_lead_import(campaign=campaign, upload=data, filename="big.csv", by="tests")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert lead_import.rows == rows
    assert lead_import.chunks == rows // lead_imports.CHUNK_ROWS
    return peak, size


def test_storing_a_file_takes_the_same_memory_whatever_its_size(campaign: Campaign) -> None:
    """The upload streams: three times the rows, not three times the memory (so 1 M rows fit)."""
    small_peak, _ = _peak_memory_of_storing(campaign, 40_000)
    LeadImport.objects.all().delete()
    big_peak, big_size = _peak_memory_of_storing(campaign, 120_000)

    assert big_peak < small_peak * 1.3, (small_peak, big_peak)
    assert big_peak < big_size / 3, (big_peak, big_size)


# The worker closes stale connections each tick: the test's own must not be one in a transaction.
@pytest.mark.django_db(transaction=True)
def test_the_dialer_worker_imports_stored_chunks_each_tick(campaign: Campaign) -> None:
    lead_import = start_lead_import(
        campaign=campaign, upload=upload("Number\n+14155550101\n"), filename="x.csv", by="tests"
    )

    call_command("run_dialer", ticks=1, interval=0.01, stdout=io.StringIO())

    lead_import.refresh_from_db()
    assert lead_import.status == LeadImportStatus.DONE
    assert Lead.objects.filter(campaign=campaign, phone="+14155550101").exists()


def test_a_dnc_file_adds_numbers_and_retires_waiting_leads(campaign: Campaign, acme: ContactCenter) -> None:
    add_leads(campaign, "+14155550101", "+14155550102")
    add_do_not_call(center=acme, phone="+14155550102", by="tests")
    text = "Reason,Number\nasked,+14155550101\n,+14155550102\n,garbage\nagain,+14155550101\n"

    result = import_do_not_call(center=acme, campaign=None, upload=upload(text), by="tests")

    assert (result.added, result.already_listed, result.invalid) == (1, 1, [(4, "garbage")])
    assert DoNotCall.objects.get(phone="+14155550101").reason == "asked"
    assert Lead.objects.get(phone="+14155550101").status == LeadStatus.DNC
    assert AuditEvent.objects.filter(action="dnc.imported").count() == 1


def test_a_dnc_file_over_the_limit_is_refused_whole(acme: ContactCenter, monkeypatch) -> None:
    monkeypatch.setattr(lead_imports, "MAX_DNC_ROWS", 2)
    text = "Number\n+14155550101\n+14155550102\n+14155550103\n"

    with pytest.raises(DomainError, match="At most 2 numbers"):
        import_do_not_call(center=acme, campaign=None, upload=upload(text), by="tests")

    assert not DoNotCall.objects.exists()


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_workers_side_by_side_share_an_import_and_close_it_once(campaign: Campaign, monkeypatch) -> None:
    monkeypatch.setattr(lead_imports, "CHUNK_ROWS", 5)
    text = "Number\n" + "".join(f"+1415555{n:04d}\n" for n in range(100, 160)) + "nope\n"
    lead_import = start_lead_import(campaign=campaign, upload=upload(text), filename="x.csv", by="tests")
    taken: list[int] = []

    def worker() -> None:
        try:
            taken.append(process_lead_imports(limit_chunks=100))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    lead_import.refresh_from_db()
    assert sum(taken) == lead_import.chunks == 13
    assert lead_import.status == LeadImportStatus.DONE
    assert (lead_import.processed, lead_import.created_leads, lead_import.rejected) == (61, 60, 1)
    assert Lead.objects.filter(campaign=campaign).count() == 60


def test_a_worker_imports_chunks_until_its_tick_is_up_and_always_one(campaign: Campaign, monkeypatch) -> None:
    monkeypatch.setattr(lead_imports, "CHUNK_ROWS", 1)
    text = "Number\n" + "".join(f"+1415555{n:04d}\n" for n in range(101, 106))
    start_lead_import(campaign=campaign, upload=upload(text), filename="leads.csv", by="tests")

    # The tick's second is already up: one chunk all the same, so an import always moves.
    assert process_lead_imports(limit_chunks=100, until=time.monotonic() - 1) == 1
    # Time left: every chunk there is, up to the limit.
    assert process_lead_imports(limit_chunks=3, until=time.monotonic() + 60) == 3
    assert process_lead_imports(limit_chunks=100, until=time.monotonic() + 60) == 1
    assert process_lead_imports(limit_chunks=100, until=time.monotonic() + 60) == 0
    assert Lead.objects.count() == 5


def test_a_priority_in_other_digits_is_rejected_not_a_failed_chunk(campaign: Campaign) -> None:
    text = "Number,Priority\n+14155550101,²\n+14155550102,٣\n+14155550103,7\n"
    lead_import = start_lead_import(campaign=campaign, upload=upload(text), filename="leads.csv", by="tests")

    process_lead_imports()

    lead_import.refresh_from_db()
    assert lead_import.status == LeadImportStatus.DONE
    assert list(lead_import.rejects.values_list("row", "reason")) == [
        (2, "invalid_priority"),
        (3, "invalid_priority"),
    ]
    assert Lead.objects.get().priority == 7


def test_a_worker_reads_each_next_chunk_in_its_background_thread(campaign: Campaign, monkeypatch) -> None:
    monkeypatch.setattr(lead_imports, "CHUNK_ROWS", 2)
    threads: list[str] = []

    def recording_read(*key):
        threads.append(threading.current_thread().name)
        return lead_imports._read_chunk(*key)

    monkeypatch.setattr(lead_imports, "_read_ahead", ReadAhead(recording_read, name="lead-import-read"))
    text = "Number,Name\n" + "".join(f"+1415555{n:04d},Lead {n}\n" for n in range(101, 107)) + "nope,x\n"
    lead_import = start_lead_import(campaign=campaign, upload=upload(text), filename="x.csv", by="tests")

    assert process_lead_imports(limit_chunks=10) == 4

    # The first chunk is read by the worker itself, each one after it while the one before is written.
    assert threads[0] == threading.current_thread().name
    assert len(threads) == 4 and all(name.startswith("lead-import-read") for name in threads[1:])
    lead_import.refresh_from_db()
    assert lead_import.status == LeadImportStatus.DONE
    assert (lead_import.created_leads, lead_import.rejected) == (6, 1)
    assert list(Lead.objects.order_by("created").values_list("name", flat=True)) == [
        f"Lead {n}" for n in range(101, 107)
    ]
    assert list(lead_import.rejects.values_list("row", "number", "reason")) == [(8, "nope", "invalid_number")]
