"""Report exports: /reports/<tab>/export.csv and .xlsx hold the report's own figures, row for row."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.test import Client
from django.urls import reverse

from reporting.exports.reports import report_tables
from reporting.models import BotOutcome, CallStatus
from reporting.reports.filters import ReportFilterForm
from reporting.reports.queues import queue_report
from reporting.reports.virtual_agents import virtual_agent_report
from tests.conftest import Persona
from tests.factories import make_queue
from tests.reporting.factories import make_bot, make_call
from tests.reporting.xlsx_reader import read_xlsx
from voiso_byob.models import ContactCenter

DAY = date(2026, 5, 1)
T = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
QUERY = {"start": "2026-05-01", "end": "2026-05-02", "interval": "hour", "tz": "Asia/Kathmandu"}
TABS = ["virtual-agents", "queues", "campaigns"]


def url(tab: str, fmt: str) -> str:
    return reverse("reports:export", args=[tab, fmt])


def body(response) -> bytes:
    return b"".join(response.streaming_content)


def seed(center: ContactCenter) -> None:
    """Two bots (one named like a formula), two queues, calls over two days in several hours."""
    bots = [make_bot(center, "Sales bot"), make_bot(center, "=evil()")]
    queues = [make_queue(center, "Sales"), make_queue(center, "@Support")]
    outcomes = [BotOutcome.CONTAINED, BotOutcome.HANDED_OFF, BotOutcome.ABANDONED_IN_BOT]
    for i in range(24):
        at = T + timedelta(hours=i * 1.5, minutes=i)
        handed = outcomes[i % 3] == BotOutcome.HANDED_OFF
        make_call(
            center,
            started_at=at,
            virtual_agent=bots[i % 2],
            bot_connected_at=at + timedelta(seconds=2),
            bot_outcome=outcomes[i % 3],
            bot_seconds=10.0 + i * 1.7,
            handoff_count=1 if handed else 0,
            handoff_requested_at=at + timedelta(seconds=20) if handed else None,
            queue=queues[i % 2] if handed else None,
            queue_entered_at=at + timedelta(seconds=25) if handed else None,
            queue_answered_at=at + timedelta(seconds=25 + i) if handed and i % 4 else None,
            agent_connected_at=at + timedelta(seconds=25 + i) if handed and i % 4 else None,
            queue_wait_seconds=float(i) if handed else None,
            human_seconds=60.0 + i if handed and i % 4 else None,
        )
    make_call(center, started_at=T, seconds=None, status=CallStatus.IN_PROGRESS, virtual_agent=bots[0])


def the_report(center: ContactCenter, tab: str, query: dict[str, str]) -> dict[str, Any]:
    form = ReportFilterForm(query, center=center)
    assert form.is_valid(), form.errors
    if tab == "virtual-agents":
        return virtual_agent_report(form.filters(), context_key=form.context_header)
    return queue_report(form.filters())


def same(value: float | None) -> Any:
    """An XLSX number: xlsxwriter writes 16 significant digits (a double can need 17; Excel
    shows 15), so a mean may come back one unit in the last place off. The CSV is exact."""
    return value if value is None else pytest.approx(value, rel=1e-15, abs=0)


def number(cell: str) -> float | None:
    return None if cell == "" else float(cell)


# --- who may export ---------------------------------------------------------------------------


@pytest.mark.parametrize("tab", TABS)
@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_admins_and_supervisors_export_every_tab(
    tab: str, fmt: str, admin: Persona, supervisor: Persona
) -> None:
    seed(admin.center)
    for persona in (admin, supervisor):
        response = persona.client.get(url(tab, fmt), QUERY)
        assert response.status_code == 200, (persona.membership.role, response.content[:300])
        assert response["Content-Disposition"].startswith("attachment;")
        assert f'filename="{tab}-acme-2026-05-01-2026-05-02.{fmt}"' in response["Content-Disposition"]
        assert response["Cache-Control"] == "no-store"
        assert body(response)


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_agents_are_refused(fmt: str, agent: Persona) -> None:
    seed(agent.center)
    response = agent.client.get(url("virtual-agents", fmt), QUERY)
    assert response.status_code == 403
    assert b"Sales bot" not in response.content


def test_anonymous_goes_to_login(anonymous: Client) -> None:
    response = anonymous.get(url("queues", "csv"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.parametrize(("tab", "fmt"), [("bots", "csv"), ("queues", "pdf"), ("queues", "CSV")])
def test_unknown_tabs_and_formats_are_404(tab: str, fmt: str, admin: Persona) -> None:
    # Written out: reverse() itself refuses a tab the URL converter does not know.
    assert admin.client.get(f"/reports/{tab}/export.{fmt}").status_code == 404


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
def test_another_centers_ids_never_leak(fmt: str, admin: Persona, outsider: Persona) -> None:
    seed(outsider.center)
    theirs = outsider.center.virtual_agents.get(name="Sales bot")
    response = admin.client.get(url("virtual-agents", fmt), {**QUERY, "virtual_agent": str(theirs.pk)})
    assert response.status_code == 400
    assert "Content-Disposition" not in response
    assert b"Sales bot" not in response.content
    # And an outsider's export of its own center holds none of acme's bots.
    seed(admin.center)
    mine = admin.center.virtual_agents.get(name="Sales bot")
    exported = body(outsider.client.get(url("virtual-agents", "csv"), QUERY)).decode()
    assert str(theirs.pk) in exported and str(mine.pk) not in exported


@pytest.mark.parametrize("fmt", ["csv", "xlsx"])
@pytest.mark.parametrize(
    "params",
    [
        {"start": "tomorrow"},
        {"start": "2026-05-02", "end": "2026-05-01"},
        {"interval": "minute"},
        {"interval": "15m", "start": "2026-01-01", "end": "2026-05-01"},  # too many buckets
        {"tz": "Mars/Olympus"},
        {"direction": "up"},
        {"queue": "not-a-uuid"},
        {"start": "0001-01-01"},
        {"context_key": "X Reason"},
    ],
)
def test_invalid_queries_are_a_400_never_a_500(fmt: str, params: dict, admin: Persona) -> None:
    response = admin.client.get(url("virtual-agents", fmt), params)
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/plain")
    assert response.content  # the form's message


# --- the figures are the report's -------------------------------------------------------------


@pytest.mark.parametrize("tab", ["virtual-agents", "queues"])
def test_csv_figures_equal_the_report_row_for_row(tab: str, admin: Persona) -> None:
    seed(admin.center)
    report = the_report(admin.center, tab, QUERY)
    tables = report_tables(report)
    assert report["rows"] and report["series"]  # something to compare

    header, *lines = list(csv.reader(io.StringIO(body(admin.client.get(url(tab, "csv"), QUERY)).decode())))

    rows = [dict(zip(header, line, strict=True)) for line in lines if line[0] == "row"]
    totals = [dict(zip(header, line, strict=True)) for line in lines if line[0] == "total"]
    buckets = [dict(zip(header, line, strict=True)) for line in lines if line[0] == "bucket"]
    assert len(rows) == len(report["rows"]) and len(totals) == 1
    assert len(buckets) == len(report["series"]) == 48
    for exported, row in zip(rows, report["rows"], strict=True):
        for name in tables.figures:
            assert number(exported[name]) == row[name], name
    for name in tables.figures:
        assert number(totals[0][name]) == report["totals"][name], name
    for exported, point in zip(buckets, report["series"], strict=True):
        assert exported["bucket"] == point["bucket"].isoformat()
        for name in tables.series_figures:
            assert number(exported[name]) == point[name], name
    # Buckets start at local hours in the report's zone, with its offset.
    assert buckets[0]["bucket"] == "2026-05-01T00:00:00+05:45"
    # A counted figure's total is the sum of its rows and of its buckets.
    first = tables.figures[0]
    assert sum(number(r[first]) for r in rows) == number(totals[0][first])


def test_csv_names_are_guarded_against_formulas(admin: Persona) -> None:
    seed(admin.center)
    exported = list(
        csv.reader(io.StringIO(body(admin.client.get(url("virtual-agents", "csv"), QUERY)).decode()))
    )
    names = {line[exported[0].index("name")] for line in exported[1:] if line[0] == "row"}
    assert names == {"Sales bot", "'=evil()"}


@pytest.mark.parametrize("tab", ["virtual-agents", "queues"])
def test_xlsx_figures_equal_the_report_row_for_row(tab: str, admin: Persona) -> None:
    seed(admin.center)
    report = the_report(admin.center, tab, QUERY)
    tables = report_tables(report)

    book = read_xlsx(body(admin.client.get(url(tab, "xlsx"), QUERY)))

    title = {"virtual-agents": "Virtual agents", "queues": "Queues"}[tab]
    assert list(book) == [title, "By hour", "Filters"]
    header, *lines = book[title]
    assert header == [*tables.keys, *tables.figures]
    *rows, total = lines
    assert len(rows) == len(report["rows"])
    for exported, row in zip(rows, report["rows"], strict=True):
        values = dict(zip(header, exported + [None] * (len(header) - len(exported)), strict=True))
        assert values["name"] == row["name"]  # text as it is: "=evil()" is a string cell
        for name in tables.figures:
            assert values[name] == same(row[name]), name
    totals = dict(zip(header, total + [None] * (len(header) - len(total)), strict=True))
    assert totals["name"] == "Total"
    for name in tables.figures:
        assert totals[name] == same(report["totals"][name]), name
    series_header, *points = book["By hour"]
    assert series_header == ["bucket", *tables.series_figures]
    assert [p[0] for p in points] == [point["bucket"].isoformat() for point in report["series"]]
    assert book["Filters"][1:] == [
        ["tz", "Asia/Kathmandu"],
        ["start", "2026-05-01"],
        ["end", "2026-05-02"],
        ["interval", "hour"],
    ]
    assert book.formulas == 0


def test_no_grouping_exports_no_series(admin: Persona) -> None:
    seed(admin.center)
    query = {**QUERY, "interval": "none"}
    book = read_xlsx(body(admin.client.get(url("queues", "xlsx"), query)))
    assert list(book) == ["Queues", "Filters"]
    lines = list(csv.reader(io.StringIO(body(admin.client.get(url("queues", "csv"), query)).decode())))
    assert {line[0] for line in lines[1:]} == {"row", "total"}


def test_an_empty_report_exports_its_zero_totals(admin: Persona) -> None:
    lines = list(csv.reader(io.StringIO(body(admin.client.get(url("campaigns", "csv"), QUERY)).decode())))
    sections = [line[0] for line in lines[1:]]
    assert sections.count("total") == 1 and "row" not in sections
    total = dict(zip(lines[0], lines[1 + sections.index("total")], strict=True))
    assert total["section"] == "total"
    assert any(value == "0" for value in total.values())


def test_the_default_query_is_the_pages(admin: Persona) -> None:
    # No query string: the last 7 days in the center's zone, by day, as the page shows.
    ContactCenter.objects.filter(pk=admin.center.pk).update(timezone="America/St_Johns")
    response = admin.client.get(url("queues", "xlsx"))
    book = read_xlsx(body(response))
    assert book["Filters"][1] == ["tz", "America/St_Johns"] and book["Filters"][4] == ["interval", "day"]
    assert len(book["By day"]) == 1 + 7
    assert book["By day"][1][0].endswith(("-02:30", "-03:30"))
    assert ZoneInfo("America/St_Johns")
