"""The dialer's tick: how many calls each campaign may place now, which leads, through which gateway.

Any number of workers on any number of hosts run `Dialer.tick()` about once a second. A tick:

1. releases claims whose worker died before dialling (no row of a dial is left: it never happened);
2. for each dialling campaign, by priority, counts its bots' free slots (capacity minus the calls the
   bots are on minus this center's dials still ringing), claims that many due leads with
   `SELECT … FOR UPDATE SKIP LOCKED`, and re-checks each at claim time: do-not-call, the calling
   window in every zone the number may be in, the daily and regional caps;
3. writes one `CallAttempt` per dial (unique per lead and attempt number: never dialled twice),
   commits, then originates through the gateway.

What happens to each call arrives later as events (`services.apply_call_events`). A tick's cost
grows with the number of campaigns, not of leads: each campaign's claim reads at most its free
slots' worth of leads by an index.
"""

from __future__ import annotations

import logging
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

import phonenumbers
from django.db import IntegrityError, transaction
from django.db.models import Count, Min, Q
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
    blocked_numbers,
    complete_campaign,
    dialer_policy,
    end_attempt,
)
from campaigns.windows import LegalWindow, is_open, parse_calling_hours
from routing.route import active_calls
from virtual_agents.models import VirtualAgent

logger = logging.getLogger(__name__)

# A claim not dialled within this long belongs to a worker that died: the lead goes back.
CLAIM_TIMEOUT = timedelta(seconds=60)
# A dial with no word from the switch for this long is failed, so its lead can be retried.
SILENT_DIAL_TIMEOUT = timedelta(hours=2)
# At most this many claims per campaign and tick: a tick stays short, and other workers take turns.
CLAIM_BATCH = 500
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

    # -- one tick ---------------------------------------------------------------------------

    def tick(self) -> TickResult:
        result = TickResult()
        now = self.now()
        self.release_stale_claims(now, result)
        self.fail_silent_dials(now, result)
        campaigns = list(
            Campaign.objects.dialling()
            .select_related("contact_center", "handoff_queue__extension")
            .prefetch_related("virtual_agents", "caller_ids", "handoff_queue__members__extension")
            .order_by("priority", "created")
        )
        result.campaigns = len(campaigns)
        # Every campaign's free slots at once, without locks: a campaign with none is passed over
        # without a transaction (most ticks of a busy dialer); one with some is counted again locked.
        dials = open_dials({bot.pk for campaign in campaigns for bot in campaign.virtual_agents.all()})
        rules = list(RegionalCallingRule.objects.all())
        queues = {campaign.handoff_queue_id for campaign in campaigns if campaign.handoff_queue_id}
        waiting = queue_load(queues) if queues else {}
        policies: dict[Any, DialerPolicy] = {}
        originations: list[Origination] = []
        # The whole tick's claims commit together: a commit waits for the disk (~2-4 ms here), and
        # one per campaign made a tick of 50 campaigns wait for 50 (bench/dialer.py). Each campaign
        # claims in a savepoint of its own, so one campaign's failure is not the others'.
        with transaction.atomic():
            for campaign in campaigns:
                center = campaign.contact_center
                if center.pk not in policies:
                    policies[center.pk] = dialer_policy(center)
                enabled = [bot for bot in campaign.virtual_agents.all() if bot.is_enabled]
                if enabled and not any(bot.free for bot in self._free(enabled, dials)):
                    continue  # busy: not paused, the next tick looks again
                originations += self._plan(campaign, waiting, policies[center.pk], rules, now, result)
        self._originate_all(originations, result)
        return result

    def _lock_free_bots(self, campaign: Campaign) -> list[_Bot]:
        """The campaign's enabled bots this worker may dial with now, and their free slots.

        Locked (FOR NO KEY UPDATE SKIP LOCKED: event ingestion's foreign-key checks on the bot do not
        wait for it) until the claim commits: two workers must not both count
        the same free slot. A bot another worker holds is skipped this tick; its slots are that
        worker's. Counted after the lock, so the count sees every claim committed before it.
        Free = capacity minus the calls it is on minus this system's dials still ringing.
        """
        enabled = [bot.pk for bot in campaign.virtual_agents.all() if bot.is_enabled]
        agents = list(
            VirtualAgent.objects.filter(pk__in=enabled, is_enabled=True)
            .select_for_update(skip_locked=True, no_key=True)
            .only("pk", "sip_uri", "max_concurrent_calls")
            .order_by("pk")
        )
        if not agents:
            return []
        return self._free(agents, open_dials([agent.pk for agent in agents]))

    def _free(self, agents: list[VirtualAgent], dials: dict[str, tuple[int, int]]) -> list[_Bot]:
        bots = []
        for agent in agents:
            key = str(agent.pk)
            ringing, ours_answered = dials.get(key, (0, 0))
            # The counter lags a dial's answer by the ingestion's commit: never count fewer than ours.
            on_calls = max(self.busy_calls(key), ours_answered)
            bots.append(_Bot(key, agent.sip_uri, max(0, agent.max_concurrent_calls - on_calls - ringing)))
        return bots

    def _plan(
        self,
        campaign: Campaign,
        waiting: dict[str, int],
        policy: DialerPolicy,
        rules: list[RegionalCallingRule],
        now: datetime,
        result: TickResult,
    ) -> list[Origination]:
        if not any(bot.is_enabled for bot in campaign.virtual_agents.all()):
            self._auto_pause(campaign, AutoPauseReason.NO_CAPACITY, result)
            return []
        if campaign.handoff_queue_id and waiting.get(str(campaign.handoff_queue_id), 0) > (
            campaign.handoff_queue_threshold
        ):
            # Bots must not hand callers to a queue that cannot answer them; resumes as it drains.
            self._auto_pause(campaign, AutoPauseReason.HANDOFF_QUEUE_FULL, result)
            return []
        if campaign.status_reason == AutoPauseReason.HANDOFF_QUEUE_FULL:
            self._resume(campaign, result)
        deferred_before = result.deferred
        try:
            with transaction.atomic():
                originations = self._lock_and_claim(campaign, policy, rules, now, result)
        except IntegrityError:
            logger.warning("dialer: campaign %s: a lead was claimed elsewhere; claim dropped", campaign.pk)
            return []
        if originations and campaign.status == CampaignStatus.AUTO_PAUSED:
            self._resume(campaign, result)
        elif (
            not originations
            and result.deferred > deferred_before
            and campaign.status == CampaignStatus.ACTIVE
        ):
            self._auto_pause(campaign, AutoPauseReason.OUTSIDE_HOURS, result)
        return originations

    def _lock_and_claim(
        self,
        campaign: Campaign,
        policy: DialerPolicy,
        rules: list[RegionalCallingRule],
        now: datetime,
        result: TickResult,
    ) -> list[Origination]:
        bots = self._lock_free_bots(campaign)
        slots = min(sum(bot.free for bot in bots), CLAIM_BATCH)
        if slots == 0:
            return []  # busy, or another worker's turn: not paused, the next tick looks again
        leads = self.store.lock_due_leads(campaign.pk, now, slots)
        if not leads:
            self._maybe_complete(campaign, result)
            return []
        return self._claim(campaign, leads, bots, policy, rules, now, result)

    def _claim(
        self,
        campaign: Campaign,
        leads: list[DueLead],
        bots: list[_Bot],
        policy: DialerPolicy,
        rules: list[RegionalCallingRule],
        now: datetime,
        result: TickResult,
    ) -> list[Origination]:
        """Checks the locked leads at claim time and writes the dials, a few statements for all."""
        center = campaign.contact_center
        hours = parse_calling_hours(campaign.calling_hours)
        phones = [lead.phone for lead in leads]
        blocked = blocked_numbers(center=center, campaign=campaign, phones=phones)
        recent = {
            row["phone"]: (row["n"], row["first"])
            for row in CallAttempt.objects.filter(
                contact_center=center, phone__in=phones, claimed_at__gt=now - timedelta(hours=24)
            )
            .values("phone")
            .annotate(n=Count("pk"), first=Min("claimed_at"))
        }
        dialled_now: Counter[str] = Counter()
        dnc: list[Any] = []
        deferred: dict[Any, datetime] = {}
        claims: list[Claim] = []
        for lead in leads:
            if lead.phone in blocked:
                dnc.append(lead.id)
                continue
            window, cap = _legal_window(policy, rules, lead.phone)
            zones = lead.timezones or [campaign.zone_name]
            if not is_open(now=now, zones=zones, hours=hours, legal=window):
                deferred[lead.id] = now + WINDOW_RECHECK
                continue
            count, first = recent.get(lead.phone, (0, None))
            if count + dialled_now[lead.phone] >= cap:
                deferred[lead.id] = (first or now) + timedelta(hours=24)
                continue
            bot = max(bots, key=lambda bot: bot.free)
            if bot.free == 0:
                break
            bot.free -= 1
            dialled_now[lead.phone] += 1
            call_id = f"{DIALER_CALL_ID_PREFIX}{uuid.uuid4()}"
            claims.append(Claim(uuid.uuid4(), lead, lead.attempts + 1, bot.id, call_id))

        if dnc:
            self.store.mark_dnc(dnc)
            result.dnc += len(dnc)
        if deferred:
            self.store.defer(deferred)
            result.deferred += len(deferred)
        if not claims:
            return []
        # The unique (lead, number) is the last guard against a double dial, whatever the locks did:
        # a clash rolls this campaign's claim back whole (_plan's savepoint); the leads stay due.
        self.store.write(center_id=center.pk, campaign_id=campaign.pk, claims=claims, now=now)
        result.claimed += len(claims)
        caller_ids = [number.number for number in campaign.caller_ids.all()]
        handoff = campaign.handoff_queue.extension.digits if campaign.handoff_queue_id else None
        agents = tuple(
            member.extension.digits
            for member in (campaign.handoff_queue.members.all() if campaign.handoff_queue_id else ())
            if member.extension_id
        )
        sip_uris = {bot.id: bot.sip_uri for bot in bots}
        center_id, campaign_id = str(center.pk), str(campaign.pk)
        return [
            Origination(
                call_id=claim.call_id,
                contact_center_id=center_id,
                sip_domain=center.sip_domain,
                campaign_id=campaign_id,
                lead_id=str(claim.lead.id),
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
                        "X-Voiso-Lead-Id": str(claim.lead.id),
                    },
                    claim.lead.context,
                ),
            )
            for claim in claims
        ]

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

    def _maybe_complete(self, campaign: Campaign, result: TickResult) -> None:
        if campaign.status != CampaignStatus.ACTIVE:
            return
        left = Lead.objects.filter(
            campaign=campaign,
            is_active=True,
            status__in=[LeadStatus.NEW, LeadStatus.RETRY, LeadStatus.IN_PROGRESS],
        )
        if not left.exists():
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
