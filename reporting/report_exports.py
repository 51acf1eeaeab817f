"""Report exports: /reports/<tab>/export.csv and .xlsx, with the Reports page's query string.

The same form (reporting.ReportFilterForm) and the same report function as the page
and the API, so an export's figures are the report's to the row. Who may export: those who
may read reports (administrators and supervisors, voiso_byob.access); agents get 403. An
invalid query string (another center's ids among them: the form only knows this center's) is
a 400 with the form's errors as text, never a file.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.http import Http404, HttpRequest, HttpResponse
from django.urls import path
from django.views.decorators.http import require_GET

from reporting.exports.formats import csv_chunks, csv_response, xlsx_response
from reporting.exports.reports import csv_rows, report_tables, xlsx_sheets
from reporting.reports.campaigns import campaign_report
from reporting.reports.filters import ReportFilterForm
from reporting.reports.queues import queue_report
from reporting.reports.virtual_agents import virtual_agent_report
from voiso_byob.access import member_required, require_membership
from voiso_byob.replica import reads_from_replica

# slug -> (title, report); the virtual agents report also takes the form's context header.
REPORTS: dict[str, tuple[str, Callable[[ReportFilterForm], dict[str, Any]]]] = {
    "virtual-agents": (
        "Virtual agents",
        lambda form: virtual_agent_report(form.filters(), context_key=form.context_header),
    ),
    "queues": ("Queues", lambda form: queue_report(form.filters())),
    "campaigns": ("Campaigns", lambda form: campaign_report(form.filters())),
}
FORMATS = ("csv", "xlsx")


@member_required
@require_GET
@reads_from_replica
def report_export(request: HttpRequest, tab: str, fmt: str) -> HttpResponse:
    if tab not in REPORTS or fmt not in FORMATS:
        raise Http404("No such export.")
    center = require_membership(request).contact_center
    form = ReportFilterForm(request.GET, center=center)
    if not form.is_valid():
        lines = [
            f"{field}: {error['message']}"
            for field, errors in form.errors.get_json_data().items()
            for error in errors
        ]
        return HttpResponse("\n".join(lines), status=400, content_type="text/plain; charset=utf-8")
    title, build = REPORTS[tab]
    report = build(form)
    tables = report_tables(report)
    filename = f"{tab}-{center.slug}-{report['start']}-{report['end']}.{fmt}"
    if fmt == "csv":
        header, rows = csv_rows(tables)
        return csv_response(csv_chunks(header, rows), filename)
    return xlsx_response(xlsx_sheets(tables, title, report["interval"], report), filename)


# Mounted under /reports/ (namespace "reports"): reverse("reports:export", args=[tab, fmt]).
urlpatterns = [path("<slug:tab>/export.<slug:fmt>", report_export, name="export")]
