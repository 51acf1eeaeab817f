"""Writes on campaigns: create, update, delete and the status machine. Atomic and audited.

The status machine:

    draft → active ⇄ paused → stopped
    active → completed            (no lead left to dial)
    active ⇄ auto_paused(reason)  (no capacity, outside hours, handoff queue full; resumes by itself)

Every transition is one function here; an illegal one raises `invalid_transition` (409).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from campaigns.models import (
    DEFAULT_RETRY_MINUTES,
    RETRYABLE_OUTCOMES,
    AutoPauseReason,
    Campaign,
    CampaignStatus,
    LeadStatus,
)
from campaigns.windows import parse_calling_hours
from routing.models import PhoneNumber, Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, ContactCenter
from voiso_byob.services import Actor, diff, unique_name

# Which status each manual or automatic transition may leave from.
_TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "start": ((CampaignStatus.DRAFT, CampaignStatus.PAUSED), CampaignStatus.ACTIVE),
    "pause": ((CampaignStatus.ACTIVE, CampaignStatus.AUTO_PAUSED), CampaignStatus.PAUSED),
    "stop": (
        (CampaignStatus.ACTIVE, CampaignStatus.PAUSED, CampaignStatus.AUTO_PAUSED),
        CampaignStatus.STOPPED,
    ),
    "complete": ((CampaignStatus.ACTIVE, CampaignStatus.AUTO_PAUSED), CampaignStatus.COMPLETED),
    "auto_pause": ((CampaignStatus.ACTIVE, CampaignStatus.AUTO_PAUSED), CampaignStatus.AUTO_PAUSED),
    "auto_resume": ((CampaignStatus.AUTO_PAUSED,), CampaignStatus.ACTIVE),
}


def _snapshot(campaign: Campaign) -> dict[str, Any]:
    return {
        "name": campaign.name,
        "virtual_agents": sorted(str(pk) for pk in campaign.virtual_agents.values_list("pk", flat=True)),
        "handoff_queue": str(campaign.handoff_queue_id) if campaign.handoff_queue_id else None,
        "handoff_queue_threshold": campaign.handoff_queue_threshold,
        "caller_ids": sorted(campaign.caller_ids.values_list("number", flat=True)),
        "timezone": campaign.timezone,
        "calling_hours": campaign.calling_hours,
        "max_attempts": campaign.max_attempts,
        "retry_minutes": campaign.retry_minutes,
        "priority": campaign.priority,
    }


def _in_center(center: ContactCenter, objects: Iterable[Any], *, field: str, what: str) -> list[Any]:
    objects = list(objects)
    if any(obj.contact_center_id != center.pk for obj in objects):
        raise DomainError("invalid_choice", f"Every {what} must belong to this contact center.", field=field)
    return objects


def _check_retry_minutes(value: object) -> dict[str, int]:
    if not isinstance(value, dict) or not set(value) <= set(RETRYABLE_OUTCOMES):
        raise DomainError(
            "invalid_retry_minutes",
            f"Retry delays are given for {', '.join(RETRYABLE_OUTCOMES)} only.",
            field="retry_minutes",
        )
    checked = dict(DEFAULT_RETRY_MINUTES)
    for outcome, minutes in value.items():
        if isinstance(minutes, bool) or not isinstance(minutes, int) or not 1 <= minutes <= 10_080:
            raise DomainError(
                "invalid_retry_minutes",
                f"The delay after {outcome} is a whole number of minutes from 1 to 10080 (a week).",
                field="retry_minutes",
            )
        checked[outcome] = minutes
    return checked


def _range(value: object, *, low: int, high: int, field: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise DomainError("invalid", f"{what} is a whole number from {low} to {high}.", field=field)
    return value


def _save(campaign: Campaign) -> None:
    # The name check reads before writing; the unique constraint decides a race.
    try:
        with transaction.atomic():
            campaign.save()
    except IntegrityError:
        raise DomainError(
            "name_taken", f"A campaign named {campaign.name!r} already exists.", field="name"
        ) from None


_DEFAULT_HOURS = [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "20:00"}]


@transaction.atomic
def create_campaign(
    *,
    center: ContactCenter,
    by: Actor,
    name: str,
    virtual_agents: Iterable[VirtualAgent],
    handoff_queue: Queue | None = None,
    handoff_queue_threshold: int = 5,
    caller_ids: Iterable[PhoneNumber] = (),
    timezone_name: str = "",
    calling_hours: list[dict[str, Any]] | None = None,
    max_attempts: int = 3,
    retry_minutes: dict[str, int] | None = None,
    priority: int = 100,
) -> Campaign:
    campaign = Campaign(contact_center=center, created_by=by if hasattr(by, "email") else None)
    _apply(
        campaign,
        name=name,
        handoff_queue=handoff_queue,
        handoff_queue_threshold=handoff_queue_threshold,
        timezone_name=timezone_name,
        calling_hours=_DEFAULT_HOURS if calling_hours is None else calling_hours,
        max_attempts=max_attempts,
        retry_minutes=retry_minutes or {},
        priority=priority,
    )
    bots = _in_center(center, virtual_agents, field="virtual_agents", what="virtual agent")
    if not bots:
        raise DomainError("required", "Choose at least one virtual agent.", field="virtual_agents")
    numbers = _in_center(center, caller_ids, field="caller_ids", what="caller ID number")
    _save(campaign)
    campaign.virtual_agents.set(bots)
    campaign.caller_ids.set(numbers)
    AuditEvent.record(
        center=center, by=by, action="campaign.created", target=campaign, changes=_snapshot(campaign)
    )
    return campaign


_UNSET: Any = object()


@transaction.atomic
def update_campaign(
    *,
    campaign: Campaign,
    by: Actor,
    name: str = _UNSET,
    virtual_agents: Iterable[VirtualAgent] = _UNSET,
    handoff_queue: Queue | None = _UNSET,
    handoff_queue_threshold: int = _UNSET,
    caller_ids: Iterable[PhoneNumber] = _UNSET,
    timezone_name: str = _UNSET,
    calling_hours: list[dict[str, Any]] = _UNSET,
    max_attempts: int = _UNSET,
    retry_minutes: dict[str, int] = _UNSET,
    priority: int = _UNSET,
) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status in (CampaignStatus.STOPPED, CampaignStatus.COMPLETED):
        raise DomainError(
            "campaign_closed",
            f"A {campaign.get_status_display().lower()} campaign cannot change.",
            status=409,
        )
    center = campaign.contact_center
    before = _snapshot(campaign)
    current = {
        "name": campaign.name,
        "handoff_queue": campaign.handoff_queue,
        "handoff_queue_threshold": campaign.handoff_queue_threshold,
        "timezone_name": campaign.timezone,
        "calling_hours": campaign.calling_hours,
        "max_attempts": campaign.max_attempts,
        "retry_minutes": campaign.retry_minutes,
        "priority": campaign.priority,
    }
    given = {
        "name": name,
        "handoff_queue": handoff_queue,
        "handoff_queue_threshold": handoff_queue_threshold,
        "timezone_name": timezone_name,
        "calling_hours": calling_hours,
        "max_attempts": max_attempts,
        "retry_minutes": retry_minutes,
        "priority": priority,
    }
    _apply(campaign, **{key: current[key] if value is _UNSET else value for key, value in given.items()})
    if virtual_agents is not _UNSET:
        bots = _in_center(center, virtual_agents, field="virtual_agents", what="virtual agent")
        if not bots:
            raise DomainError("required", "Choose at least one virtual agent.", field="virtual_agents")
        campaign.virtual_agents.set(bots)
    if caller_ids is not _UNSET:
        campaign.caller_ids.set(_in_center(center, caller_ids, field="caller_ids", what="caller ID number"))
    _save(campaign)
    changes = diff(before, _snapshot(campaign))
    if changes:
        AuditEvent.record(center=center, by=by, action="campaign.updated", target=campaign, changes=changes)
    return campaign


def _apply(
    campaign: Campaign,
    *,
    name: str,
    handoff_queue: Queue | None,
    handoff_queue_threshold: int,
    timezone_name: str,
    calling_hours: list[dict[str, Any]],
    max_attempts: int,
    retry_minutes: dict[str, int],
    priority: int,
) -> None:
    center = campaign.contact_center
    campaign.name = unique_name(
        name, among=Campaign.objects.for_center(center), field="name", what="campaign", exclude=campaign
    )
    if handoff_queue is not None:
        _in_center(center, [handoff_queue], field="handoff_queue", what="handoff queue")
    campaign.handoff_queue = handoff_queue
    campaign.handoff_queue_threshold = _range(
        handoff_queue_threshold, low=1, high=1000, field="handoff_queue_threshold", what="The threshold"
    )
    timezone_name = (timezone_name or "").strip()
    if timezone_name and timezone_name not in zoneinfo.available_timezones():
        raise DomainError(
            "invalid_timezone", f"{timezone_name!r} is not a known time zone.", field="timezone"
        )
    campaign.timezone = timezone_name
    parse_calling_hours(calling_hours)
    campaign.calling_hours = calling_hours
    campaign.max_attempts = _range(max_attempts, low=1, high=20, field="max_attempts", what="Max attempts")
    campaign.retry_minutes = _check_retry_minutes(retry_minutes)
    campaign.priority = _range(priority, low=1, high=1000, field="priority", what="Priority")


def _transition(campaign: Campaign, *, to: str, action: str, by: Actor, reason: str = "") -> Campaign:
    # Locked: a worker auto-pausing and a person pausing the same campaign must not both win.
    campaign = (
        Campaign.objects.select_for_update(of=("self",)).select_related("contact_center").get(pk=campaign.pk)
    )
    sources, target = _TRANSITIONS[to]
    if campaign.status not in sources:
        raise DomainError(
            "invalid_transition",
            f"A {campaign.get_status_display().lower()} campaign cannot be {_PAST[to]}.",
            status=409,
        )
    before = {"status": campaign.status, "status_reason": campaign.status_reason}
    campaign.status = target
    campaign.status_reason = reason
    campaign.status_changed_at = timezone.now()
    campaign.save(update_fields=["status", "status_reason", "status_changed_at"])
    AuditEvent.record(
        center=campaign.contact_center,
        by=by,
        action=f"campaign.{action}",
        target=campaign,
        changes=diff(before, {"status": campaign.status, "status_reason": campaign.status_reason}),
    )
    return campaign


_PAST = {
    "start": "started",
    "pause": "paused",
    "stop": "stopped",
    "complete": "completed",
    "auto_pause": "paused automatically",
    "auto_resume": "resumed automatically",
}


@transaction.atomic
def start_campaign(*, campaign: Campaign, by: Actor) -> Campaign:
    """Draft or paused → active: needs an enabled virtual agent and a lead left to dial."""
    if not campaign.virtual_agents.filter(is_enabled=True).exists():
        raise DomainError(
            "no_virtual_agent", "Enable at least one of the campaign's virtual agents first.", status=409
        )
    if not campaign.leads.filter(is_active=True, status__in=[LeadStatus.NEW, LeadStatus.RETRY]).exists():
        raise DomainError("no_leads", "Import at least one active lead to dial first.", status=409)
    return _transition(campaign, to="start", action="started", by=by)


@transaction.atomic
def pause_campaign(*, campaign: Campaign, by: Actor) -> Campaign:
    return _transition(campaign, to="pause", action="paused", by=by)


@transaction.atomic
def stop_campaign(*, campaign: Campaign, by: Actor) -> Campaign:
    """Stopped for good: no new call after the current tick; calls in progress finish."""
    return _transition(campaign, to="stop", action="stopped", by=by)


@transaction.atomic
def complete_campaign(*, campaign: Campaign) -> Campaign:
    return _transition(campaign, to="complete", action="completed", by="dialer")


@transaction.atomic
def auto_pause_campaign(*, campaign: Campaign, reason: str) -> Campaign:
    if reason not in AutoPauseReason.values:
        raise ValueError(f"unknown auto-pause reason {reason!r}")
    if campaign.status == CampaignStatus.AUTO_PAUSED and campaign.status_reason == reason:
        return campaign
    return _transition(campaign, to="auto_pause", action="auto_paused", by="dialer", reason=reason)


@transaction.atomic
def auto_resume_campaign(*, campaign: Campaign) -> Campaign:
    return _transition(campaign, to="auto_resume", action="auto_resumed", by="dialer")


# Running campaigns have leads in flight; they are stopped first, so their calls finish and their
# attempts stay explained.
_DELETABLE = (CampaignStatus.DRAFT, CampaignStatus.STOPPED, CampaignStatus.COMPLETED)


@transaction.atomic
def delete_campaign(*, campaign: Campaign, by: Actor) -> None:
    """Deletes a draft, stopped or completed campaign with its leads, attempts and do-not-call list."""
    # Locked: a start racing the delete must not leave a worker dialling a deleted campaign.
    campaign = Campaign.objects.select_for_update().select_related("contact_center").get(pk=campaign.pk)
    if campaign.status not in _DELETABLE:
        raise DomainError(
            "campaign_running",
            f"A {campaign.get_status_display().lower()} campaign cannot be deleted; stop it first.",
            status=409,
        )
    AuditEvent.record(
        center=campaign.contact_center,
        by=by,
        action="campaign.deleted",
        target=campaign,
        changes=_snapshot(campaign),
    )
    campaign.delete()
