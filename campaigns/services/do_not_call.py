"""The do-not-call lists: adding a number retires the waiting leads with it."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import phonenumbers
from django.db import transaction

from campaigns.models import (
    Campaign,
    DoNotCall,
    Lead,
    LeadStatus,
)
from campaigns.services.lead import MAX_LEADS_PER_REQUEST
from campaigns.services.numbers import classify_number
from campaigns.services.policy import dialer_policy
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, ContactCenter
from voiso_byob.services import Actor


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
