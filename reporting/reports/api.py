"""`GET /api/v1/reports/virtual-agents/`, `/reports/queues/`, `/reports/campaigns/`.

Readers as for every read endpoint (voiso_byob.authentication.ConfigurationAccess): administrators'
and supervisors' sessions, API keys with scope `read` or `admin`; agents and telephony keys get 403.
The query string is parsed by the pages' own form (reporting.reports.filters.ReportFilterForm):
refusals are 400 with field errors, and an id that is not one of the center's bots, queues or
campaigns is refused like an unknown one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from drf_spectacular.utils import extend_schema
from rest_framework.decorators import api_view, renderer_classes
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.serializers import Serializer

from reporting.calls_api import form_validation_error
from reporting.reports.campaigns import campaign_report
from reporting.reports.filters import ReportFilterForm
from reporting.reports.queues import queue_report
from reporting.reports.serializers import (
    CampaignReportSerializer,
    QueueReportSerializer,
    ReportQuerySerializer,
    VirtualAgentQuerySerializer,
    VirtualAgentReportSerializer,
    plain,
)
from reporting.reports.virtual_agents import virtual_agent_report
from voiso_byob.authentication import api_access
from voiso_byob.replica import reads_from_replica


class ReportJSONRenderer(JSONRenderer):
    """JSON by orjson: a month of 15-minute points is ~1.4 MB, which the standard library's encoder
    took 40-50 ms to write (a sixth of the request; bench/reports.py at 10 M records), orjson ~5.
    The answer is plain dicts, lists, strings and numbers (serializers.plain) by then. Errors keep
    DRF's renderer: they are small."""

    def render(
        self, data: Any, accepted_media_type: str | None = None, renderer_context: Any = None
    ) -> bytes:
        response = (renderer_context or {}).get("response")
        if data is None or (response is not None and response.exception):
            return super().render(data, accepted_media_type, renderer_context)
        return orjson.dumps(data)


def _answer(
    request: Request, build: Callable[[ReportFilterForm], dict[str, Any]], out: type[Serializer]
) -> Response:
    access = api_access(request)
    assert access is not None  # ConfigurationAccess ran first
    form = ReportFilterForm(request.query_params, center=access.center)
    if not form.is_valid():
        raise form_validation_error(form)
    return Response(plain(out)(build(form)))


@extend_schema(
    summary="Virtual agents report: containment, handoffs, bot time",
    parameters=[VirtualAgentQuerySerializer],
    responses=VirtualAgentReportSerializer,
    tags=["reports"],
)
@api_view(["GET"])
@renderer_classes([ReportJSONRenderer])
@reads_from_replica
def virtual_agents_report(request: Request) -> Response:
    """Calls by their start in the range; contained + handed_off + abandoned_in_bot = calls."""
    return _answer(
        request,
        lambda form: virtual_agent_report(form.filters(), context_key=form.context_header),
        VirtualAgentReportSerializer,
    )


@extend_schema(
    summary="Queues report: offered, answered, abandoned, service level, waits",
    parameters=[ReportQuerySerializer],
    responses=QueueReportSerializer,
    tags=["reports"],
)
@api_view(["GET"])
@renderer_classes([ReportJSONRenderer])
@reads_from_replica
def queues_report(request: Request) -> Response:
    """Calls that entered a queue (handed off by a bot or routed by a flow), by their start."""
    return _answer(request, lambda form: queue_report(form.filters()), QueueReportSerializer)


@extend_schema(
    summary="Campaigns report: attempts, connects, outcomes, drop rate",
    parameters=[ReportQuerySerializer],
    responses=CampaignReportSerializer,
    tags=["reports"],
)
@api_view(["GET"])
@renderer_classes([ReportJSONRenderer])
@reads_from_replica
def campaigns_report(request: Request) -> Response:
    """The dialer's calls, by their start."""
    return _answer(request, lambda form: campaign_report(form.filters()), CampaignReportSerializer)
