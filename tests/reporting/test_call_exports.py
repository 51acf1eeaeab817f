"""Call-record exports beyond the CSV's own tests (test_calls_views.py): the XLSX, filenames,
refused queries, another center's filter ids, and PostgreSQL's COPY path against the Python one."""

from __future__ import annotations

import csv
import io
import os
import tempfile
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.http import FileResponse
from django.test import Client
from django.urls import reverse

from reporting.exports import formats
from reporting.exports.calls import CALL_COLUMNS, _copy_csv_chunks, call_rows, csv_call_rows
from reporting.exports.formats import csv_chunks
from reporting.models import BotOutcome, Direction
from reporting.queries import CallFilters, filtered_calls
from tests.conftest import Persona
from tests.factories import make_member, make_queue
from tests.reporting.factories import T0, make_bot, make_call
from tests.reporting.xlsx_reader import read_xlsx
from voiso_byob.models import ContactCenter, Role

CSV = reverse("reporting:call_export")
XLSX = reverse("reporting:call_export_xlsx")


def body(response) -> bytes:
    # Read to the end, the test client closes the response (and the file) itself.
    return b"".join(response.streaming_content)


def xlsx(response) -> dict:
    assert response.status_code == 200
    assert isinstance(response, FileResponse)
    assert response["Content-Type"] == formats.XLSX_CONTENT_TYPE
    return read_xlsx(body(response))


# --- who may export ---------------------------------------------------------------------------


def test_admins_and_supervisors_export_xlsx(admin: Persona, supervisor: Persona) -> None:
    make_call(admin.center, call_id="c-1")
    for persona in (admin, supervisor):
        book = xlsx(persona.client.get(XLSX))
        assert [row[0] for row in book["Calls"]] == ["call_id", "c-1"], persona.membership.role


def test_agents_are_refused_xlsx(agent: Persona) -> None:
    make_call(agent.center, call_id="c-1", answered_by=agent.membership)
    response = agent.client.get(XLSX)
    assert response.status_code == 403
    assert b"c-1" not in response.content


def test_anonymous_goes_to_login(anonymous: Client) -> None:
    response = anonymous.get(XLSX)
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_another_centers_calls_never_leave_in_xlsx(admin: Persona, outsider: Persona) -> None:
    make_call(admin.center, call_id="acme-call")
    make_call(outsider.center, call_id="globex-call")
    ids = [row[0] for row in xlsx(outsider.client.get(XLSX))["Calls"][1:]]
    assert ids == ["globex-call"]


@pytest.mark.parametrize("url", [CSV, XLSX])
@pytest.mark.parametrize("field", ["virtual_agent", "queue"])
def test_another_centers_filter_ids_are_refused(
    url: str, field: str, admin: Persona, outsider: Persona
) -> None:
    # The filter only knows the caller's center: another center's bot or queue is an invalid
    # choice (400), never a filter that could read that center's calls.
    theirs = make_bot(outsider.center) if field == "virtual_agent" else make_queue(outsider.center)
    make_call(outsider.center, call_id="globex-call", **{field: theirs})
    response = admin.client.get(url, {field: str(theirs.pk)})
    assert response.status_code == 400
    assert not isinstance(response, FileResponse)
    assert b"globex-call" not in response.content


@pytest.mark.parametrize("url", [CSV, XLSX])
@pytest.mark.parametrize(
    "params",
    [
        {"date_from": "yesterday"},
        {"date_from": "2025-03-02", "date_to": "2025-03-01"},
        {"date_to": "99999-01-01"},
        {"direction": "sideways"},
        {"handed_off": "maybe"},
        {"virtual_agent": "not-a-uuid"},
        {"number": "x" * 500},
    ],
)
def test_invalid_filters_are_a_400_not_a_file(url: str, params: dict, admin: Persona) -> None:
    make_call(admin.center, call_id="c-1")
    response = admin.client.get(url, params)
    assert response.status_code == 400
    assert "Content-Disposition" not in response


# --- the XLSX ---------------------------------------------------------------------------------


def test_xlsx_has_the_csv_columns_typed_and_the_same_filters(admin: Persona) -> None:
    center = admin.center
    bot = make_bot(center, "Billing bot")
    queue = make_queue(center, "Billing queue")
    member = make_member(center, Role.AGENT, email="ann@acme.example", extension="1002")
    make_call(
        center,
        call_id="handed",
        started_at=T0 + timedelta(seconds=5),
        virtual_agent=bot,
        queue=queue,
        answered_by=member,
        answered_extension="1002",
        bot_outcome=BotOutcome.HANDED_OFF,
        handoff_count=1,
        bot_seconds=80.25,
        end_reason='=HYPERLINK("http://evil.example","x")',
    )
    make_call(center, call_id="older", started_at=T0)
    make_call(center, call_id="outbound", direction=Direction.OUTBOUND)

    book = xlsx(admin.client.get(XLSX, {"direction": "inbound"}))

    header, *rows = book["Calls"]
    assert header == CALL_COLUMNS
    assert [row[0] for row in rows] == ["handed", "older"]  # list order, outbound filtered out
    values = dict(zip(header, rows[0], strict=False))
    assert values["started_at"] == "2025-03-14T09:00:05+00:00"
    assert values["virtual_agent"] == "Billing bot"
    assert values["queue"] == "Billing queue"
    assert values["answered_by"] == "ann@acme.example"  # no full name: the email, as on the page
    assert values["handoffs"] == 1.0 and values["duration_seconds"] == 90.0
    assert values["bot_seconds"] == 80.25  # a number, full precision (shown as 0.0)
    assert values["queue_wait_seconds"] is None
    # Text is text: the number keeps its '+', the formula is a string cell, never evaluated.
    assert values["from"] == "+15550000000"
    assert values["end_reason"] == '=HYPERLINK("http://evil.example","x")'
    assert book.formulas == 0


def test_xlsx_continues_on_a_new_sheet_at_excels_row_limit(admin: Persona, monkeypatch) -> None:
    monkeypatch.setattr(formats, "SHEET_ROWS", 4)  # a header and 3 calls a sheet
    for i in range(7):
        make_call(admin.center, call_id=f"c-{i}", started_at=T0 + timedelta(seconds=i))
    book = xlsx(admin.client.get(XLSX))
    assert list(book) == ["Calls", "Calls 2", "Calls 3"]
    assert all(sheet[0] == CALL_COLUMNS for sheet in book.values())
    ids = [row[0] for sheet in book.values() for row in sheet[1:]]
    assert ids == [f"c-{i}" for i in reversed(range(7))]


def test_the_real_limit_is_excels() -> None:
    assert formats.SHEET_ROWS == 1_048_576


def test_xlsx_leaves_no_file_behind(admin: Persona, monkeypatch, tmp_path) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for i in range(3):
        make_call(admin.center, call_id=f"c-{i}", started_at=T0 + timedelta(seconds=i))
    response = admin.client.get(XLSX)
    # Being sent: the workbook is an open file with no name; xlsxwriter's parts are gone.
    assert os.listdir(tmp_path) == []
    assert len(xlsx(response)["Calls"]) == 4
    assert os.listdir(tmp_path) == []


def test_xlsx_of_no_calls_is_a_header(admin: Persona) -> None:
    assert xlsx(admin.client.get(XLSX))["Calls"] == [CALL_COLUMNS]


# --- filenames --------------------------------------------------------------------------------


@time_machine.travel(datetime(2025, 4, 2, 22, 30, tzinfo=UTC), tick=False)
@pytest.mark.parametrize("url", [CSV, XLSX])
def test_filenames_name_the_center_and_the_dates(url: str, admin: Persona) -> None:
    ContactCenter.objects.filter(pk=admin.center.pk).update(timezone="Europe/Berlin")
    extension = url.rsplit(".", 1)[1]
    response = admin.client.get(url, {"date_from": "2025-03-01", "date_to": "2025-03-31"})
    assert f'filename="calls-acme-2025-03-01-2025-03-31.{extension}"' in response["Content-Disposition"]
    assert response["Content-Disposition"].startswith("attachment;")
    assert response["Cache-Control"] == "no-store"
    body(response)
    # Open ends: from the first call, up to today in the center's zone (already April 3rd there).
    response = admin.client.get(url)
    assert f'filename="calls-acme-all-2025-04-03.{extension}"' in response["Content-Disposition"]
    body(response)


# --- PostgreSQL: COPY writes what the Python path writes --------------------------------------


def _rows(chunks) -> list[list[str]]:
    return list(csv.reader(io.StringIO(b"".join(chunks).decode())))


@pytest.mark.postgres
@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "Asia/Kathmandu", "America/St_Johns"])
def test_copy_writes_the_rows_the_python_path_writes(zone: str, admin: Persona) -> None:
    center = admin.center
    bot = make_bot(center, "=cmd|' /C calc'!A0")
    queue = make_queue(center, '+Sales, "the big one"')
    named = make_member(center, Role.AGENT, email="zoe@acme.example", extension="1003")
    named.user.full_name = 'Zoë, "Z"\nsecond line'
    named.user.save()
    unnamed = make_member(center, Role.AGENT, email="-x@acme.example", extension="1004")
    weird = ["-2+3", "@SUM(A1)", "\tx", "\rx", "a\rb", "a,b", 'q"uote', "multi\nline", "", "ünï", "\\."]
    seconds = [80.25, 0.05, None, -1.25, 12345.675, 0.0, 2.5, 1e-7, 86399.95, 3.0, 7.15]
    # Around Berlin's spring-forward (2025-03-30 01:00 UTC), with and without microseconds.
    base = datetime(2025, 3, 30, 0, 59, 58, tzinfo=UTC)
    for i, (text, value) in enumerate(zip(weird, seconds, strict=True)):
        make_call(
            center,
            call_id=f"={i}" if i % 3 == 0 else f"call-{i}@pbx;tag={i}",
            started_at=base + timedelta(seconds=i, microseconds=123_456 * (i % 2)),
            direction=Direction.OUTBOUND if i % 2 else Direction.INBOUND,
            from_number=text,
            to_number="+15559990000",
            virtual_agent=bot if i % 2 else None,
            queue=queue if i % 3 else None,
            answered_by=(named, unnamed, None)[i % 3],
            answered_extension=text,
            bot_outcome=BotOutcome.HANDED_OFF if i % 2 else "",
            handoff_count=i % 2,
            bot_seconds=value,
            queue_wait_seconds=value,
            human_seconds=None if value is None else value * 3,
            end_reason=text,
            recording_url="" if i % 2 else f"https://rec.example/{i}.wav",
        )
    make_call(center, call_id="undated-1", started_at=None)
    make_call(center, call_id="undated-2", started_at=None, end_reason="=undated")
    records = filtered_calls(center, CallFilters())
    tz = ZoneInfo(zone)

    by_copy = _rows(_copy_csv_chunks(records, tz, "default"))
    by_python = _rows(csv_chunks(CALL_COLUMNS, csv_call_rows(call_rows(records, tz))))

    assert len(by_copy) == len(weird) + 3
    assert by_copy == by_python
    assert by_copy[-1][0] == "undated-1" and by_copy[-2][0] == "undated-2"


@pytest.mark.postgres
def test_copy_follows_the_filters_and_leaves_the_session_zone_alone(admin: Persona) -> None:
    from django.db import connection

    make_call(admin.center, call_id="in", started_at=T0)
    make_call(admin.center, call_id="out", started_at=T0 - timedelta(days=2))
    records = filtered_calls(admin.center, CallFilters(date_from=T0.date(), date_to=T0.date()))
    rows = _rows(_copy_csv_chunks(records, ZoneInfo("Asia/Kathmandu"), "default"))
    assert [row[0] for row in rows] == ["call_id", "in"]
    assert rows[1][1] == "2025-03-14T14:45:00+05:45"
    with connection.cursor() as cursor:
        cursor.execute("SHOW TimeZone")
        assert cursor.fetchone()[0] == "UTC"


@pytest.mark.postgres
@pytest.mark.parametrize(
    "in_transaction",
    [
        pytest.param(True, id="inside a test's transaction"),
        pytest.param(False, id="autocommit, as served", marks=pytest.mark.django_db(transaction=True)),
    ],
)
def test_a_client_gone_mid_copy_leaves_the_connection_usable(admin: Persona, in_transaction: bool) -> None:
    from django.db import connection

    assert connection.in_atomic_block == in_transaction

    for i in range(1200):
        make_call(admin.center, call_id=f"c-{i}", started_at=T0 + timedelta(seconds=i))
    chunks = _copy_csv_chunks(
        filtered_calls(admin.center, CallFilters()), ZoneInfo("Europe/Berlin"), "default"
    )
    next(chunks)  # the header
    assert next(chunks).count(b"\n") == 500  # the first rows, mid-COPY
    chunks.close()  # what the server does when the client goes away
    with connection.cursor() as cursor:
        cursor.execute("SHOW TimeZone")
        assert cursor.fetchone()[0] == "UTC"
    assert filtered_calls(admin.center, CallFilters()).count() == 1200
