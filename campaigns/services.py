"""Writes on campaigns, leads and the do-not-call lists. Atomic and audited.

The status machine:

    draft → active ⇄ paused → stopped
    active → completed            (no lead left to dial)
    active ⇄ auto_paused(reason)  (no capacity, outside hours, handoff queue full; resumes by itself)

Every transition is one function here; an illegal one raises `invalid_transition` (409).
"""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import phonenumbers
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone
from phonenumbers import PhoneNumberType, shortnumberinfo

from campaigns.models import (
    DEFAULT_RETRY_MINUTES,
    DIALER_CALL_ID_PREFIX,
    RETRYABLE_OUTCOMES,
    AttemptOutcome,
    AutoPauseReason,
    CallAttempt,
    Campaign,
    CampaignStatus,
    DialerPolicy,
    DoNotCall,
    Lead,
    LeadStatus,
)
from campaigns.windows import parse_calling_hours, zones_for_number
from routing.models import PhoneNumber, Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, ContactCenter
from voiso_byob.services import Actor, diff, unique_name

MAX_LEADS_PER_REQUEST = 10_000

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


def dialer_policy(center: ContactCenter) -> DialerPolicy:
    policy, _ = DialerPolicy.objects.get_or_create(contact_center=center)
    return policy


# ---------------------------------------------------------------------------------------------
# Campaigns


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


# ---------------------------------------------------------------------------------------------
# Leads


@dataclass(frozen=True, slots=True)
class LeadRow:
    """One lead as given (API body item or CSV row), already checked for shape."""

    phone_number: str
    name: str = ""
    source: str = ""
    priority: int = 500
    is_active: bool = True
    context: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class ImportResult:
    created: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)


def classify_number(text: str, *, region: str) -> tuple[str | None, phonenumbers.PhoneNumber | None]:
    """(reason, parsed): reason is None for a dialable number, else invalid_number or not_dialable."""
    text = (text or "").strip()
    if not text or len(text) > 32:
        return "invalid_number", None
    try:
        parsed = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return "invalid_number", None
    if parsed.extension or not phonenumbers.is_valid_number(parsed):
        return "invalid_number", None
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    # Premium-rate numbers cost the center per minute; emergency numbers must never be dialled by a bot.
    if phonenumbers.number_type(
        parsed
    ) == PhoneNumberType.PREMIUM_RATE or shortnumberinfo.is_emergency_number(
        e164, phonenumbers.region_code_for_number(parsed) or region
    ):
        return "not_dialable", parsed
    return None, parsed


def blocked_numbers(*, center: ContactCenter, campaign: Campaign | None, phones: Sequence[str]) -> set[str]:
    """The phones on the center's or this campaign's do-not-call list."""
    found: set[str] = set()
    for start in range(0, len(phones), 1000):
        chunk = phones[start : start + 1000]
        lists = Q(campaign__isnull=True) | Q(campaign=campaign) if campaign else Q(campaign__isnull=True)
        rows = DoNotCall.objects.filter(lists, contact_center=center, phone__in=chunk)
        found.update(rows.values_list("phone", flat=True))
    return found


@transaction.atomic
def import_leads(*, campaign: Campaign, rows: Sequence[LeadRow], by: Actor) -> ImportResult:
    """Every valid row goes in; invalid, do-not-call and duplicate rows are reported by index.

    The campaign row is locked for the import, so two imports to one campaign never race on a phone.
    """
    if len(rows) > MAX_LEADS_PER_REQUEST:
        raise DomainError("too_many_leads", f"At most {MAX_LEADS_PER_REQUEST} leads per request.")
    campaign = (
        Campaign.objects.select_for_update(of=("self",)).select_related("contact_center").get(pk=campaign.pk)
    )
    if campaign.status in (CampaignStatus.STOPPED, CampaignStatus.COMPLETED):
        raise DomainError("campaign_closed", "Leads cannot be added to a finished campaign.", status=409)
    center = campaign.contact_center
    region = dialer_policy(center).default_region
    result = ImportResult()
    candidates: list[tuple[int, LeadRow, str, list[str]]] = []
    for index, row in enumerate(rows):
        reason, parsed = classify_number(row.phone_number, region=region)
        if reason is not None:
            result.rejected.append({"index": index, "phone_number": row.phone_number, "reason": reason})
            continue
        e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
        candidates.append((index, row, e164, zones_for_number(parsed)))

    phones = [phone for _, _, phone, _ in candidates]
    blocked = blocked_numbers(center=center, campaign=campaign, phones=phones)
    existing: set[str] = set()
    for start in range(0, len(phones), 1000):
        existing.update(
            campaign.leads.filter(phone__in=phones[start : start + 1000]).values_list("phone", flat=True)
        )
    seen: set[str] = set()
    leads: list[tuple[int, Lead]] = []
    for index, row, phone, zones in candidates:
        if phone in blocked:
            result.rejected.append({"index": index, "phone_number": row.phone_number, "reason": "dnc"})
        elif phone in existing or phone in seen:
            result.duplicates.append({"index": index, "phone_number": row.phone_number})
        else:
            seen.add(phone)
            lead = Lead(
                contact_center=center,
                campaign=campaign,
                phone=phone,
                name=row.name,
                source=row.source,
                priority=row.priority,
                is_active=row.is_active,
                context=row.context,
                timezones=zones,
            )
            leads.append((index, lead))
    Lead.objects.bulk_create([lead for _, lead in leads], batch_size=1000)
    result.created = [{"index": index, "id": str(lead.pk)} for index, lead in leads]
    result.rejected.sort(key=lambda item: item["index"])
    AuditEvent.record(
        center=center,
        by=by,
        action="campaign.leads_imported",
        target=campaign,
        changes={
            "created": len(result.created),
            "rejected": len(result.rejected),
            "duplicates": len(result.duplicates),
        },
    )
    return result


# ---------------------------------------------------------------------------------------------
# Do not call


@transaction.atomic
def add_do_not_call(
    *, center: ContactCenter, phone: str, by: Actor, reason: str = "", campaign: Campaign | None = None
) -> DoNotCall:
    """Adds a number (idempotent: an entry already there is returned) and retires its waiting leads."""
    if campaign is not None and campaign.contact_center_id != center.pk:
        raise DomainError(
            "invalid_choice", "The campaign must belong to this contact center.", field="campaign"
        )
    _, parsed = classify_number(phone, region=dialer_policy(center).default_region)
    if parsed is None:
        raise DomainError("invalid_number", f"{phone!r} is not a valid phone number.", field="phone")
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    entry, created = DoNotCall.objects.get_or_create(
        contact_center=center,
        campaign=campaign,
        phone=e164,
        defaults={"reason": (reason or "")[:255], "added_by": by if hasattr(by, "email") else None},
    )
    if created:
        leads = Lead.objects.filter(
            contact_center=center, phone=e164, status__in=[LeadStatus.NEW, LeadStatus.RETRY]
        )
        if campaign is not None:
            leads = leads.filter(campaign=campaign)
        leads.update(status=LeadStatus.DNC)
        AuditEvent.record(
            center=center,
            by=by,
            action="dnc.added",
            target=entry,
            changes={"phone": e164, "reason": entry.reason},
        )
    return entry


@transaction.atomic
def remove_do_not_call(*, entry: DoNotCall, by: Actor) -> None:
    AuditEvent.record(
        center=entry.contact_center, by=by, action="dnc.removed", target=entry, changes={"phone": entry.phone}
    )
    entry.delete()


@dataclass(frozen=True, slots=True)
class DoNotCallRow:
    """One number of a bulk add, already checked for shape (its campaign is the caller's)."""

    phone: str
    reason: str = ""
    campaign: Campaign | None = None


@dataclass(slots=True)
class DoNotCallResult:
    created: list[dict[str, Any]] = field(default_factory=list)
    existing: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


@transaction.atomic
def add_do_not_call_many(
    *, center: ContactCenter, rows: Sequence[DoNotCallRow], by: Actor
) -> DoNotCallResult:
    """`add_do_not_call` for up to 10,000 numbers in a few queries; results by index.

    Idempotent like the single add: a number already on that list is reported as `existing`
    (twice in one request: the second is `existing` too). Unreadable numbers are `rejected`.
    """
    if len(rows) > MAX_LEADS_PER_REQUEST:
        raise DomainError("too_many_numbers", f"At most {MAX_LEADS_PER_REQUEST} numbers per request.")
    if any(row.campaign is not None and row.campaign.contact_center_id != center.pk for row in rows):
        raise DomainError(
            "invalid_choice", "The campaign must belong to this contact center.", field="campaign"
        )
    region = dialer_policy(center).default_region
    result = DoNotCallResult()
    wanted: dict[tuple[Any, str], tuple[int, DoNotCallRow]] = {}
    repeats: list[tuple[int, tuple[Any, str]]] = []
    for index, row in enumerate(rows):
        _, parsed = classify_number(row.phone, region=region)
        if parsed is None:
            result.rejected.append({"index": index, "phone": row.phone, "reason": "invalid_number"})
            continue
        key = (
            row.campaign.pk if row.campaign else None,
            phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        )
        if key in wanted:
            repeats.append((index, key))
        else:
            wanted[key] = (index, row)

    def present() -> dict[tuple[Any, str], DoNotCall]:
        found: dict[tuple[Any, str], DoNotCall] = {}
        phones = sorted({phone for _, phone in wanted})
        for start in range(0, len(phones), 1000):
            entries = DoNotCall.objects.filter(contact_center=center, phone__in=phones[start : start + 1000])
            found.update({(entry.campaign_id, entry.phone): entry for entry in entries})
        return found

    before = present()
    new = [
        DoNotCall(
            contact_center=center,
            campaign=row.campaign,
            phone=phone,
            reason=row.reason[:255],
            added_by=by if hasattr(by, "email") else None,
        )
        for (campaign_id, phone), (_, row) in wanted.items()
        if (campaign_id, phone) not in before
    ]
    # A concurrent add of the same number is skipped by the unique constraints, then read back.
    DoNotCall.objects.bulk_create(new, batch_size=1000, ignore_conflicts=True)
    after = present()
    # Ids are made here (UUIDs): an entry is ours when the row read back carries the id we made.
    ours = {(entry.campaign_id, entry.phone): entry.pk for entry in new}
    added = {key for key, pk in ours.items() if after[key].pk == pk}
    for key, (index, _) in wanted.items():
        kind = result.created if key in added else result.existing
        kind.append({"index": index, "id": str(after[key].pk)})
    for index, key in repeats:
        result.existing.append({"index": index, "id": str(after[key].pk)})
    result.existing.sort(key=lambda item: item["index"])

    # The waiting leads of every number just listed are retired, as the single add does.
    created_keys = [key for key in wanted if key in added]
    center_wide = sorted(phone for campaign_id, phone in created_keys if campaign_id is None)
    for start in range(0, len(center_wide), 1000):
        Lead.objects.filter(
            contact_center=center,
            phone__in=center_wide[start : start + 1000],
            status__in=[LeadStatus.NEW, LeadStatus.RETRY],
        ).update(status=LeadStatus.DNC)
    per_campaign: dict[Any, list[str]] = {}
    for campaign_id, phone in created_keys:
        if campaign_id is not None:
            per_campaign.setdefault(campaign_id, []).append(phone)
    for campaign_id, phones in per_campaign.items():
        for start in range(0, len(phones), 1000):
            Lead.objects.filter(
                campaign_id=campaign_id,
                phone__in=phones[start : start + 1000],
                status__in=[LeadStatus.NEW, LeadStatus.RETRY],
            ).update(status=LeadStatus.DNC)
    if result.created:
        AuditEvent.record(
            center=center,
            by=by,
            action="dnc.bulk_added",
            target=center,
            changes={
                "created": len(result.created),
                "existing": len(result.existing),
                "rejected": len(result.rejected),
            },
        )
    return result


# ---------------------------------------------------------------------------------------------
# Attempts: what the events say happened to a dial

# call.ended's end_reason for a call no bot answered → the attempt's outcome.
_UNANSWERED_OUTCOMES = {
    "busy": AttemptOutcome.BUSY,
    "no_answer": AttemptOutcome.NO_ANSWER,
    "machine": AttemptOutcome.MACHINE,
    "failed": AttemptOutcome.FAILED,
    "rejected": AttemptOutcome.REJECTED,
    "invalid_number": AttemptOutcome.INVALID_NUMBER,
}


@dataclass(frozen=True, slots=True)
class CallEventFact:
    """What ingestion passes on for one new event of a call: campaigns need only these."""

    call_id: str
    type: str
    occurred_at: datetime
    data: dict[str, Any]


def is_dialer_call(call_id: str) -> bool:
    """The dialer names its calls (the switch reports them under that id): no query to tell them."""
    return call_id.startswith(DIALER_CALL_ID_PREFIX)


OUTCOME_EVENT_TYPES = frozenset({"bot.connected", "handoff.requested", "call.ended"})


def apply_call_events(*, center_id: Any, facts: Sequence[CallEventFact]) -> int:
    """Moves the attempts (and their leads) of the campaign calls among `facts`; returns how many.

    Called by event ingestion inside its transaction for every new event, whatever the call: one
    indexed query finds the calls that are campaign attempts, and the others cost nothing more.
    Idempotent: an attempt already ended is not ended twice.
    """
    facts = [fact for fact in facts if fact.type in OUTCOME_EVENT_TYPES]
    if not facts:
        return 0
    # Only the attempts are locked ("self"): locking the joined campaign too would serialise every
    # event of a campaign's calls and deadlock with the dialer's inserts checking their foreign keys.
    attempts = {
        attempt.call_id: attempt
        for attempt in CallAttempt.objects.select_for_update(of=("self",))
        .select_related("lead", "campaign")
        .filter(contact_center_id=center_id, call_id__in={fact.call_id for fact in facts})
    }
    moved = 0
    for fact in sorted(facts, key=lambda fact: fact.occurred_at):
        attempt = attempts.get(fact.call_id)
        if attempt is None or attempt.ended_at is not None:
            continue
        moved += 1
        if fact.type == "bot.connected":
            attempt.answered_at = attempt.answered_at or fact.occurred_at
            attempt.save(update_fields=["answered_at"])
        elif fact.type == "handoff.requested":
            attempt.handed_off = True
            attempt.save(update_fields=["handed_off"])
        else:
            _end_attempt(attempt, fact)
    return moved


def _end_attempt(attempt: CallAttempt, fact: CallEventFact) -> None:
    reason = str(fact.data.get("end_reason") or "")
    if attempt.answered_at is not None:
        outcome = AttemptOutcome.COMPLETED
    else:
        outcome = _UNANSWERED_OUTCOMES.get(reason, AttemptOutcome.FAILED)
    status = fact.data.get("sip_status")
    end_attempt(
        attempt,
        outcome=outcome,
        at=fact.occurred_at,
        sip_status=status if isinstance(status, int) and not isinstance(status, bool) else None,
    )


def end_attempt(attempt: CallAttempt, *, outcome: str, at: datetime, sip_status: int | None = None) -> None:
    """Closes the attempt and decides its lead: done, retried after the outcome's delay, or finished."""
    attempt.ended_at = at
    attempt.outcome = outcome
    attempt.sip_status = sip_status
    attempt.save(update_fields=["ended_at", "outcome", "sip_status"])
    lead = Lead.objects.select_for_update().get(pk=attempt.lead_id)
    lead.last_outcome = outcome
    if lead.status == LeadStatus.IN_PROGRESS:
        delay = attempt.campaign.retry_delay_minutes(outcome)
        if outcome == AttemptOutcome.COMPLETED:
            lead.status = LeadStatus.DONE
        elif delay is None:
            lead.status = LeadStatus.FAILED
        elif lead.attempts >= attempt.campaign.max_attempts:
            lead.status = LeadStatus.EXHAUSTED
        else:
            lead.status = LeadStatus.RETRY
            lead.next_attempt_at = at + timedelta(minutes=delay)
    lead.save(update_fields=["status", "last_outcome", "next_attempt_at"])
