"""The Live page: bot calls in progress, handoffs as they happen, the last 15 minutes in numbers.

The page renders the current state on the server (it reads right without JavaScript), then
static/reporting/live.js keeps it current from /ws/live/ and, after every (re)connect, from
`live_events` (what was stored while the socket was not there).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django import forms
from django.db.models import Prefetch, Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.views.decorators.http import require_GET

from reporting.feed import call_summary, handoff_summary, report_message
from reporting.live import CATCH_UP_MARGIN, agent_summary, catch_up
from reporting.models import BotOutcome, CallRecord, CallStatus, Handoff, ProviderCallReport
from virtual_agents.models import VirtualAgent
from voiso_byob.access import current_membership, member_required, require_membership
from voiso_byob.api_errors import error_body
from voiso_byob.models import ContactCenter

WINDOW = timedelta(minutes=15)
# A call whose call.ended never arrived would otherwise stay "in progress" on this page forever.
STALE_AFTER = timedelta(hours=6)
HANDOFF_ROWS = 100


class LiveFilterForm(forms.Form):
    agent = forms.ModelChoiceField(
        queryset=VirtualAgent.objects.none(),
        required=False,
        empty_label="All virtual agents",
        label="Virtual agent",
        to_field_name="pk",
    )

    def __init__(self, *args: Any, center: ContactCenter, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["agent"].queryset = (  # type: ignore[attr-defined]
            VirtualAgent.objects.for_center(center).select_related("extension").order_by("name")
        )


@dataclass
class LiveState:
    server_time: datetime
    counters: dict[str, int]
    groups: list[tuple[VirtualAgent, list[CallRecord]]]  # in-progress bot calls by virtual agent
    handoffs: list[Handoff]
    # Every virtual agent's state as feed messages, for live.js: it filters and recounts in the
    # browser as events arrive, so it needs all of it even when the page opened filtered.
    messages: list[dict[str, Any]]


def live_state(center: ContactCenter, *, agent: VirtualAgent | None, now: datetime) -> LiveState:
    """What the page shows (filtered to `agent` when given) and what live.js starts from (all)."""
    since = now - WINDOW
    agents = list(VirtualAgent.objects.for_center(center).select_related("extension").order_by("name"))
    agent_ids = [a.pk for a in agents]
    records = CallRecord.objects.for_center(center).select_related("virtual_agent__extension")
    # The bot's summaries (matched provider reports), shown under the call and its handoffs.
    summaries = (
        ProviderCallReport.objects.for_center(center).exclude(summary="").order_by("received_at", "id")
    )
    # The calls each bot is on now: a call handed off stays in progress with a person after the
    # bot left it at the final NOTIFY (the fold clears `active_virtual_agent` then).
    in_progress = list(
        records.filter(
            active_virtual_agent__in=agent_ids,
            status=CallStatus.IN_PROGRESS,
            last_event_at__gte=now - STALE_AFTER,
        )
        .prefetch_related(Prefetch("provider_reports", queryset=summaries, to_attr="summary_reports"))
        .order_by("started_at", "id")
    )
    # `virtual_agent IN (...)`: the (contact_center, virtual_agent, status) index serves it.
    cohort = list(
        records.filter(virtual_agent__in=agent_ids).filter(
            Q(started_at__gte=since) | Q(started_at__isnull=True, bot_connected_at__gte=since)
        )
    )
    # Handoffs end within seconds of their REFER; an hour back finds every one that ended in the window.
    recent_handoffs = list(
        Handoff.objects.for_center(center)
        .filter(requested_at__gte=since - timedelta(hours=1))
        .select_related("call_record__virtual_agent__extension", "virtual_agent__extension")
        .prefetch_related(
            Prefetch("call_record__provider_reports", queryset=summaries, to_attr="summary_reports")
        )
        .order_by("-requested_at", "-id")
    )

    def is_shown(agent_id: Any) -> bool:
        return agent is None or agent_id == agent.pk

    shown_cohort = [r for r in cohort if is_shown(r.virtual_agent_id)]
    shown_handoffs = [
        h for h in recent_handoffs if is_shown(h.virtual_agent_id or h.call_record.virtual_agent_id)
    ]
    counters = {
        "reached": len(shown_cohort),
        "handed_off": sum(r.bot_outcome == BotOutcome.HANDED_OFF for r in shown_cohort),
        "contained": sum(r.bot_outcome == BotOutcome.CONTAINED for r in shown_cohort),
        "abandoned": sum(r.bot_outcome == BotOutcome.ABANDONED_IN_BOT for r in shown_cohort),
        "completed": sum(bool(h.completed_at and h.completed_at >= since) for h in shown_handoffs),
        "failed": sum(bool(h.failed_at and h.failed_at >= since) for h in shown_handoffs),
    }
    by_agent: dict[Any, list[CallRecord]] = {}
    for record in in_progress:
        if is_shown(record.active_virtual_agent_id):
            by_agent.setdefault(record.active_virtual_agent_id, []).append(record)
    groups = [(a, by_agent[a.pk]) for a in agents if a.pk in by_agent]
    listed = [h for h in shown_handoffs if h.requested_at and h.requested_at >= since][:HANDOFF_ROWS]

    calls = {record.pk: record for record in [*cohort, *in_progress]}
    messages = [
        {"call": call_summary(r.call_id, r), "virtual_agent": agent_summary(r.virtual_agent)}  # type: ignore[arg-type]
        for r in calls.values()
    ]
    messages += [
        {
            "call": call_summary(h.call_record.call_id, h.call_record),  # type: ignore[arg-type]
            "virtual_agent": agent_summary(h.virtual_agent or h.call_record.virtual_agent),
            "handoff": handoff_summary(h),  # type: ignore[arg-type]
        }
        for h in recent_handoffs
    ]
    with_summaries = {r.pk: r for r in [*in_progress, *(h.call_record for h in recent_handoffs)]}
    messages += [
        report_message(report, record, agent_summary(record.virtual_agent))
        for record in with_summaries.values()
        for report in record.summary_reports  # type: ignore[attr-defined]
    ]
    return LiveState(now, counters, groups, listed, messages)


@member_required
@require_GET
def live(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    center = membership.contact_center
    now = timezone.now()  # before reading: the page catches up from here
    form = LiveFilterForm(request.GET or None, center=center)
    is_valid = form.is_valid()
    agent = form.cleaned_data.get("agent") if is_valid else None
    state = live_state(center, agent=agent, now=now)
    return render(
        request,
        "reporting/live.html",
        {
            "center": center,
            "form": form,
            "agent": agent,
            "state": state,
            "window_minutes": int(WINDOW.total_seconds() // 60),
            "client_state": {
                "server_time": now.isoformat(),
                "window_seconds": int(WINDOW.total_seconds()),
                "agent": str(agent.pk) if agent else "",
                "messages": state.messages,
            },
        },
        status=200 if is_valid or not form.is_bound else 400,
    )


def _json_error(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    return JsonResponse(error_body(code, message, **extra), status=status)


@require_GET
def live_events(request: HttpRequest) -> JsonResponse:
    """GET ?since=<ISO 8601 with offset>: the feed messages stored since then (see catch_up)."""
    if not request.user.is_authenticated:
        return _json_error(401, "not_authenticated", "Log in to follow the live feed.")
    membership = current_membership(request)
    if membership is None or not membership.can_read_configuration:
        return _json_error(403, "permission_denied", "Your role has no access to the live feed.")
    raw = request.GET.get("since", "")
    try:
        since = parse_datetime(raw)
    except ValueError:
        since = None
    now = timezone.now()
    if since is None or timezone.is_naive(since):
        return _json_error(
            400, "invalid", "Invalid catch-up request.", fields={"since": ["A date-time with a UTC offset."]}
        )
    # Older than a window plus the margin: the page should reload its state rather than replay.
    if since < now - WINDOW - CATCH_UP_MARGIN or since > now + CATCH_UP_MARGIN:
        return _json_error(
            400,
            "out_of_range",
            "Catch-up covers the last 15 minutes; reload the page.",
            fields={"since": ["Outside the last 15 minutes."]},
        )
    result = catch_up(membership.contact_center, since=since)
    return JsonResponse(
        {
            "server_time": result.server_time.isoformat(),
            "is_truncated": result.is_truncated,
            "messages": result.messages,
        }
    )
