"""How a tick reads and writes its claims: the ORM way, and the same in a few PostgreSQL statements.

A tick claims for every campaign with free slots at once (`campaigns.dialer`), through this small
interface: lock the bots to count their slots, lock each campaign's due leads, read what the
claim-time checks need (do-not-call entries, each number's attempts in the last 24 h), write the
dials, mark them dialled.

`OrmClaims` (any database; SQLite runs it) is the readable reference: a query per campaign where a
campaign is the unit, Django's ORM throughout. `PostgresClaims` does the same in one statement per
step for all the tick's campaigns — the due leads of every campaign through a LATERAL join with each
campaign's own LIMIT and `FOR NO KEY UPDATE SKIP LOCKED`, the attempts and their leads in one
statement — with its values sent as one binary array per column on a server-binding cursor, so that
neither Django's compiler nor psycopg's quoting runs once per row or per campaign.

Measured with bench/dialer.py on a 2-core machine shared with other work (figures and load in
bench/README.md): per campaign, the ORM way was about nine statements and 5 ms of Django, so a tick
of 50 campaigns claiming one lead each took 366-474 ms; one statement per lead claimed ~110 leads/s;
the ORM in bulk ~1,900/s. Sending an array of 2,000 UUIDs and 2,000 phones as Django's client-side
literals cost 12-14 ms, as binary parameters 2.2 ms.
"""

from __future__ import annotations

import json
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection
from django.db.models import Case, Count, F, IntegerField, Min, Value, When

from campaigns.models import DIALABLE_LEAD_STATUSES, CallAttempt, Campaign, Lead, LeadStatus
from campaigns.services import blocked_numbers
from virtual_agents.models import VirtualAgent
from voiso_byob.db import prepared_cursor


@dataclass(frozen=True, slots=True)
class DueLead:
    id: uuid.UUID
    campaign_id: uuid.UUID
    phone: str
    attempts: int
    timezones: list[str]
    context: dict[str, str]


@dataclass(frozen=True, slots=True)
class Claim:
    attempt_id: uuid.UUID
    center_id: Any
    campaign_id: Any
    lead: DueLead
    number: int  # the lead's attempt number this dial is (its row is locked: no other can take it)
    bot_id: str
    call_id: str


@dataclass(frozen=True, slots=True)
class LockedBot:
    id: str
    sip_uri: str
    max_concurrent_calls: int


class OrmClaims:
    def begin(self) -> None:
        """Called first in the transaction of a tick's claims (count_due is in it too)."""

    def lock_bots(self, bot_ids: list[Any], limit: int) -> list[LockedBot]:
        """The first `limit` of these enabled bots (in this order) that no other worker holds, locked.

        FOR NO KEY UPDATE (event ingestion's foreign-key checks on a bot do not wait for it) SKIP
        LOCKED: a bot another worker holds is passed over, and the next one in the order is taken.
        """
        position = Case(
            *(When(pk=pk, then=Value(index)) for index, pk in enumerate(bot_ids)), output_field=IntegerField()
        )
        rows = (
            VirtualAgent.objects.filter(pk__in=bot_ids, is_enabled=True)
            .select_for_update(skip_locked=True, no_key=True)
            .order_by(position)
            .values_list("pk", "sip_uri", "max_concurrent_calls")[:limit]
        )
        return [LockedBot(str(pk), sip_uri, calls) for pk, sip_uri, calls in rows]

    def count_due(self, wants: dict[Any, int], now: datetime) -> dict[Any, int]:
        """Each campaign's due leads now, counted up to `wants[campaign]` (no lock: an estimate)."""
        return {
            campaign_id: Lead.objects.due(now).filter(campaign_id=campaign_id)[:limit].count()
            for campaign_id, limit in wants.items()
        }

    def lock_due_leads(self, wants: dict[Any, int], now: datetime) -> list[DueLead]:
        """Up to `wants[campaign]` due leads of each campaign, locked; by campaign in `wants`' order,
        then priority, then next attempt time."""
        leads = []
        for campaign_id, limit in wants.items():
            rows = (
                Lead.objects.due(now)
                .filter(campaign_id=campaign_id)
                .select_for_update(skip_locked=True, no_key=True)
                .values_list("pk", "campaign_id", "phone", "attempts", "timezones", "context")[:limit]
            )
            leads += [DueLead(*row) for row in rows]
        return leads

    def blocked(self, phones: dict[Campaign, list[str]]) -> set[tuple[Any, str]]:
        """(campaign id, phone) of the numbers on their center's do-not-call list or their campaign's."""
        return {
            (campaign.pk, phone)
            for campaign, numbers in phones.items()
            for phone in blocked_numbers(center=campaign.contact_center, campaign=campaign, phones=numbers)
        }

    def recent_attempts(
        self, numbers: set[tuple[Any, str]], since: datetime
    ) -> dict[tuple[Any, str], tuple[int, datetime]]:
        """Per (center id, phone): the attempts claimed after `since` in any of the center's campaigns,
        and the first one's time."""
        by_center: dict[Any, list[str]] = defaultdict(list)
        for center_id, phone in numbers:
            by_center[center_id].append(phone)
        found = {}
        for center_id, phones in by_center.items():
            rows = (
                CallAttempt.objects.filter(
                    contact_center_id=center_id, phone__in=phones, claimed_at__gt=since
                )
                .values("phone")
                .annotate(n=Count("pk"), first=Min("claimed_at"))
            )
            found.update({(center_id, row["phone"]): (row["n"], row["first"]) for row in rows})
        return found

    def mark_dnc(self, lead_ids: list[uuid.UUID]) -> None:
        Lead.objects.filter(pk__in=lead_ids).update(status=LeadStatus.DNC)

    def defer(self, until: dict[uuid.UUID, datetime]) -> None:
        Lead.objects.bulk_update(
            [Lead(pk=pk, next_attempt_at=when) for pk, when in until.items()], ["next_attempt_at"]
        )

    def write(self, claims: list[Claim], now: datetime) -> set[uuid.UUID]:
        """One attempt per claim and its lead in progress; the ids of the attempts written.

        The unique (lead, number) is the last guard against a double dial, whatever the locks did:
        a claim that clashes with an attempt already there is left out, its lead untouched.
        """
        CallAttempt.objects.bulk_create(
            [
                CallAttempt(
                    id=claim.attempt_id,
                    contact_center_id=claim.center_id,
                    campaign_id=claim.campaign_id,
                    lead_id=claim.lead.id,
                    number=claim.number,
                    phone=claim.lead.phone,
                    virtual_agent_id=claim.bot_id,
                    call_id=claim.call_id,
                    claimed_at=now,
                )
                for claim in claims
            ],
            ignore_conflicts=True,
        )
        # The ids are new: those now present are the ones this insert wrote.
        written = set(
            CallAttempt.objects.filter(pk__in=[claim.attempt_id for claim in claims]).values_list(
                "pk", flat=True
            )
        )
        Lead.objects.filter(pk__in=[claim.lead.id for claim in claims if claim.attempt_id in written]).update(
            status=LeadStatus.IN_PROGRESS, attempts=F("attempts") + 1
        )
        return written

    def mark_originated(self, attempt_ids: list[str], at: datetime) -> set[str]:
        """Sets originated_at on the attempts still claimed and not yet dialled; their ids."""
        # update() cannot say which rows it changed; RETURNING can (PostgreSQL, SQLite >= 3.35).
        placeholders = ", ".join(["%s"] * len(attempt_ids))
        pk, when = CallAttempt._meta.pk, CallAttempt._meta.get_field("originated_at")
        with connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE campaigns_callattempt SET originated_at = %s "  # noqa: S608 - placeholders only
                f"WHERE id IN ({placeholders}) AND originated_at IS NULL RETURNING id",
                [
                    when.get_db_prep_value(at, connection),
                    *(pk.get_db_prep_value(uuid.UUID(value), connection) for value in attempt_ids),
                ],
            )
            return {str(uuid.UUID(str(row[0]))) for row in cursor.fetchall()}


# Written into the statement, not sent as a parameter: a prepared statement's generic plan can
# use the partial index campaigns_lead_due only when it sees the index's own condition (with a
# parameter, the plan read all of a campaign's leads and sorted them: 1.5-2 s a tick, not 1 ms).
_DIALABLE = ", ".join(f"'{status}'" for status in DIALABLE_LEAD_STATUSES)
_LOCK_DUE_LEADS = (
    "SELECT l.id, c.campaign, l.phone, l.attempts, l.timezones::text, l.context::text "  # noqa: S608 - constants
    "FROM unnest(%b::uuid[], %b::int[]) WITH ORDINALITY AS c(campaign, n, position) "
    "CROSS JOIN LATERAL ("
    "  SELECT id, phone, attempts, timezones, context, priority, next_attempt_at "
    "  FROM campaigns_lead WHERE campaign_id = c.campaign AND is_active "
    f"  AND status IN ({_DIALABLE}) AND next_attempt_at <= %b "
    "  ORDER BY priority, next_attempt_at LIMIT c.n FOR NO KEY UPDATE SKIP LOCKED"
    ") l ORDER BY c.position, l.priority, l.next_attempt_at"
)
_COUNT_DUE = (
    "SELECT c.campaign, (SELECT count(*) FROM (SELECT 1 FROM campaigns_lead "  # noqa: S608 - constants
    "  WHERE campaign_id = c.campaign AND is_active "
    f"  AND status IN ({_DIALABLE}) AND next_attempt_at <= %b "
    # The claim's order, though a count needs none: with it the index is read from the start and
    # stops at c.n; without, a bitmap scan read every due entry (20,000 a campaign: 66 ms a tick).
    "  ORDER BY priority, next_attempt_at LIMIT c.n) AS due) "
    "FROM unnest(%b::uuid[], %b::int[]) AS c(campaign, n)"
)


class PostgresClaims(OrmClaims):
    """The same reads and writes as OrmClaims, each one statement for all the tick's campaigns.

    `%b` sends a parameter in binary: an array of UUIDs travels as bytes, not as quoted text.
    """

    def begin(self) -> None:
        with prepared_cursor() as cursor:
            # A LIMIT taken from a column (each campaign's own) is estimated at a tenth of the rows,
            # which put the claim above jit_above_cost: compiling it cost 25-28 ms a tick, running
            # it 1-2 ms. Nothing a tick runs is long enough for JIT to pay.
            cursor.execute("SET LOCAL jit = off")

    def lock_bots(self, bot_ids: list[Any], limit: int) -> list[LockedBot]:
        with prepared_cursor() as cursor:
            cursor.execute(
                "SELECT id, sip_uri, max_concurrent_calls FROM virtual_agents_virtualagent "
                "WHERE id = ANY(%b::uuid[]) AND is_enabled ORDER BY array_position(%b::uuid[], id) "
                "LIMIT %b FOR NO KEY UPDATE SKIP LOCKED",
                [bot_ids, bot_ids, limit],
            )
            return [LockedBot(str(pk), sip_uri, calls) for pk, sip_uri, calls in cursor.fetchall()]

    def count_due(self, wants: dict[Any, int], now: datetime) -> dict[Any, int]:
        with prepared_cursor() as cursor:
            cursor.execute(_COUNT_DUE, [now, list(wants), list(wants.values())])
            return dict(cursor.fetchall())

    def lock_due_leads(self, wants: dict[Any, int], now: datetime) -> list[DueLead]:
        # For each campaign, Lead.objects.due()'s filter and order with the campaign's own LIMIT: the
        # partial index campaigns_lead_due serves each (a nested loop over the campaigns), and a
        # campaign's claim reads at most its free slots' worth of leads, whatever the table holds.
        with prepared_cursor() as cursor:
            cursor.execute(
                _LOCK_DUE_LEADS,
                [list(wants), list(wants.values()), now],
            )
            rows = cursor.fetchall()
        # Most leads share their zones and carry no context: each distinct text is decoded once.
        decoded: dict[str, Any] = {}
        return [
            DueLead(
                pk,
                campaign_id,
                phone,
                attempts,
                decoded[zones] if zones in decoded else decoded.setdefault(zones, json.loads(zones)),
                decoded[context] if context in decoded else decoded.setdefault(context, json.loads(context)),
            )
            for pk, campaign_id, phone, attempts, zones, context in rows
        ]

    def blocked(self, phones: dict[Campaign, list[str]]) -> set[tuple[Any, str]]:
        centers, campaigns, numbers = [], [], []
        for campaign, listed in phones.items():
            centers += [campaign.contact_center_id] * len(listed)
            campaigns += [campaign.pk] * len(listed)
            numbers += listed
        with prepared_cursor() as cursor:
            # A center-wide entry (no campaign) or one of the lead's campaign; the index
            # campaigns_donotcall_lookup (center, phone) serves each number.
            cursor.execute(
                "SELECT DISTINCT n.campaign, n.phone "
                "FROM unnest(%b::uuid[], %b::uuid[], %b::text[]) AS n(center, campaign, phone) "
                "JOIN campaigns_donotcall d ON d.contact_center_id = n.center AND d.phone = n.phone "
                "AND (d.campaign_id IS NULL OR d.campaign_id = n.campaign)",
                [centers, campaigns, numbers],
            )
            return set(cursor.fetchall())

    def recent_attempts(
        self, numbers: set[tuple[Any, str]], since: datetime
    ) -> dict[tuple[Any, str], tuple[int, datetime]]:
        centers = [center for center, _ in numbers]
        phones = [phone for _, phone in numbers]
        with prepared_cursor() as cursor:
            # The index campaigns_attempt_daily_cap (center, phone, claimed_at) serves each number.
            cursor.execute(
                "SELECT a.contact_center_id, a.phone, count(*), min(a.claimed_at) "
                "FROM unnest(%b::uuid[], %b::text[]) AS n(center, phone) "
                "JOIN campaigns_callattempt a ON a.contact_center_id = n.center AND a.phone = n.phone "
                "AND a.claimed_at > %b GROUP BY a.contact_center_id, a.phone",
                [centers, phones, since],
            )
            return {(center, phone): (n, first) for center, phone, n, first in cursor.fetchall()}

    def mark_dnc(self, lead_ids: list[uuid.UUID]) -> None:
        with prepared_cursor() as cursor:
            cursor.execute(
                "UPDATE campaigns_lead SET status = %b WHERE id = ANY(%b::uuid[])",
                [LeadStatus.DNC.value, lead_ids],
            )

    def defer(self, until: dict[uuid.UUID, datetime]) -> None:
        with prepared_cursor() as cursor:
            cursor.execute(
                "UPDATE campaigns_lead l SET next_attempt_at = v.at "
                "FROM unnest(%b::uuid[], %b::timestamptz[]) AS v(id, at) WHERE l.id = v.id",
                [list(until), list(until.values())],
            )

    def write(self, claims: list[Claim], now: datetime) -> set[uuid.UUID]:
        with prepared_cursor() as cursor:
            # ON CONFLICT leaves out a claim whose (lead, number) is already there (see
            # OrmClaims.write), and only that one. Two statements, not one with a data-modifying CTE:
            # the leads' UPDATE driven by the array of ids (a bitmap scan, in block order) measured
            # a third faster than one joined to the CTE's rows (an index probe per row, in any order).
            cursor.execute(
                "INSERT INTO campaigns_callattempt (id, contact_center_id, campaign_id, lead_id, number, "
                "phone, virtual_agent_id, call_id, claimed_at, handed_off, outcome) "
                "SELECT a.id, a.center, a.campaign, a.lead, a.number, a.phone, a.bot, a.call_id, %b, "
                "false, '' FROM unnest(%b::uuid[], %b::uuid[], %b::uuid[], %b::uuid[], %b::int[], "
                "%b::text[], %b::uuid[], %b::text[]) "
                "AS a(id, center, campaign, lead, number, phone, bot, call_id) "
                "ON CONFLICT (lead_id, number) DO NOTHING RETURNING id, lead_id",
                [
                    now,
                    [claim.attempt_id for claim in claims],
                    [claim.center_id for claim in claims],
                    [claim.campaign_id for claim in claims],
                    [claim.lead.id for claim in claims],
                    [claim.number for claim in claims],
                    [claim.lead.phone for claim in claims],
                    [claim.bot_id for claim in claims],
                    [claim.call_id for claim in claims],
                ],
            )
            written = cursor.fetchall()
            cursor.execute(
                "UPDATE campaigns_lead SET status = %b, attempts = attempts + 1 WHERE id = ANY(%b::uuid[])",
                [LeadStatus.IN_PROGRESS.value, [lead_id for _, lead_id in written]],
            )
            return {attempt_id for attempt_id, _ in written}

    def mark_originated(self, attempt_ids: list[str], at: datetime) -> set[str]:
        with prepared_cursor() as cursor:
            # Driven by the ids through the primary key: filtering the partial index of undialled
            # attempts by the array instead compared each of them with every id (all workers' claims
            # in flight times this tick's ids).
            cursor.execute(
                "UPDATE campaigns_callattempt a SET originated_at = %b "
                "FROM unnest(%b::uuid[]) AS v(id) WHERE a.id = v.id AND a.originated_at IS NULL "
                "RETURNING a.id",
                [at, attempt_ids],
            )
            return {str(row[0]) for row in cursor.fetchall()}


def claims_store() -> OrmClaims:
    return PostgresClaims() if connection.vendor == "postgresql" else OrmClaims()
