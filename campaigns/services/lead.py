"""Leads into a campaign: the API's import and every CSV chunk's go through `import_leads`."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from campaigns.fast_numbers import read_number_fast
from campaigns.lead_store import NewLead, insert_leads, known_phones
from campaigns.models import Campaign, CampaignStatus
from campaigns.services.policy import dialer_policy
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent
from voiso_byob.services import Actor

MAX_LEADS_PER_REQUEST = 10_000


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


# (index in the rows given, the row, its E.164 number, its time zones)
Candidate = tuple[int, LeadRow, str, list[str]]


@dataclass(slots=True)
class ReadRows:
    """Rows whose numbers were read: the dialable ones, and those rejected already (by index)."""

    candidates: list[Candidate] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def read_numbers(rows: Sequence[LeadRow], *, region: str) -> ReadRows:
    """Each row's number read in the center's default region; no database (a thread may run it)."""
    read = ReadRows()
    for index, row in enumerate(rows):
        # The fast reader: the same answers as services.numbers.read_number (its tests), for a
        # fifth of the time; reading numbers was most of a large import's (bench/lead_import.py).
        reason, phone, zones = read_number_fast(row.phone_number, region=region)
        if reason is not None:
            read.rejected.append({"index": index, "phone_number": row.phone_number, "reason": reason})
        else:
            read.candidates.append((index, row, phone, zones))
    return read


@transaction.atomic
def import_leads(*, campaign: Campaign, rows: Sequence[LeadRow], by: Actor) -> ImportResult:
    """Every valid row goes in; invalid, do-not-call and duplicate rows are reported by index."""
    if len(rows) > MAX_LEADS_PER_REQUEST:
        raise DomainError("too_many_leads", f"At most {MAX_LEADS_PER_REQUEST} leads per request.")
    region = dialer_policy(campaign.contact_center).default_region
    return import_read_rows(campaign=campaign, read=read_numbers(rows, region=region), by=by)


@transaction.atomic
def import_read_rows(*, campaign: Campaign, read: ReadRows, by: Actor) -> ImportResult:
    """`import_leads` once the numbers are read: a CSV chunk's are read ahead, in a thread.

    The campaign row is locked for the import, so two imports to one campaign never race on a
    phone. The numbers are read before the lock: reading them is pure CPU and much of a large
    import's time, so workers importing chunks of one file overlap one's reading with another's
    writing (bench/lead_import.py).
    """
    center = campaign.contact_center
    result = ImportResult(rejected=list(read.rejected))
    campaign = Campaign.objects.select_for_update(of=("self",)).get(pk=campaign.pk)
    if campaign.status in (CampaignStatus.STOPPED, CampaignStatus.COMPLETED):
        raise DomainError("campaign_closed", "Leads cannot be added to a finished campaign.", status=409)

    phones = [phone for _, _, phone, _ in read.candidates]
    blocked, existing = known_phones(campaign=campaign, phones=phones)
    seen: set[str] = set()
    indexes: list[int] = []
    leads: list[NewLead] = []
    for index, row, phone, zones in read.candidates:
        if phone in blocked:
            result.rejected.append({"index": index, "phone_number": row.phone_number, "reason": "dnc"})
        elif phone in existing or phone in seen:
            result.duplicates.append({"index": index, "phone_number": row.phone_number})
        else:
            seen.add(phone)
            indexes.append(index)
            leads.append((phone, row, zones))
    ids = insert_leads(center_id=center.pk, campaign_id=campaign.pk, leads=leads, now=timezone.now())
    result.created = [
        {"index": index, "id": str(lead_id)} for index, lead_id in zip(indexes, ids, strict=True)
    ]
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
