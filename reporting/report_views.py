"""The Reports page: one tab per report (virtual agents, queues, campaigns), its filters in the URL.

Each tab renders one report dict (reporting.reports: `totals`, `rows`, `series`) twice: as
trend charts (static/js/reports.js draws the dict's own `series`, passed through json_script)
and as a table of its `rows` and `totals`, so the two can never disagree. Every count in the
table links to the Calls page filtered to the calls behind it (reporting.reports' drill-down
query: the same predicate that counted them), so the list's count equals the figure.

Who reads reports: administrators and supervisors, as for the Calls page; agents get 403.
Filter ids of another center's bots, queues or campaigns are refused by the form (400 with
its errors), never reported on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from campaigns.models import Campaign
from reporting.models import TargetType
from reporting.reports.campaigns import campaign_report
from reporting.reports.drilldown import EXACT, calls_query, row_has_list
from reporting.reports.filters import INTERVAL_CHOICES, ReportFilterForm
from reporting.reports.queues import queue_report
from reporting.reports.virtual_agents import virtual_agent_report
from reporting.templatetags.calls import duration
from voiso_byob.access import member_required, require_membership
from voiso_byob.replica import reads_from_replica

Kind = Literal["count", "rate", "seconds", "number"]

OK, BRAND, DANGER, ORANGE, TEAL, VIOLET = "#2b8a3e", "#3b5bdb", "#c92a2a", "#e67700", "#1098ad", "#7048e8"


@dataclass(frozen=True)
class Figure:
    """One column of a tab's table: a figure of the report's rows and totals."""

    key: str
    label: str
    kind: Kind = "count"
    rate: str = ""  # the rate shown beside a count ("contained" → "containment_rate")


@dataclass(frozen=True)
class Line:
    field: str
    label: str
    color: str


@dataclass(frozen=True)
class Chart:
    key: str
    title: str
    kind: Kind
    lines: tuple[Line, ...]


@dataclass(frozen=True)
class Tab:
    slug: str
    title: str
    row_label: str  # the table's first column: what a row is
    report_key: str  # the report's name in reporting.reports.drilldown
    row_key: str  # the row's dimension in the report's rows ("virtual_agent", "queue", "campaign")
    report: Callable[[ReportFilterForm], dict[str, Any]]  # of a valid form
    figures: tuple[Figure, ...]
    charts: tuple[Chart, ...]
    intro: str


TABS: dict[str, Tab] = {
    tab.slug: tab
    for tab in (
        Tab(
            slug="virtual-agents",
            title="Virtual agents",
            row_label="Virtual agent",
            report_key="virtual_agents",
            row_key="virtual_agent",
            report=lambda form: virtual_agent_report(form.filters(), context_key=form.context_header),
            figures=(
                Figure("calls", "Calls"),
                Figure("contained", "Contained", rate="containment_rate"),
                Figure("handed_off", "Handed off", rate="handoff_rate"),
                Figure("abandoned_in_bot", "Abandoned in bot", rate="abandon_rate"),
                Figure("handoffs_requested", "Handoffs requested"),
                Figure("handoffs_completed", "Handoffs completed"),
                Figure("handoff_success_rate", "Handoff success", kind="rate"),
                Figure("bot_time_p50", "Bot time p50", kind="seconds"),
                Figure("bot_time_p90", "Bot time p90", kind="seconds"),
                Figure("time_to_handoff_p50", "Time to handoff p50", kind="seconds"),
            ),
            charts=(
                Chart(
                    "outcomes",
                    "Calls by outcome",
                    "count",
                    (
                        Line("contained", "Contained", OK),
                        Line("handed_off", "Handed off", BRAND),
                        Line("abandoned_in_bot", "Abandoned in bot", DANGER),
                    ),
                ),
                Chart(
                    "rates",
                    "Containment and handoff success",
                    "rate",
                    (
                        Line("containment_rate", "Containment", OK),
                        Line("handoff_success_rate", "Handoff success", BRAND),
                    ),
                ),
            ),
            intro="Calls that reached a bot, by their start: contained + handed off + abandoned in "
            "bot = calls. Handoff success: handoffs whose final NOTIFY was 2xx ÷ handoffs requested.",
        ),
        Tab(
            slug="queues",
            title="Queues",
            row_label="Queue",
            report_key="queues",
            row_key="queue",
            report=lambda form: queue_report(form.filters()),
            figures=(
                Figure("offered", "Offered"),
                Figure("answered", "Answered", rate="answer_rate"),
                Figure("abandoned", "Abandoned", rate="abandon_rate"),
                Figure("waiting", "Waiting now"),
                Figure("service_level", "Service level", kind="rate"),
                Figure("wait_p50", "Wait p50", kind="seconds"),
                Figure("wait_p90", "Wait p90", kind="seconds"),
                Figure("handle_time_p50", "Handle time p50", kind="seconds"),
            ),
            charts=(
                Chart(
                    "volume",
                    "Offered, answered, abandoned",
                    "count",
                    (
                        Line("offered", "Offered", BRAND),
                        Line("answered", "Answered", OK),
                        Line("abandoned", "Abandoned", DANGER),
                    ),
                ),
                Chart(
                    "service",
                    "Service level and abandon rate",
                    "rate",
                    (Line("service_level", "Service level", OK), Line("abandon_rate", "Abandoned", DANGER)),
                ),
            ),
            intro="Callers who entered a queue (handed off by a bot or routed by a flow), by the "
            "call's start. Service level: answered within the queue's threshold ÷ offered.",
        ),
        Tab(
            slug="campaigns",
            title="Campaigns",
            row_label="Campaign",
            report_key="campaigns",
            row_key="campaign",
            report=lambda form: campaign_report(form.filters()),
            figures=(
                Figure("leads", "Leads"),
                Figure("attempts", "Attempts"),
                Figure("connects", "Connects", rate="connect_rate"),
                Figure("completed", "Bot answered"),
                Figure("busy", "Busy"),
                Figure("no_answer", "No answer"),
                Figure("machine", "Machine"),
                Figure("failed", "Failed"),
                Figure("handoffs", "Handoffs"),
                Figure("attempts_per_lead", "Attempts per lead", kind="number"),
                Figure("drop_rate", "Drop rate", kind="rate"),
            ),
            charts=(
                Chart(
                    "dialling",
                    "Attempts, connects, handoffs",
                    "count",
                    (
                        Line("attempts", "Attempts", BRAND),
                        Line("connects", "Connects", OK),
                        Line("handoffs", "Handoffs", VIOLET),
                    ),
                ),
                Chart("drops", "Drop rate", "rate", (Line("drop_rate", "Drop rate", DANGER),)),
            ),
            intro="The dialer's calls by their start. Connects: calls a person answered (a bot took "
            "them, or the switch dropped them). Drop rate: answered calls that met no bot within 2 s ÷ "
            "connects.",
        ),
    )
}


# --- figures as the table shows them ----------------------------------------------------------


def format_figure(value: Any, kind: Kind) -> str:
    """A figure as text: rates as percentages, seconds with a unit, null as an em dash."""
    if value is None:
        return "—"
    if kind == "rate":
        return f"{value * 100:.1f} %"
    if kind == "seconds":
        return duration(value)
    if kind == "number":
        return f"{value:.2f}"
    return f"{value:,}"


@dataclass(frozen=True)
class Cell:
    figure: str
    text: str
    href: str = ""
    rate: str = ""  # the count's share, e.g. "42.0 %"


@dataclass(frozen=True)
class TableRow:
    label: str
    cells: list[Cell]
    is_total: bool = False
    detail: str = ""


@dataclass
class ReportTable:
    figures: Sequence[Figure]
    rows: list[TableRow] = field(default_factory=list)
    total: TableRow | None = None


def detail_of(row: Mapping[str, Any]) -> str:
    """What the table says under a row's name: a queue's extension and service-level threshold."""
    if row.get("service_level_seconds") is not None:
        extension = f"ext. {row['extension']} · " if row.get("extension") else ""
        return f"{extension}service level at {row['service_level_seconds']} s"
    return ""


def table_of(
    tab: Tab,
    report: Mapping[str, Any],
    *,
    calls_url: Callable[[str, Mapping[str, Any] | None], str | None],
) -> ReportTable:
    """The report's rows and totals as table cells, each drillable count with its Calls link."""

    def row_of(values: Mapping[str, Any], *, label: str, row: Mapping[str, Any] | None) -> TableRow:
        cells = []
        for figure in tab.figures:
            value = values.get(figure.key)
            href = calls_url(figure.key, row) if value else None
            cells.append(
                Cell(
                    figure=figure.key,
                    text=format_figure(value, figure.kind),
                    href=href or "",
                    rate=format_figure(values.get(figure.rate), "rate") if figure.rate else "",
                )
            )
        return TableRow(label=label, cells=cells, is_total=row is None, detail=detail_of(row or {}))

    table = ReportTable(figures=tab.figures)
    for row in report["rows"]:
        table.rows.append(row_of(row, label=row.get("name") or "—", row=row))
    table.total = row_of(report["totals"], label="All", row=None)
    return table


@dataclass(frozen=True)
class Breakdown:
    """A small table under the main one: the handoffs of the whole cohort split one way."""

    title: str
    headers: tuple[str, ...]
    rows: list[tuple[str, ...]]
    empty: str


def handoff_breakdowns(totals: Mapping[str, Any]) -> list[Breakdown]:
    """The virtual-agent report's handoffs by target, failures by reason and SIP status, and by
    the context value the bot passed (X-Reason)."""
    labels = {value or "unresolved": label for value, label in TargetType.choices}
    by_target = totals.get("handoffs_by_target") or {}
    context = totals.get("handoffs_by_context") or {"key": "", "values": []}
    return [
        Breakdown(
            title="Handoffs by target",
            headers=("Target", "Handoffs"),
            rows=[(labels.get(name, name), format_figure(n, "count")) for name, n in by_target.items() if n],
            empty="No handoffs in this range.",
        ),
        Breakdown(
            title="Failed handoffs",
            headers=("Reason", "SIP status", "Handoffs"),
            rows=[
                (f["reason"] or "—", str(f["sip_status"] or "—"), format_figure(f["count"], "count"))
                for f in totals.get("failures") or []
            ],
            empty="No handoff failed in this range.",
        ),
        Breakdown(
            title=f"Handoffs by {context['key']}",
            headers=(context["key"], "Handoffs"),
            rows=[
                (v["value"] or "(not passed)", format_figure(v["count"], "count")) for v in context["values"]
            ],
            empty="No handoffs in this range.",
        ),
    ]


def chart_data(tab: Tab, report: Mapping[str, Any]) -> dict[str, Any]:
    """What reports.js draws: the report's series as they are, and which figures each chart plots."""
    return {
        "tz": report["tz"],
        "interval": report["interval"],
        "series": report["series"],
        "charts": {
            chart.key: {
                "kind": chart.kind,
                "lines": [{"field": ln.field, "label": ln.label, "color": ln.color} for ln in chart.lines],
            }
            for chart in tab.charts
        },
    }


# --- the page ---------------------------------------------------------------------------------


def report_context(tab: Tab, form: ReportFilterForm) -> dict[str, Any]:
    filters = form.filters()
    report = tab.report(form)
    calls = reverse("reporting:call_list")

    def calls_url(figure: str, row: Mapping[str, Any] | None) -> str | None:
        # Only the counts whose list holds exactly as many calls as the figure link there (a
        # handoff count counts REFERs, a call may have several); a deleted bot's or queue's row
        # has no list.
        if figure not in EXACT[tab.report_key]:
            return None
        if row is not None and not row_has_list(tab.report_key, dict(row)):
            return None
        key = None if row is None else row[tab.row_key]
        return f"{calls}?{calls_query(filters, tab.report_key, figure, row=key)}"

    return {
        "report": report,
        "table": table_of(tab, report, calls_url=calls_url),
        "breakdowns": handoff_breakdowns(report["totals"]) if tab.slug == "virtual-agents" else [],
        "chart_data": chart_data(tab, report),
        # "none" groups nothing: the table alone.
        "has_series": report["interval"] != "none" and bool(report["series"]),
    }


@member_required
@require_GET
def reports_index(request: HttpRequest) -> HttpResponse:
    """/reports/ opens the first tab, keeping a shared link's filters."""
    require_membership(request)
    url = reverse("reports:report", args=["virtual-agents"])
    query = request.META.get("QUERY_STRING", "")
    return redirect(f"{url}?{query}" if query else url)


SHOWN_FILTERS = ("start", "end", "interval", "direction", "context_key")


def shown_filters(form: ReportFilterForm) -> dict[str, str]:
    """What the filter inputs show: the range and grouping in effect (defaults filled in), or
    what was typed when the form refused it."""
    if form.is_valid():
        data = form.cleaned_data
        return {
            "start": data["start"].isoformat(),
            "end": data["end"].isoformat(),
            "interval": data["interval"],
            "direction": data.get("direction") or "",
            "context_key": data["context_key"],
        }
    return {name: str(form.data.get(name, "")) for name in SHOWN_FILTERS}


def export_links(tab: Tab, query: str) -> list[dict[str, str]]:
    """The tab's CSV and XLSX exports (same query string, same report), once exports are served."""
    links = []
    for fmt, label in (("csv", "Export CSV"), ("xlsx", "Export XLSX")):
        try:
            url = reverse("reports:export", args=[tab.slug, fmt])
        except NoReverseMatch:
            continue
        links.append({"label": label, "url": f"{url}?{query}" if query else url})
    return links


@member_required
@require_GET
@reads_from_replica
def report_page(request: HttpRequest, tab: str) -> HttpResponse:
    membership = require_membership(request)
    center = membership.contact_center
    current = TABS[tab]
    form = ReportFilterForm(request.GET, center=center)
    query = request.GET.urlencode()
    is_valid = form.is_valid()
    shown = shown_filters(form)
    context: dict[str, Any] = {
        "center": center,
        "tab": current,
        "tabs": TABS.values(),
        "form": form,
        "query": query,
        "shown": shown,
        "interval_choices": INTERVAL_CHOICES,
        "interval_label": dict(INTERVAL_CHOICES).get(shown["interval"], "").lower(),
        "direction_choices": form.fields["direction"].choices,
        "exports": export_links(current, query),
        "has_campaigns": current.slug != "campaigns" or Campaign.objects.for_center(center).exists(),
    }
    if is_valid and context["has_campaigns"]:
        context.update(report_context(current, form))
    template = "reporting/reports.html"
    if request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request:
        template += "#report"
    with timezone.override(ZoneInfo(center.timezone)):
        response = render(request, template, context, status=200 if is_valid else 400)
    # One URL answers with the page or its report partial (htmx): caches must tell them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response
