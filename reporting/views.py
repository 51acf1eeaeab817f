"""The calls browser: the list with its filters, the CSV export, and one call's page.

Who reads calls: administrators and supervisors of the contact center, as for every report
(design.md: supervisors "read reports and call records, listen to recordings"). Agents get
403: they have no portal pages beyond their profile, and call records carry other agents'
calls, callers' numbers, recordings and transcripts. Another center's call is a 404.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_GET

from reporting.exports.calls import CALL_COLUMNS, SECONDS_COLUMNS, call_csv_chunks, call_rows
from reporting.exports.formats import Sheet, csv_response, xlsx_response
from reporting.forms import CallFilterForm
from reporting.models import CallEvent, CallRecord, CallRecordQuerySet, ProviderCallReport
from reporting.queries import PAGE_SIZE, CallFilters, filtered_calls, keyset_page
from voiso_byob.access import member_required, require_membership
from voiso_byob.models import ContactCenter
from voiso_byob.replica import reads_from_replica


def get_call_for_user(request: HttpRequest, call_id: str) -> CallRecord:
    membership = require_membership(request)
    return get_object_or_404(
        CallRecord.objects.for_center(membership.contact_center).with_details(), call_id=call_id
    )


def _listed(records: CallRecordQuerySet) -> CallRecordQuerySet:
    # The columns name the bot, the queue and the answering agent: one join each, no N+1.
    return records.select_related("virtual_agent", "queue", "answered_by__user")


@member_required
@require_GET
def call_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    center = membership.contact_center
    form = CallFilterForm(request.GET, center=center)
    page = None
    if form.is_valid():
        page = keyset_page(_listed(filtered_calls(center, form.filters())), after=form.cursor, size=PAGE_SIZE)
    template = "reporting/calls.html"
    if request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request:
        template += "#list"
    zone = form.zone if page is not None else ZoneInfo(center.timezone)
    with timezone.override(zone):
        response = render(
            request,
            template,
            {
                "form": form,
                "page": page,
                "center": center,
                "zone": zone.key,
                "is_paged": bool(request.GET.get("after")),
            },
            status=200 if page is not None else 400,
        )
    # One URL answers with the page or its list partial (htmx): caches must tell them apart.
    patch_vary_headers(response, ["HX-Request"])
    return response


# --- exports ----------------------------------------------------------------------------------


def _export_filename(center: ContactCenter, filters: CallFilters, extension: str) -> str:
    """calls-<center>-<first day>-<last day>: the filter's dates ("all" and today when open)."""
    today = timezone.now().astimezone(ZoneInfo(center.timezone)).date()
    first = filters.date_from.isoformat() if filters.date_from else "all"
    last = (filters.date_to or today).isoformat()
    return f"calls-{center.slug}-{first}-{last}.{extension}"


def _exported(request: HttpRequest, extension: str) -> HttpResponse:
    membership = require_membership(request)
    center = membership.contact_center
    form = CallFilterForm(request.GET, center=center)
    if not form.is_valid():
        return render(
            request, "reporting/calls.html", {"form": form, "page": None, "center": center}, status=400
        )
    filters = form.filters()
    records = filtered_calls(center, filters)
    # The database is chosen now, inside the view (and whatever routes its reads), not when the
    # streamed rows are read after the view has returned.
    records = records.using(records.db)
    zone = form.zone  # the list's zone: a report's drill-down may name another
    filename = _export_filename(center, filters, extension)
    if extension == "csv":
        return csv_response(call_csv_chunks(records, zone), filename)
    number_format = dict.fromkeys(SECONDS_COLUMNS, "0.0")
    return xlsx_response([Sheet("Calls", CALL_COLUMNS, call_rows(records, zone), number_format)], filename)


@member_required
@require_GET
@reads_from_replica
def call_export(request: HttpRequest) -> HttpResponse:
    """The list's filtered calls as CSV, streamed: rows are read in chunks as they are sent."""
    return _exported(request, "csv")


@member_required
@require_GET
@reads_from_replica
def call_export_xlsx(request: HttpRequest) -> HttpResponse:
    """The list's filtered calls as XLSX, written in constant memory and then sent (exports.formats)."""
    return _exported(request, "xlsx")


# --- one call ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TimelineEntry:
    event: CallEvent
    seconds: float | None  # since the call started (or its first event)
    data: str  # pretty JSON


@dataclass(frozen=True)
class TranscriptLine:
    role: str
    text: str
    seconds: float | None


def timeline(events: list[CallEvent], start: datetime | None) -> list[TimelineEntry]:
    origin = start or (events[0].occurred_at if events else None)
    return [
        TimelineEntry(
            event=event,
            seconds=(event.occurred_at - origin).total_seconds() if origin else None,
            data=json.dumps(event.data, indent=2, ensure_ascii=False) if event.data else "",
        )
        for event in events
    ]


def transcript_lines(transcript: Any) -> list[TranscriptLine]:
    """Providers' transcripts as lines; anything malformed is shown as text, never an error."""
    if not isinstance(transcript, list):
        return []
    lines = []
    for turn in transcript:
        if isinstance(turn, dict):
            seconds = turn.get("seconds")
            lines.append(
                TranscriptLine(
                    role=str(turn.get("role") or ""),
                    text=str(turn.get("text") or ""),
                    seconds=float(seconds) if isinstance(seconds, int | float) else None,
                )
            )
        else:
            lines.append(TranscriptLine(role="", text=str(turn), seconds=None))
    return lines


def recording_of(record: CallRecord, reports: list[ProviderCallReport]) -> str:
    """The SIP layer's recording, else the bot provider's; only http(s) reaches the player."""
    candidates = [record.recording_url, *(report.recording_url for report in reports)]
    return next((url for url in candidates if url and url.startswith(("https://", "http://"))), "")


def call_context(center: ContactCenter, record: CallRecord) -> dict[str, Any]:
    events = list(CallEvent.objects.for_call(center, record.call_id))
    reports = list(record.provider_reports.select_related("integration").order_by("-received_at"))
    return {
        "center": center,
        "record": record,
        "handoffs": list(record.handoffs.all()),
        "timeline": timeline(events, record.started_at),
        "reports": [(report, transcript_lines(report.transcript)) for report in reports],
        "recording_url": recording_of(record, reports),
    }


@member_required
@require_GET
def call_detail(request: HttpRequest, call_id: str) -> HttpResponse:
    record = get_call_for_user(request, call_id)
    center = require_membership(request).contact_center  # cached on the request by the helper
    with timezone.override(ZoneInfo(center.timezone)):
        return render(request, "reporting/call_detail.html", call_context(center, record))
