"""The calls CSV export as it was before bench/exports.py (served at /bench/calls-export-models.csv).

A model instance per row (`select_related` for the bot, the queue and the agent), formatted by
the same cells as the app's export and streamed one line per chunk: bench/exports.py serves it
beside `/calls/export.csv` so one run shows both.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from reporting.exports.calls import CALL_COLUMNS
from reporting.exports.formats import csv_safe
from reporting.forms import CallFilterForm
from reporting.models import CallRecord
from reporting.queries import filtered_calls, in_list_order
from voiso_byob.access import require_membership


class _Echo:
    def write(self, value: str) -> str:
        return value


def local_iso(moment: datetime | None, zone: ZoneInfo) -> str:
    return moment.astimezone(zone).isoformat() if moment else ""


def seconds_text(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _row(record: CallRecord, zone: ZoneInfo) -> list[str]:
    answered = record.answered_by
    cells: list[object] = [
        record.call_id,
        local_iso(record.started_at, zone),
        record.direction,
        record.from_number,
        record.to_number,
        record.virtual_agent.name if record.virtual_agent else "",
        record.bot_outcome,
        record.handoff_count,
        record.queue.name if record.queue else "",
        answered.user.display_name if answered else "",
        record.answered_extension,
        seconds_text(record.total_seconds),
        seconds_text(record.bot_seconds),
        seconds_text(record.queue_wait_seconds),
        seconds_text(record.human_seconds),
        record.end_reason,
        record.hangup_by,
        record.status,
        record.recording_url,
    ]
    return [csv_safe(cell) for cell in cells]


def _lines(records: Iterable[CallRecord], zone: ZoneInfo) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(CALL_COLUMNS)
    for record in records:
        yield writer.writerow(_row(record, zone))


def calls_export_models(request: HttpRequest) -> HttpResponse:
    center = require_membership(request).contact_center
    form = CallFilterForm(request.GET, center=center)
    if not form.is_valid():
        return HttpResponse(status=400)
    records = in_list_order(
        filtered_calls(center, form.filters()).select_related("virtual_agent", "queue", "answered_by__user")
    )
    return StreamingHttpResponse(_lines(records, ZoneInfo(center.timezone)), content_type="text/csv")
