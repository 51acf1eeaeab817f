"""The dialer's tick: how many calls each campaign may place now, which leads, through which gateway.

Any number of workers on any number of hosts run `Dialer.tick()` about once a second. A tick:

1. releases claims whose worker died before dialling (no row of a dial is left: it never happened);
2. counts the free slots of every dialling campaign's bots (capacity minus the calls the bots are on
   minus this system's dials still ringing) and passes over the campaigns with none;
3. for the others, by priority and all at once: locks their bots, counts again, gives each campaign
   its share of the slots, claims that many due leads of each with `SELECT … FOR UPDATE SKIP
   LOCKED` (priority, then next attempt time), and re-checks each lead at claim time: do-not-call,
   the calling window in every zone the number may be in, the daily and regional caps;
4. writes one `CallAttempt` per dial (unique per lead and attempt number: never dialled twice),
   commits, then originates through the gateway.

What happens to each call arrives later as events (`services.apply_call_events`). A tick's cost
grows with the number of campaigns, not of leads: each campaign's claim reads at most its free
slots' worth of leads by an index, and a tick sends the same few statements however many
campaigns claim (`campaigns.claims`; a statement or more per campaign made a tick of 50 campaigns
claiming one lead each take 366-474 ms, bench/dialer.py).
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import phonenumbers
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, prefetch_related_objects
from django.utils import timezone

from campaigns.claims import Claim, DueLead, claims_store
from campaigns.gateways import Gateway, Origination, OriginationError, origination_headers
from campaigns.models import (
    DIALER_CALL_ID_PREFIX,
    AttemptOutcome,
    AutoPauseReason,
    CallAttempt,
    Campaign,
    CampaignStatus,
    DialerPolicy,
    Lead,
    LeadStatus,
    RegionalCallingRule,
)
from campaigns.services import (
    auto_pause_campaign,
    auto_resume_campaign,
    complete_campaign,
    dialer_policy,
    end_attempt,
)
from campaigns.windows import LegalWindow, is_open, parse_calling_hours
from routing.route import active_calls

logger = logging.getLogger(__name__)

# A claim not dialled within this long belongs to a worker that died: the lead goes back.
CLAIM_TIMEOUT = timedelta(seconds=60)
# A dial with no word from the switch for this long is failed, so its lead can be retried.
SILENT_DIAL_TIMEOUT = timedelta(hours=2)
# At most this many claims per campaign and tick: a tick stays short, and other workers take turns.
CLAIM_BATCH = 500
# At most this many claims per tick in all: a worker locks the bots of the first campaigns (by
# priority) that need that many, and a worker ticking beside it takes the next campaigns' bots.
TICK_CLAIMS = 2_000
# How often a worker sweeps for stale claims and silent dials: each sweep reads every undialled or
# unfinished attempt, and a claim is stale only after CLAIM_TIMEOUT anyway.
SWEEP_EVERY = timedelta(seconds=10)
# A lead outside its calling window is looked at again after this long.
WINDOW_RECHECK = timedelta(minutes=5)


@dataclass
class TickResult:
    campaigns: int = 0
    claimed: int = 0
    originated: int = 0
    deferred: int = 0
    dnc: int = 0
    released: int = 0
    failed: int = 0
    status_changes: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class _Bot:
    id: str
    sip_uri: str
    free: int


@dataclass(frozen=True, slots=True)
class _Agent:
    """An enabled bot of a campaign, as the tick reads it."""

    pk: Any
    sip_uri: str
    max_concurrent_calls: int


def _enabled_bots(campaigns: list[Campaign]) -> dict[Any, list[_Agent]]:
    """Each campaign's enabled bots, from one query (values: no model or related manager per row)."""
    enabled: dict[Any, list[_Agent]] = {campaign.pk: [] for campaign in campaigns}
    rows = Campaign.virtual_agents.through.objects.filter(
        campaign_id__in=list(enabled), virtualagent__is_enabled=True
    ).values_list(
        "campaign_id", "virtualagent_id", "virtualagent__sip_uri", "virtualagent__max_concurrent_calls"
    )
    for campaign_id, pk, sip_uri, calls in rows.order_by("virtualagent_id"):
        enabled[campaign_id].append(_Agent(pk, sip_uri, calls))
    return enabled


@dataclass
class _Plan:
    """One campaign's part of a tick: the slots of its bots it may fill, its leads, what came of them."""

    campaign: Campaign
    bots: list[_Bot]
    leads: list[DueLead] = field(default_factory=list)
    claimed: int = 0
    deferred: int = 0

    @property
    def slots(self) -> int:
        return sum(bot.free for bot in self.bots)


def _reserve(bots: list[_Bot], slots: int) -> list[_Bot]:
    """Up to `slots` of these bots' free slots for one campaign, spread evenly (the freest first);
    taken from the bots, so a campaign sharing them later in the tick gets what is left."""
    taken = dict.fromkeys((bot.id for bot in bots), 0)
    for _ in range(min(slots, sum(bot.free for bot in bots))):
        bot = max(bots, key=lambda bot: bot.free)
        bot.free -= 1
        taken[bot.id] += 1
    return [_Bot(bot.id, bot.sip_uri, taken[bot.id]) for bot in bots if taken[bot.id]]


def _policies(centers: dict[Any, Any]) -> dict[Any, DialerPolicy]:
    """Each center's dialer policy, in one query (created with its defaults where missing)."""
    found = {
        policy.contact_center_id: policy for policy in DialerPolicy.objects.filter(contact_center__in=centers)
    }
    for center_id, center in centers.items():
        if center_id not in found:
            found[center_id] = dialer_policy(center)
    return found


def _legal_window(
    policy: DialerPolicy, rules: list[RegionalCallingRule], phone: str
) -> tuple[LegalWindow, int]:
    """The center's window narrowed by every regional rule whose prefix the number has; the 24 h cap."""
    window = LegalWindow(policy.legal_start, policy.legal_end)
    cap = policy.daily_cap
    for rule in rules:
        # str.startswith takes a tuple: one C call per rule, not a generator over its prefixes
        # (that generator was a quarter of a worker's Python per claim: bench/dialer.py).
        if phone.startswith(tuple(rule.prefixes)):
            window = window.narrowed(rule.start, rule.end)
            if rule.max_attempts_per_24h:
                cap = min(cap, rule.max_attempts_per_24h)
    return window, cap


class Dialer:
    def __init__(
        self,
        *,
        gateway: Gateway,
        now: Callable[[], datetime] = timezone.now,
        busy_calls: Callable[[str], int] = active_calls,
    ) -> None:
        self.gateway = gateway
        self.now = now
        # Calls a bot is on now, as the event ingestion counts them (inbound and outbound).
        self.busy_calls = busy_calls
        self.store = claims_store()
        self._swept_at: datetime | None = None

    # -- one tick ---------------------------------------------------------------------------

    def tick(self) -> TickResult:
        result = TickResult()
        now = self.now()
        if self._swept_at is None or not timedelta(0) <= now - self._swept_at < SWEEP_EVERY:
            self.release_stale_claims(now, result)
            self.fail_silent_dials(now, result)
            self._swept_at = now
        campaigns = list(
            Campaign.objects.dialling()
            .select_related("contact_center", "handoff_queue__extension")
            .order_by("priority", "created")
        )
        result.campaigns = len(campaigns)
        enabled = _enabled_bots(campaigns)
        # Every campaign's free slots at once, without locks: a campaign with none is passed over
        # without a transaction (most ticks of a busy dialer); the others are counted again locked.
        dials = open_dials({bot.pk for bots in enabled.values() for bot in bots})
        queues = {campaign.handoff_queue_id for campaign in campaigns if campaign.handoff_queue_id}
        waiting = queue_load(queues) if queues else {}
        free = {
            bot.pk: self._slots(str(bot.pk), bot.max_concurrent_calls, dials)
            for bots in enabled.values()
            for bot in bots
        }
        ready = [
            campaign
            for campaign in campaigns
            if self._may_dial(campaign, enabled[campaign.pk], waiting, result)
            and any(free[bot.pk] for bot in enabled[campaign.pk])
        ]
        if not ready:
            return result
        # One transaction for the whole tick's claims: a commit waits for the disk (~2-4 ms here),
        # and one per campaign made a tick of 50 campaigns wait for 50 (bench/dialer.py).
        with transaction.atomic():
            self.store.begin()
            # Each campaign's due leads, counted up to its free slots: a campaign waiting for its
            # retries must not take a share of TICK_CLAIMS (tick after tick, from those after it).
            due = self.store.count_due(
                {c.pk: min(CLAIM_BATCH, sum(free[bot.pk] for bot in enabled[c.pk])) for c in ready}, now
            )
            finished = [c for c in ready if not due[c.pk] and c.status == CampaignStatus.ACTIVE]
            ready = [campaign for campaign in ready if due[campaign.pk]]
            plans = self._lock_slots(ready, enabled, free, due) if ready else []
            originations = self._claim(plans, now, result) if plans else []
        self._complete_finished(finished, result)
        self._after_claims(plans, result)
        self._originate_all(originations, result)
        return result

    def _may_dial(
        self, campaign: Campaign, bots: list[_Agent], waiting: dict[str, int], result: TickResult
    ) -> bool:
        """False when the campaign pauses itself this tick (no enabled bot, or its handoff queue full)."""
        if not bots:
            self._auto_pause(campaign, AutoPauseReason.NO_CAPACITY, result)
            return False
        if campaign.handoff_queue_id and waiting.get(str(campaign.handoff_queue_id), 0) > (
            campaign.handoff_queue_threshold
        ):
            # Bots must not hand callers to a queue that cannot answer them; resumes as it drains.
            self._auto_pause(campaign, AutoPauseReason.HANDOFF_QUEUE_FULL, result)
            return False
        if campaign.status_reason == AutoPauseReason.HANDOFF_QUEUE_FULL:
            self._resume(campaign, result)
        return True

    def _lock_slots(
        self,
        campaigns: list[Campaign],
        enabled: dict[Any, list[_Agent]],
        unlocked: dict[Any, int],
        due: dict[Any, int],
    ) -> list[_Plan]:
        """Locks the bots of the first campaigns (by priority) with free slots, and shares their slots.

        Locked FOR NO KEY UPDATE SKIP LOCKED until the claim commits: two workers must not both
        count the same free slot. A bot another worker holds is skipped this tick, and the next
        campaigns' bots are taken instead: so workers ticking together share the campaigns out,
        each up to TICK_CLAIMS. Counted after the lock, so the count sees every claim committed
        before it. Free = capacity minus the calls it is on minus this system's dials still ringing.
        Each campaign gets its slots from its own locked bots, in priority order (bots shared by
        campaigns serve the first first), at most its due leads (counted up to CLAIM_BATCH).
        """
        # The bots in the order of the campaigns they serve, and how many of them the unlocked counts
        # say this tick needs; SKIP LOCKED takes the next ones in the order for those others hold.
        order: dict[Any, None] = {}
        needed = wanted = 0
        for campaign in campaigns:
            bots = [bot.pk for bot in enabled[campaign.pk] if bot.pk not in order]
            order.update(dict.fromkeys(bots))
            if wanted < TICK_CLAIMS:
                wanted += min(due[campaign.pk], sum(unlocked[pk] for pk in bots))
                needed = len(order)
        locked = self.store.lock_bots(list(order), limit=needed)
        if not locked:
            return []
        dials = open_dials([bot.id for bot in locked])
        free = {
            bot.id: _Bot(bot.id, bot.sip_uri, self._slots(bot.id, bot.max_concurrent_calls, dials))
            for bot in locked
        }
        plans = []
        budget = TICK_CLAIMS
        for campaign in campaigns:
            mine = [free[str(bot.pk)] for bot in enabled[campaign.pk] if str(bot.pk) in free]
            bots = _reserve(mine, min(due[campaign.pk], budget))
            if bots:
                plans.append(_Plan(campaign, bots))
                budget -= sum(bot.free for bot in bots)
        return plans

    def _slots(self, bot_id: str, capacity: int, dials: dict[str, tuple[int, int]]) -> int:
        ringing, ours_answered = dials.get(bot_id, (0, 0))
        # The counter lags a dial's answer by the ingestion's commit: never count fewer than ours.
        on_calls = max(self.busy_calls(bot_id), ours_answered)
        return max(0, capacity - on_calls - ringing)

    def _claim(self, plans: list[_Plan], now: datetime, result: TickResult) -> list[Origination]:
        """Locks the planned campaigns' due leads, checks each at claim time, writes the dials.

        A few statements for all the campaigns together, whatever their number.
        """
        leads = self.store.lock_due_leads({plan.campaign.pk: plan.slots for plan in plans}, now)
        by_campaign: dict[Any, list[DueLead]] = defaultdict(list)
        for lead in leads:
            by_campaign[lead.campaign_id].append(lead)
        for plan in plans:
            plan.leads = by_campaign.get(plan.campaign.pk, [])
        plans = [plan for plan in plans if plan.leads]
        if not plans:
            return []
        centers = {plan.campaign.contact_center_id: plan.campaign.contact_center for plan in plans}
        policies = _policies(centers)
        rules = list(RegionalCallingRule.objects.all())
        blocked = self.store.blocked({plan.campaign: [lead.phone for lead in plan.leads] for plan in plans})
        recent = self.store.recent_attempts(
            {(plan.campaign.contact_center_id, lead.phone) for plan in plans for lead in plan.leads},
            now - timedelta(hours=24),
        )
        # The daily cap counts every campaign of the center, this tick's dials too.
        dialled_now: Counter[tuple[Any, str]] = Counter()
        dnc: list[Any] = []
        deferred: dict[Any, datetime] = {}
        claims: list[Claim] = []
        for plan in plans:
            campaign = plan.campaign
            center_id = campaign.contact_center_id
            policy = policies[center_id]
            hours = parse_calling_hours(campaign.calling_hours)
            default_zones = [campaign.zone_name]
            # A window's answer for a tuple of zones is the same for every lead with those zones.
            open_for: dict[tuple[str, ...], dict[LegalWindow, bool]] = defaultdict(dict)
            for lead in plan.leads:
                if (campaign.pk, lead.phone) in blocked:
                    dnc.append(lead.id)
                    continue
                window, cap = _legal_window(policy, rules, lead.phone)
                zones = tuple(lead.timezones or default_zones)
                answers = open_for[zones]
                if window not in answers:
                    answers[window] = is_open(now=now, zones=list(zones), hours=hours, legal=window)
                if not answers[window]:
                    deferred[lead.id] = now + WINDOW_RECHECK
                    plan.deferred += 1
                    continue
                number = (center_id, lead.phone)
                count, first = recent.get(number, (0, None))
                if count + dialled_now[number] >= cap:
                    deferred[lead.id] = (first or now) + timedelta(hours=24)
                    plan.deferred += 1
                    continue
                bot = max(plan.bots, key=lambda bot: bot.free)
                if bot.free == 0:
                    break
                bot.free -= 1
                dialled_now[number] += 1
                call_id = f"{DIALER_CALL_ID_PREFIX}{uuid.uuid4()}"
                claims.append(
                    Claim(uuid.uuid4(), center_id, campaign.pk, lead, lead.attempts + 1, bot.id, call_id)
                )

        if dnc:
            self.store.mark_dnc(dnc)
            result.dnc += len(dnc)
        if deferred:
            self.store.defer(deferred)
            result.deferred += len(deferred)
        if not claims:
            return []
        written = self.store.write(claims, now)
        if len(written) < len(claims):
            logger.warning(
                "dialer: %d leads were claimed elsewhere; their claims dropped", len(claims) - len(written)
            )
        claims = [claim for claim in claims if claim.attempt_id in written]
        result.claimed += len(claims)
        return self._originations(plans, claims)

    def _originations(self, plans: list[_Plan], claims: list[Claim]) -> list[Origination]:
        campaigns = {plan.campaign.pk: plan for plan in plans}
        for claim in claims:
            campaigns[claim.campaign_id].claimed += 1
        dialling = [plan.campaign for plan in plans if plan.claimed]
        # Values, not prefetch_related: Django builds a related manager per campaign and relation,
        # which was most of a tick's Python with 50 campaigns.
        numbers: dict[Any, list[str]] = defaultdict(list)
        for campaign_id, number in Campaign.caller_ids.through.objects.filter(
            campaign_id__in=[campaign.pk for campaign in dialling]
        ).values_list("campaign_id", "phonenumber__number"):
            numbers[campaign_id].append(number)
        prefetch_related_objects(
            [c for c in dialling if c.handoff_queue_id], "handoff_queue__members__extension"
        )
        details = {}
        for campaign in dialling:
            queue = campaign.handoff_queue
            details[campaign.pk] = (
                sorted(numbers[campaign.pk]),
                queue.extension.digits if queue else None,
                tuple(
                    member.extension.digits
                    for member in (queue.members.all() if queue else ())
                    if member.extension_id
                ),
                campaign.contact_center.sip_domain,
                str(campaign.contact_center_id),
                str(campaign.pk),
                {bot.id: bot.sip_uri for bot in campaigns[campaign.pk].bots},
            )
        originations = []
        for claim in claims:
            caller_ids, handoff, agents, sip_domain, center_id, campaign_id, sip_uris = details[
                claim.campaign_id
            ]
            lead_id = str(claim.lead.id)
            originations.append(
                Origination(
                    call_id=claim.call_id,
                    contact_center_id=center_id,
                    sip_domain=sip_domain,
                    campaign_id=campaign_id,
                    lead_id=lead_id,
                    attempt_id=str(claim.attempt_id),
                    to=claim.lead.phone,
                    caller_id=_caller_id(caller_ids, claim.lead.phone, claim.number),
                    virtual_agent_id=claim.bot_id,
                    bot_sip_uri=sip_uris[claim.bot_id],
                    handoff_extension=handoff,
                    handoff_agents=agents,
                    headers=origination_headers(
                        {
                            "X-Voiso-Call-Id": claim.call_id,
                            "X-Voiso-Campaign-Id": campaign_id,
                            "X-Voiso-Lead-Id": lead_id,
                        },
                        claim.lead.context,
                    ),
                )
            )
        return originations

    def _after_claims(self, plans: list[_Plan], result: TickResult) -> None:
        """Each planned campaign's state after its claim: resumed, or paused outside its hours."""
        for plan in plans:
            campaign = plan.campaign
            if plan.claimed and campaign.status == CampaignStatus.AUTO_PAUSED:
                self._resume(campaign, result)
            elif not plan.claimed and plan.deferred and campaign.status == CampaignStatus.ACTIVE:
                self._auto_pause(campaign, AutoPauseReason.OUTSIDE_HOURS, result)

    def _originate_all(self, originations: list[Origination], result: TickResult) -> None:
        if not originations:
            return
        # Marked before dialling, in one statement: a claim released meanwhile (its row gone) is
        # not dialled, and one marked by another worker (impossible, but cheap to rule out) neither.
        marked = self.store.mark_originated([o.attempt_id for o in originations], self.now())
        for origination in originations:
            if origination.attempt_id in marked:
                self._originate(origination, result)

    def _originate(self, origination: Origination, result: TickResult) -> None:
        try:
            self.gateway.originate(origination)
        except OriginationError as exc:
            logger.warning("dialer: call %s not placed: %s", origination.call_id, exc)
            with transaction.atomic():
                attempt = (
                    CallAttempt.objects.select_for_update(of=("self",))
                    .select_related("campaign")
                    .get(pk=origination.attempt_id)
                )
                if attempt.ended_at is None:
                    end_attempt(attempt, outcome=AttemptOutcome.FAILED, at=self.now())
            result.failed += 1
            return
        result.originated += 1

    # -- housekeeping -----------------------------------------------------------------------

    def release_stale_claims(self, now: datetime, result: TickResult) -> None:
        """Claims whose worker died before dialling: the row goes (no dial happened), the lead back."""
        stale = CallAttempt.objects.filter(originated_at__isnull=True, claimed_at__lt=now - CLAIM_TIMEOUT)
        for attempt_id, lead_id in stale.values_list("pk", "lead_id")[:1000]:
            with transaction.atomic():
                gone, _ = CallAttempt.objects.filter(pk=attempt_id, originated_at__isnull=True).delete()
                if not gone:
                    continue  # dialled after all
                lead = Lead.objects.select_for_update().get(pk=lead_id)
                lead.attempts = max(0, lead.attempts - 1)
                lead.status = LeadStatus.RETRY if lead.attempts else LeadStatus.NEW
                lead.next_attempt_at = now
                lead.save(update_fields=["attempts", "status", "next_attempt_at"])
                result.released += 1

    def fail_silent_dials(self, now: datetime, result: TickResult) -> None:
        silent = CallAttempt.objects.filter(
            ended_at__isnull=True, originated_at__lt=now - SILENT_DIAL_TIMEOUT
        ).select_related("campaign")
        for attempt in silent[:1000]:
            with transaction.atomic():
                locked = (
                    CallAttempt.objects.select_for_update(of=("self",))
                    .select_related("campaign")
                    .get(pk=attempt.pk)
                )
                if locked.ended_at is None:
                    end_attempt(locked, outcome=AttemptOutcome.FAILED, at=now)
                    result.failed += 1

    def _complete_finished(self, campaigns: list[Campaign], result: TickResult) -> None:
        """Completes those of these campaigns (none had a due lead) with no lead left to dial."""
        if not campaigns:
            return
        left = Lead.objects.filter(
            campaign=OuterRef("pk"),
            is_active=True,
            status__in=[LeadStatus.NEW, LeadStatus.RETRY, LeadStatus.IN_PROGRESS],
        )
        done = set(
            Campaign.objects.filter(pk__in=[campaign.pk for campaign in campaigns])
            .filter(~Exists(left))
            .values_list("pk", flat=True)
        )
        for campaign in campaigns:
            if campaign.pk in done:
                complete_campaign(campaign=campaign)
                result.status_changes.append((str(campaign.pk), CampaignStatus.COMPLETED))

    def _auto_pause(self, campaign: Campaign, reason: str, result: TickResult) -> None:
        if campaign.status == CampaignStatus.AUTO_PAUSED and campaign.status_reason == reason:
            return
        try:
            changed = auto_pause_campaign(campaign=campaign, reason=reason)
        except Exception:  # paused or stopped by a person meanwhile: theirs wins
            logger.info("dialer: campaign %s changed meanwhile; not auto-paused", campaign.pk)
            return
        campaign.status, campaign.status_reason = changed.status, changed.status_reason
        result.status_changes.append((str(campaign.pk), f"auto_paused:{reason}"))

    def _resume(self, campaign: Campaign, result: TickResult) -> None:
        try:
            auto_resume_campaign(campaign=campaign)
        except Exception:
            logger.info("dialer: campaign %s changed meanwhile; not resumed", campaign.pk)
            return
        campaign.status, campaign.status_reason = CampaignStatus.ACTIVE, ""
        result.status_changes.append((str(campaign.pk), CampaignStatus.ACTIVE))


def _caller_id(caller_ids: list[str], phone: str, attempt: int) -> str:
    """A caller ID of the lead's own country code when there is one (people answer local numbers)."""
    if not caller_ids:
        return ""
    country = _country_code(phone)
    local = [number for number in caller_ids if _country_code(number) == country] or caller_ids
    return local[attempt % len(local)]


@lru_cache(maxsize=4096)
def _country_code(e164: str) -> int:
    try:
        return phonenumbers.parse(e164).country_code
    except phonenumbers.NumberParseException:
        return 0


def open_dials(agent_ids: Any) -> dict[str, tuple[int, int]]:
    """Per bot: this system's dials not yet ended, (still ringing, answered)."""
    return {
        str(row["virtual_agent_id"]): (row["ringing"], row["answered"])
        for row in CallAttempt.objects.filter(virtual_agent_id__in=agent_ids, ended_at__isnull=True)
        .values("virtual_agent_id")
        .annotate(
            ringing=Count("pk", filter=Q(answered_at__isnull=True)),
            answered=Count("pk", filter=Q(answered_at__isnull=False)),
        )
    }


def _no_queue_load(queue_ids: set[Any]) -> dict[str, int]:
    return {}


# Callers waiting in each queue, by queue id: call records are reporting's, which sets this when it
# loads (reporting.apps), so the dependency keeps pointing reporting → campaigns.
queue_load: Callable[[set[Any]], dict[str, int]] = _no_queue_load
