"""How an import checks and writes its leads: the ORM anywhere, fewer and cheaper statements on PostgreSQL.

Measured with bench/lead_import.py (a 1 M-row CSV, one worker, 2-core machine shared with other
work): `bulk_create` of 1,000-lead batches spent more time building the INSERT's text in Django's
compiler and binding its 15,000 values in psycopg than PostgreSQL spent storing the rows, about
0.5 ms per lead in all. COPY sends the rows as they are, a few µs each on our side. Likewise the
checks of a chunk's numbers against the do-not-call lists and the campaign's leads: two `IN` lists
of up to 1,000 values per 1,000 numbers (psycopg splitting each long query text on our side), or
one statement for the whole chunk with the numbers as one array.

Both give the same rows: the model's defaults, `created` and `next_attempt_at` rising with the
given order up to `now` — a microsecond apart, as `bulk_create`'s per-instance `timezone.now()`
gave them about — so leads of one priority are dialled and listed in the file's order.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from datetime import datetime, timedelta
from json.encoder import encode_basestring_ascii as _quote
from typing import TYPE_CHECKING, Any

from django.db import connection

from campaigns.models import Campaign, Lead, LeadStatus

if TYPE_CHECKING:
    from campaigns.services.lead import LeadRow

# (E.164 phone, the row as given, its time zones)
NewLead = tuple[str, "LeadRow", list[str]]

_COPY = (
    "COPY campaigns_lead (id, contact_center_id, campaign_id, phone, name, source, priority, is_active, "
    "context, timezones, status, attempts, next_attempt_at, last_outcome, created) FROM STDIN"
)


# One index probe per number in each table, whatever their sizes: the LIMIT keeps the planner
# from turning the lateral subquery into a join. `phone = ANY(%s)` was planned as a scan of the
# campaign's every lead once it held a few thousand (bench/lead_import.py, EXPLAIN ANALYZE at
# 92,000 leads: 5,000 numbers checked in 80-110 ms, growing with the campaign), so a large
# file's chunks took longer and longer. The numbers go as one text, split on the server:
# psycopg adapting a list of 5,000 strings to an array, twice, was a tenth of our side's time.
_KNOWN = (
    "SELECT given.phone, found.is_blocked FROM unnest(string_to_array(%s, ',')) AS given(phone) "
    "CROSS JOIN LATERAL ("
    "SELECT true AS is_blocked FROM campaigns_donotcall WHERE contact_center_id = %s "
    "AND (campaign_id IS NULL OR campaign_id = %s) AND phone = given.phone "
    "UNION ALL SELECT false FROM campaigns_lead WHERE campaign_id = %s AND phone = given.phone "
    "LIMIT 1) AS found"
)


def known_phones(*, campaign: Campaign, phones: list[str]) -> tuple[set[str], set[str]]:
    """(on the center's or the campaign's do-not-call list, already a lead of the campaign)."""
    if connection.vendor != "postgresql":
        # Here, not at the top: campaigns.services imports this module.
        from campaigns.services.numbers import blocked_numbers

        existing: set[str] = set()
        for start in range(0, len(phones), 1000):
            found = campaign.leads.filter(phone__in=phones[start : start + 1000]).values_list(
                "phone", flat=True
            )
            existing.update(found)
        return blocked_numbers(center=campaign.contact_center, campaign=campaign, phones=phones), existing
    blocked, existing = set(), set()
    with connection.cursor() as cursor:
        given = ",".join(phones)  # E.164: no number holds a comma
        cursor.execute(_KNOWN, [given, campaign.contact_center_id, campaign.pk, campaign.pk])
        for phone, is_blocked in cursor.fetchall():
            (blocked if is_blocked else existing).add(phone)
    return blocked, existing


def insert_leads(*, center_id: Any, campaign_id: Any, leads: Sequence[NewLead], now: datetime) -> list[Any]:
    """Stores the leads (status new, due at once); their ids, in order. `now`: the transaction's time."""
    if connection.vendor == "postgresql":
        return _copy(center_id, campaign_id, leads, now)
    objects = [
        Lead(
            contact_center_id=center_id,
            campaign_id=campaign_id,
            phone=phone,
            name=row.name,
            source=row.source,
            priority=row.priority,
            is_active=row.is_active,
            context=row.context,
            timezones=zones,
        )
        for phone, row, zones in leads
    ]
    Lead.objects.bulk_create(objects, batch_size=1000)
    return [lead.pk for lead in objects]


def _copy(center_id: Any, campaign_id: Any, leads: Sequence[NewLead], now: datetime) -> list[str]:
    """The rows as COPY's text format, written by hand: psycopg's `write_row` adapting 15 values a
    row, `uuid.uuid4()` and `json.dumps` of the same few zone lists were most of our side's time."""
    ids = _uuid4s(len(leads))
    fixed = f"\t{center_id}\t{campaign_id}\t"
    status = LeadStatus.NEW.value
    last = len(leads) - 1
    lines = []
    for n, (lead_id, (phone, row, zones)) in enumerate(zip(ids, leads, strict=True)):
        at = (now - timedelta(microseconds=last - n)).isoformat()
        lines.append(
            f"{lead_id}{fixed}{phone}\t{_text(row.name)}\t{_text(row.source)}\t{row.priority}\t"
            f"{'t' if row.is_active else 'f'}\t{_json(row.context)}\t{_zones_json(zones)}\t{status}\t0\t"
            f"{at}\t\t{at}\n"
        )
    with connection.cursor() as cursor, cursor.copy(_COPY) as copy:
        copy.write("".join(lines))
    return ids


# COPY's text format: a backslash, tab, newline or carriage return inside a value is escaped.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _text(value: str) -> str:
    # `translate` looks each character up in the table: ten times what these scans cost, for
    # values that rarely hold any of them (bench/lead_import.py).
    if "\\" in value or "\t" in value or "\n" in value or "\r" in value:
        return value.translate(_ESCAPES)
    return value


def _json(value: dict[str, str]) -> str:
    """`json.dumps(value)` of a context (text to text) as a COPY value, with json's own string
    encoder; json.dumps' layers of calls and a `translate` were a third of a lead's COPY row.
    The encoder escapes every control character, so only its backslashes need doubling."""
    if not value:
        return "{}"
    pairs = ", ".join([f"{_quote(name)}: {_quote(text)}" for name, text in value.items()])
    return f"{{{pairs}}}".replace("\\", "\\\\")


_zone_lists: dict[tuple[str, ...], str] = {}


def _zones_json(zones: list[str]) -> str:
    key = tuple(zones)
    text = _zone_lists.get(key)
    if text is None:
        text = _zone_lists[key] = json.dumps(zones).translate(_ESCAPES)
    return text


def _uuid4s(count: int) -> list[str]:
    """`str(uuid.uuid4())`, count times: random 128 bits with the version and variant bits set."""
    random = os.urandom(16 * count)
    ids = []
    for start in range(0, 16 * count, 16):
        raw = bytearray(random[start : start + 16])
        raw[6] = raw[6] & 0x0F | 0x40
        raw[8] = raw[8] & 0x3F | 0x80
        h = raw.hex()
        ids.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    return ids
