"""The Reports page: who may read it, its filters in the URL, and figures that equal the report's,
the chart's and the Calls page's behind each link."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from html import unescape
from urllib.parse import parse_qs, urlsplit

import pytest
import time_machine
from django.db import connection
from django.test import Client
from django.urls import reverse

from campaigns.services import create_campaign
from reporting.models import BotOutcome, HandoffState
from reporting.reports.campaigns import campaign_report
from reporting.reports.filters import ReportFilterForm
from reporting.reports.queues import queue_report
from reporting.reports.virtual_agents import virtual_agent_report
from reporting.rollups import rebuild_rollups
from tests.conftest import Persona
from tests.factories import make_queue
from tests.reporting.factories import T0, make_bot, make_call, make_handoff
from voiso_byob.models import ContactCenter

DAY = T0.date()  # acme's zone is UTC
RANGE = {"start": DAY.isoformat(), "end": DAY.isoformat(), "interval": "hour"}
TABS = ("virtual-agents", "queues", "campaigns")


def tab_url(tab: str) -> str:
    return reverse("reports:report", args=[tab])


def seed(center: ContactCenter) -> dict[str, object]:
    """A day of acme: two bots, one queue, a campaign; every outcome at least once."""
    sales, support = make_bot(center, "Sales bot"), make_bot(center, "Support bot")
    queue = make_queue(center, "Sales queue")
    campaign = create_campaign(center=center, by="tests", name="Renewals", virtual_agents=[sales])
    hour = timedelta(hours=1)
    for i in range(3):
        make_call(
            center,
            virtual_agent=sales,
            started_at=T0 + i * hour,
            bot_outcome=BotOutcome.CONTAINED,
            bot_connected_at=T0 + i * hour,
        )
    make_call(
        center,
        virtual_agent=support,
        started_at=T0 + 2 * hour,
        bot_outcome=BotOutcome.ABANDONED_IN_BOT,
        bot_connected_at=T0 + 2 * hour,
    )
    for i, state in enumerate([HandoffState.COMPLETED, HandoffState.COMPLETED, HandoffState.FAILED]):
        start = T0 + (i + 4) * hour
        record = make_call(
            center,
            virtual_agent=support if i else sales,
            queue=queue,
            started_at=start,
            bot_connected_at=start,
            queue_entered_at=start + timedelta(seconds=30) if state == HandoffState.COMPLETED else None,
            queue_answered_at=start + timedelta(seconds=40) if i == 0 else None,
            queue_wait_seconds=10 if i == 0 else (50 if state == HandoffState.COMPLETED else None),
        )
        make_handoff(record, virtual_agent=record.virtual_agent, state=state, requested_at=start)
    # A dialled call of the campaign that a bot answered, and one that was busy.
    make_call(
        center,
        direction="outbound",
        campaign_ref=str(campaign.pk),
        lead_ref="lead-1",
        virtual_agent=sales,
        bot_connected_at=T0,
        bot_outcome=BotOutcome.CONTAINED,
        started_at=T0,
    )
    make_call(
        center,
        direction="outbound",
        campaign_ref=str(campaign.pk),
        lead_ref="lead-2",
        end_reason="busy",
        started_at=T0 + hour,
    )
    # Outside the day: in no figure.
    make_call(
        center, virtual_agent=sales, started_at=T0 - timedelta(days=2), bot_outcome=BotOutcome.CONTAINED
    )
    return {"sales": sales, "support": support, "queue": queue, "campaign": campaign}


def report_of(center: ContactCenter, tab: str, query: dict[str, object]) -> dict:
    form = ReportFilterForm(query, center=center)
    assert form.is_valid(), form.errors
    function = {
        "virtual-agents": virtual_agent_report,
        "queues": queue_report,
        "campaigns": campaign_report,
    }[tab]
    return function(form.filters())


def chart_data(html: str) -> dict:
    found = re.search(r'<script id="report-data" type="application/json">(.*?)</script>', html, re.S)
    assert found, "the page has no chart data"
    return json.loads(found.group(1))


def figure_cells(html: str) -> list[tuple[str, str, str]]:
    """(figure, text, href) of every table cell that shows a figure, in order."""
    cells = re.findall(r'<td class="num" data-figure="([^"]+)">(.*?)</td>', html, re.S)
    out = []
    for figure, inner in cells:
        link = re.search(r'<a href="([^"]+)"[^>]*>([^<]*)</a>', inner)
        text = link.group(2) if link else re.sub(r"<small.*", "", inner, flags=re.S).strip()
        out.append((figure, unescape(text).strip(), unescape(link.group(1)) if link else ""))
    return out


def total_cells(html: str) -> dict[str, str]:
    foot = html[html.index("<tfoot>") : html.index("</tfoot>")]
    return {figure: text for figure, text, _ in figure_cells(foot)}


# --- access --------------------------------------------------------------------------------


@pytest.mark.parametrize("tab", TABS)
@pytest.mark.parametrize(("persona", "status"), [("admin", 200), ("supervisor", 200), ("agent", 403)])
def test_administrators_and_supervisors_read_reports_agents_do_not(
    request: pytest.FixtureRequest, tab: str, persona: str, status: int
) -> None:
    client = request.getfixturevalue(persona).client

    assert client.get(tab_url(tab), RANGE).status_code == status


def test_anonymous_visitors_are_sent_to_sign_in(acme: ContactCenter, anonymous: Client) -> None:
    for url in [reverse("reports:index"), *map(tab_url, TABS)]:
        response = anonymous.get(url)
        assert response.status_code == 302
        assert urlsplit(response["Location"]).path == "/accounts/login/"


def test_reports_opens_on_virtual_agents_keeping_the_query(supervisor: Persona) -> None:
    response = supervisor.client.get(reverse("reports:index"), RANGE)

    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == tab_url("virtual-agents")
    assert parse_qs(location.query) == {name: [value] for name, value in RANGE.items()}


def test_agent_is_refused_the_index_too(agent: Persona) -> None:
    assert agent.client.get(reverse("reports:index")).status_code == 403


def test_an_unknown_tab_is_not_found(supervisor: Persona) -> None:
    assert supervisor.client.get("/reports/agents/").status_code == 404


@pytest.mark.parametrize("tab", TABS)
def test_an_outsider_reads_their_own_center_only(outsider: Persona, acme: ContactCenter, tab: str) -> None:
    seed(acme)

    response = outsider.client.get(tab_url(tab), RANGE)

    html = response.content.decode()
    assert response.status_code == 200
    for name in ("Sales bot", "Support bot", "Sales queue", "Renewals"):
        assert name not in html


@pytest.mark.parametrize("param", ["virtual_agent", "queue", "campaign"])
def test_another_centers_ids_are_refused_not_reported(
    outsider: Persona, acme: ContactCenter, param: str
) -> None:
    objects = seed(acme)
    foreign = {"virtual_agent": objects["sales"], "queue": objects["queue"], "campaign": objects["campaign"]}

    response = outsider.client.get(tab_url("virtual-agents"), {**RANGE, param: str(foreign[param].pk)})

    assert response.status_code == 400
    html = response.content.decode()
    assert "These filters cannot be applied" in html
    assert 'id="report-data"' not in html
    assert "Sales bot" not in html


# --- invalid query strings: 400 with the form's errors, never a 500 -------------------------

INVALID = [
    {"start": "yesterday"},
    {"start": "2025-03-15", "end": "2025-03-14"},
    {"start": "0001-01-01"},
    {"end": "99999-01-01"},
    {"interval": "fortnight"},
    {"tz": "Mars/Olympus_Mons"},
    {"tz": "x" * 500},
    {"direction": "sideways"},
    {"virtual_agent": "not-a-uuid"},
    {"queue": "00000000-0000-0000-0000-000000000000"},
    {"start": "2025-01-01", "end": "2025-12-31", "interval": "15m"},
    {"start": "2025-03-14\x00"},
    {"context_key": "X Reason!"},
]


@pytest.mark.parametrize("tab", TABS)
@pytest.mark.parametrize("query", INVALID, ids=lambda q: ",".join(q))
def test_a_refused_query_answers_400_with_its_errors(
    supervisor: Persona, tab: str, query: dict[str, str]
) -> None:
    create_campaign(
        center=supervisor.center, by="tests", name="Renewals", virtual_agents=[make_bot(supervisor.center)]
    )

    response = supervisor.client.get(tab_url(tab), query)

    assert response.status_code == 400
    html = response.content.decode()
    assert "These filters cannot be applied" in html
    assert re.search(r'<div class="form-errors" role="alert">.*?<li>.+?</li>', html, re.S)


def test_a_refused_query_over_htmx_answers_the_errors_alone(supervisor: Persona) -> None:
    response = supervisor.client.get(tab_url("queues"), {"interval": "fortnight"}, HTTP_HX_REQUEST="true")

    assert response.status_code == 400
    html = response.content.decode()
    assert html.lstrip().startswith('<nav class="tabs" id="report-tabs"')
    assert "<form" not in html and "Select a valid choice" in html


# --- figures: the table equals the report, the chart plots the same series ------------------


def test_table_and_chart_show_the_report_dict(supervisor: Persona) -> None:
    seed(supervisor.center)
    expected = report_of(supervisor.center, "virtual-agents", RANGE)

    response = supervisor.client.get(tab_url("virtual-agents"), RANGE)

    html = response.content.decode()
    totals = total_cells(html)
    # The campaign's call a bot answered is a bot call too.
    assert totals["calls"] == "8" == str(expected["totals"]["calls"])
    assert totals["contained"] == "4"
    assert totals["handed_off"] == "3"
    assert totals["abandoned_in_bot"] == "1"
    assert totals["handoffs_requested"] == "3" and totals["handoffs_completed"] == "2"
    assert totals["handoff_success_rate"] == "66.7 %"
    assert "50.0 %" in html  # containment 4 ÷ 8, beside the count
    data = chart_data(html)
    assert data["tz"] == "UTC" and data["interval"] == "hour"
    assert len(data["series"]) == 24
    assert sum(point["calls"] for point in data["series"]) == expected["totals"]["calls"]
    assert data["series"][0]["bucket"].startswith(f"{DAY.isoformat()}T00:00:00")
    assert [point["contained"] for point in data["series"][9:13]] == [2, 1, 1, 0]  # T0 is 09:00
    assert set(data["charts"]) == {"outcomes", "rates"}
    # Per bot, as the report has them.
    rows = {row["name"]: row for row in expected["rows"]}
    assert rows["Sales bot"]["calls"] == 5 and rows["Support bot"]["calls"] == 3
    assert html.index("Sales bot") < html.index("Support bot")


def test_handoffs_break_down_by_the_header_asked_for(supervisor: Persona) -> None:
    bot = make_bot(supervisor.center, "Billing bot")
    for intent in ("dispute", "dispute", "refund"):
        record = make_call(supervisor.center, virtual_agent=bot, started_at=T0, bot_connected_at=T0)
        make_handoff(record, virtual_agent=bot, context={"X-Intent": intent}, requested_at=T0)

    html = supervisor.client.get(
        tab_url("virtual-agents"), {**RANGE, "context_key": "X-Intent"}
    ).content.decode()

    assert "<h2>Handoffs by X-Intent</h2>" in html
    section = html[html.index("Handoffs by X-Intent") :]
    assert re.search(r"<td>dispute</td><td class=\"num\">2</td>", section)
    assert re.search(r"<td>refund</td><td class=\"num\">1</td>", section)
    assert 'name="context_key" id="id_context_key" value="X-Intent"' in html


def test_null_rates_read_as_a_dash(supervisor: Persona) -> None:
    make_bot(supervisor.center, "Idle bot")

    response = supervisor.client.get(tab_url("virtual-agents"), RANGE)

    totals = total_cells(response.content.decode())
    assert totals["calls"] == "0"
    assert totals["handoff_success_rate"] == "—"
    assert totals["bot_time_p50"] == "—"


def test_queue_figures_with_service_level_and_waits(supervisor: Persona) -> None:
    objects = seed(supervisor.center)

    html = supervisor.client.get(tab_url("queues"), RANGE).content.decode()

    totals = total_cells(html)
    assert totals["offered"] == "2" and totals["answered"] == "1" and totals["abandoned"] == "1"
    assert totals["service_level"] == "50.0 %"
    assert totals["wait_p50"] == "0:10"
    assert f"ext. {objects['queue'].extension.digits}" in html


def test_campaigns_tab_reports_the_dialers_calls(supervisor: Persona) -> None:
    seed(supervisor.center)

    html = supervisor.client.get(tab_url("campaigns"), RANGE).content.decode()

    totals = total_cells(html)
    assert totals["attempts"] == "2" and totals["leads"] == "2"
    assert totals["completed"] == "1" and totals["busy"] == "1"
    assert "Renewals" in html


def test_campaigns_tab_explains_when_the_center_has_none(supervisor: Persona) -> None:
    response = supervisor.client.get(tab_url("campaigns"), RANGE)

    html = response.content.decode()
    assert response.status_code == 200
    assert "no campaigns yet" in html
    assert 'id="report-data"' not in html


def test_every_count_links_to_the_calls_behind_it(supervisor: Persona) -> None:
    seed(supervisor.center)
    checked = 0

    for tab in TABS:
        html = supervisor.client.get(tab_url(tab), RANGE).content.decode()
        for figure, text, href in figure_cells(html):
            if not href:
                continue
            listed = supervisor.client.get(href)
            assert listed.status_code == 200, (tab, figure, href)
            rows = re.findall(r'<tr>\s*<td class="nowrap"><a href="/calls/', listed.content.decode())
            assert len(rows) == int(text.replace(",", "")), (tab, figure, href)
            checked += 1
    assert checked >= 20


def test_filters_narrow_the_report_and_stay_in_the_links(supervisor: Persona) -> None:
    objects = seed(supervisor.center)
    query = {**RANGE, "virtual_agent": str(objects["support"].pk), "interval": "day"}

    html = supervisor.client.get(tab_url("virtual-agents"), query).content.decode()

    assert total_cells(html)["calls"] == "3"
    assert "Sales bot</th>" not in html
    tabs = re.search(r'<nav class="tabs" id="report-tabs".*?</nav>', html, re.S).group(0)
    assert f"virtual_agent={objects['support'].pk}" in tabs  # switching tab keeps the filters
    assert len(chart_data(html)["series"]) == 1


def test_the_form_shows_the_range_in_effect(supervisor: Persona) -> None:
    today = date(2025, 3, 14)
    with time_machine.travel(T0 + timedelta(hours=3)):
        html = supervisor.client.get(tab_url("queues")).content.decode()

    assert f'name="start" id="id_start" value="{(today - timedelta(days=6)).isoformat()}"' in html
    assert f'name="end" id="id_end" value="{today.isoformat()}"' in html
    assert '<option value="day" selected>' in html


def test_htmx_gets_the_report_and_the_tabs_out_of_band(supervisor: Persona) -> None:
    seed(supervisor.center)

    response = supervisor.client.get(tab_url("queues"), RANGE, HTTP_HX_REQUEST="true")

    html = response.content.decode()
    assert response.status_code == 200
    assert "HX-Request" in response["Vary"]
    assert 'hx-swap-oob="true"' in html and '<div id="report"' in html
    assert "<form" not in html and "<header" not in html


def test_the_page_loads_the_vendored_chart_library_and_no_inline_script(supervisor: Persona) -> None:
    seed(supervisor.center)

    html = supervisor.client.get(tab_url("virtual-agents"), RANGE).content.decode()

    assert "/static/vendor/uPlot-1.6.32.iife.min.js" in html
    assert "/static/js/reports.js" in html
    report = html[html.index("<div data-report>") :]
    assert " style=" not in report and "<style" not in report
    assert not re.search(r"<script(?![^>]*(src=|application/json))", report)
    assert not re.search(r" on[a-z]+=| hx-on", report)


@pytest.mark.ingested_rollups  # counts the report's own queries, not a rebuild before each
def test_report_page_queries_are_bounded(supervisor: Persona, django_assert_max_num_queries) -> None:
    seed(supervisor.center)
    for _ in range(5):
        make_bot(supervisor.center)
        make_queue(supervisor.center)
    rebuild_rollups(center_id=supervisor.center.pk)
    supervisor.client.get(tab_url("virtual-agents"), RANGE)

    # Session, user, membership (twice: the view, the layout's switcher); the filters' bots,
    # queues (with their extensions), campaigns; then the report's own sums of the rollups (8 for
    # the virtual agents: rows and series of calls and of handoffs, the bots still there, failures,
    # context values, names; PostgreSQL: SET LOCAL jit). None of it grows with bots, queues or calls.
    # PostgreSQL: 3 more per report, its transaction for SET LOCAL jit = off (savepoint, SET, release).
    jit = 3 if connection.vendor == "postgresql" else 0
    with django_assert_max_num_queries(16 + jit):
        response = supervisor.client.get(tab_url("virtual-agents"), RANGE)
    assert response.status_code == 200
    with django_assert_max_num_queries(11 + jit):
        assert supervisor.client.get(tab_url("queues"), RANGE).status_code == 200
    # Campaigns: three more, the distinct leads read from the records (they do not add up in rollups).
    with django_assert_max_num_queries(14 + jit):
        assert supervisor.client.get(tab_url("campaigns"), RANGE).status_code == 200


def test_a_half_hour_zone_groups_on_its_own_hours(supervisor: Persona) -> None:
    center = supervisor.center
    center.timezone = "Asia/Kolkata"
    center.save(update_fields=["timezone"])
    bot = make_bot(center, "Mumbai bot")
    make_call(center, virtual_agent=bot, started_at=T0, bot_outcome=BotOutcome.CONTAINED)  # 14:30 IST

    html = supervisor.client.get(tab_url("virtual-agents"), RANGE).content.decode()

    data = chart_data(html)
    assert data["tz"] == "Asia/Kolkata"
    hit = [point for point in data["series"] if point["calls"]]
    assert len(hit) == 1 and hit[0]["bucket"].startswith(f"{DAY.isoformat()}T14:00:00+05:30")


# --- export links ---------------------------------------------------------------------------


def test_exports_are_offered_with_the_same_query(supervisor: Persona) -> None:
    seed(supervisor.center)

    html = supervisor.client.get(tab_url("queues"), {**RANGE, "direction": "inbound"}).content.decode()

    links = re.findall(r'<a class="button" href="([^"]+)" download>Export (CSV|XLSX)</a>', html)
    query = "start=2025-03-14&end=2025-03-14&interval=hour&direction=inbound"
    assert [(unescape(url), kind) for url, kind in links] == [
        (f"/reports/queues/export.csv?{query}", "CSV"),
        (f"/reports/queues/export.xlsx?{query}", "XLSX"),
    ]
    export = supervisor.client.get(unescape(links[0][0]))
    assert export.status_code == 200
    assert export["Content-Disposition"].startswith('attachment; filename="queues-')
