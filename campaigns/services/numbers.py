"""What a number given for a campaign is: dialable or not by its shape and kind, or listed as do-not-call."""

from __future__ import annotations

from collections.abc import Sequence

import phonenumbers
from django.db.models import Q
from phonenumbers import PhoneNumberType, shortnumberinfo

from campaigns.models import (
    Campaign,
    DoNotCall,
)
from campaigns.windows import zones_for_number
from voiso_byob.models import ContactCenter


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


def read_number(text: str, *, region: str) -> tuple[str | None, str, list[str]]:
    """(reason, E.164, time zones) of a lead's number: reason None for a dialable number.

    The readable definition; imports use `campaigns.fast_numbers.read_number_fast`, which gives
    the same answers (tests/campaigns/test_fast_numbers.py) in a fraction of the time.
    """
    reason, parsed = classify_number(text, region=region)
    if parsed is None:
        return reason, "", []
    return (
        reason,
        phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164),
        zones_for_number(parsed),
    )


def blocked_numbers(*, center: ContactCenter, campaign: Campaign | None, phones: Sequence[str]) -> set[str]:
    """The phones on the center's or this campaign's do-not-call list."""
    found: set[str] = set()
    for start in range(0, len(phones), 1000):
        chunk = phones[start : start + 1000]
        lists = Q(campaign__isnull=True) | Q(campaign=campaign) if campaign else Q(campaign__isnull=True)
        rows = DoNotCall.objects.filter(lists, contact_center=center, phone__in=chunk)
        found.update(rows.values_list("phone", flat=True))
    return found
