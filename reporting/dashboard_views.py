"""The dashboard (`/`): today's tiles with their sparklines, each bot's load now, and the
configuration at a glance. Administrators and supervisors; an agent is sent to their profile.

Today is the center's calendar day (its time zone), read through the same report functions as
the Reports page with `interval=hour`, so a tile and the report for today agree to the call.
It lives in reporting, not in the core (voiso_byob): it reads the reports, and the core imports
no app.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone

from reporting.report_views import format_figure
from reporting.reports.filters import ReportFilters
from reporting.reports.queues import queue_report
from reporting.reports.virtual_agents import virtual_agent_report
from routing.route import active_calls_of
from virtual_agents.models import VirtualAgent
from voiso_byob.access import member_required, require_membership
from voiso_byob.models import AuditEvent, ContactCenter
from voiso_byob.replica import reads_from_replica

OK, BRAND, DANGER = "#2b8a3e", "#3b5bdb", "#c92a2a"


@dataclass(frozen=True)
class Tile:
    key: str  # the sparkline's chart key
    label: str
    value: str
    detail: str
    href: str
    source: str  # the json_script holding its series


@dataclass(frozen=True)
class Today:
    tiles: list[Tile]
    bots: dict[str, Any]  # chart data of the virtual-agent report (reports.js)
    queues: dict[str, Any]  # chart data of the queue report


def _spark(field: str, label: str, kind: str, color: str) -> dict[str, Any]:
    return {"kind": kind, "spark": True, "lines": [{"field": field, "label": label, "color": color}]}


def _chart_data(report: Mapping[str, Any], charts: dict[str, Any], *, now: datetime) -> dict[str, Any]:
    # The hours still to come are in the report (zero-filled) but not on the sparkline: a line
    # dropping to zero at the current hour would read as calls stopping.
    series = [point for point in report["series"] if point["bucket"] <= now]
    return {"tz": report["tz"], "interval": report["interval"], "series": series, "charts": charts}


def today(center: ContactCenter, *, now: datetime) -> Today:
    zone = ZoneInfo(center.timezone)
    day = now.astimezone(zone).date()
    filters = ReportFilters(center=center, start=day, end=day, tz=zone, interval="hour")
    bots = virtual_agent_report(filters)
    queues = queue_report(filters)
    b, q = bots["totals"], queues["totals"]
    query = "?" + urlencode({"start": day.isoformat(), "end": day.isoformat(), "interval": "hour"})
    bots_url = reverse("reports:report", args=["virtual-agents"]) + query
    queues_url = reverse("reports:report", args=["queues"]) + query
    tiles = [
        Tile(
            key="calls",
            label="Bot calls",
            value=format_figure(b["calls"], "count"),
            detail="reached a virtual agent",
            href=bots_url,
            source="today-bots",
        ),
        Tile(
            key="containment",
            label="Containment",
            value=format_figure(b["containment_rate"], "rate"),
            detail=f"{format_figure(b['contained'], 'count')} kept by the bot",
            href=bots_url,
            source="today-bots",
        ),
        Tile(
            key="handoff_success",
            label="Handoff success",
            value=format_figure(b["handoff_success_rate"], "rate"),
            detail=f"{format_figure(b['handoffs_completed'], 'count')} of "
            f"{format_figure(b['handoffs_requested'], 'count')} handoffs landed",
            href=bots_url,
            source="today-bots",
        ),
        Tile(
            key="abandoned",
            label="Abandoned in queue",
            value=format_figure(q["abandon_rate"], "rate"),
            detail=f"{format_figure(q['abandoned'], 'count')} of "
            f"{format_figure(q['offered'], 'count')} callers",
            href=queues_url,
            source="today-queues",
        ),
        Tile(
            key="service_level",
            label="Service level",
            value=format_figure(q["service_level"], "rate"),
            detail="answered within each queue's threshold",
            href=queues_url,
            source="today-queues",
        ),
    ]
    return Today(
        tiles=tiles,
        bots=_chart_data(
            bots,
            {
                "calls": _spark("calls", "Bot calls", "count", BRAND),
                "containment": _spark("containment_rate", "Containment", "rate", OK),
                "handoff_success": _spark("handoff_success_rate", "Handoff success", "rate", BRAND),
            },
            now=now,
        ),
        queues=_chart_data(
            queues,
            {
                "abandoned": _spark("abandon_rate", "Abandoned in queue", "rate", DANGER),
                "service_level": _spark("service_level", "Service level", "rate", OK),
            },
            now=now,
        ),
    )


# --- load ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class BotLoad:
    """A bot's calls now against its capacity: what routing compares before sending it a call."""

    agent: VirtualAgent
    active: int

    @property
    def capacity(self) -> int:
        return self.agent.max_concurrent_calls

    @property
    def is_full(self) -> bool:
        return self.active >= self.capacity

    # <meter> colours: green below `low`, amber up to `high`, red above (no inline style needed).
    @property
    def low(self) -> float:
        return self.capacity * 0.7

    @property
    def high(self) -> float:
        return self.capacity * 0.9


def bot_loads(center: ContactCenter) -> list[BotLoad]:
    """Every bot of the center with its active calls (routing's counters, one cache round trip)."""
    agents = list(VirtualAgent.objects.for_center(center).order_by("name"))
    active = active_calls_of(str(agent.pk) for agent in agents)
    return [BotLoad(agent=agent, active=active[str(agent.pk)]) for agent in agents]


# --- the page --------------------------------------------------------------------------------


@member_required
@reads_from_replica
def dashboard(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, read=False)
    if not membership.can_read_configuration:
        return redirect("profile")
    center = membership.contact_center
    counts = {
        "members": center.memberships.count(),
        "queues": center.queues.count(),
        "extensions": center.extensions.count(),
        "api_keys": center.api_keys.filter(revoked_at__isnull=True).count(),
    }
    recent = AuditEvent.objects.for_center(center)[:8]
    with timezone.override(ZoneInfo(center.timezone)):
        return render(
            request,
            "reporting/dashboard.html",
            {
                "center": center,
                "today": today(center, now=timezone.now()),
                "loads": bot_loads(center),
                "counts": counts,
                "recent": recent,
            },
        )
