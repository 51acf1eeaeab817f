"""A tick claims for all its campaigns at once: slots shared by priority, one claim for all, the
same decisions through the ORM store (the reference) and the PostgreSQL one."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.db import connection, transaction

from campaigns import dialer as dialer_module
from campaigns.claims import OrmClaims, PostgresClaims
from campaigns.dialer import CLAIM_TIMEOUT, SWEEP_EVERY, Dialer
from campaigns.models import CallAttempt, Campaign, DialerPolicy, DoNotCall, Lead, LeadStatus
from campaigns.services import LeadRow, create_campaign, import_leads, start_campaign
from tests.campaigns.test_dialer import Recorder
from tests.factories import make_center
from tests.reporting.factories import make_bot
from virtual_agents.models import VirtualAgent
from voiso_byob.models import ContactCenter

NOON_UTC = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York

STORES = ["orm", "postgres"]


@pytest.fixture(autouse=True)
def frozen_clock(time_machine) -> None:
    time_machine.move_to(NOON_UTC, tick=False)


def make_dialer(gateway: Recorder, store: str = "", now: datetime = NOON_UTC) -> Dialer:
    worker = Dialer(gateway=gateway, now=lambda: now, busy_calls=lambda _: 0)
    if store:
        if store == "postgres" and connection.vendor != "postgresql":
            pytest.skip("the PostgreSQL store needs PostgreSQL")
        worker.store = PostgresClaims() if store == "postgres" else OrmClaims()
    return worker


def running(
    center: ContactCenter, name: str, bots: list[VirtualAgent], *phones: str, **fields: Any
) -> Campaign:
    campaign = create_campaign(center=center, by="tests", name=name, virtual_agents=bots, **fields)
    import_leads(campaign=campaign, rows=[LeadRow(phone) for phone in phones], by="tests")
    return start_campaign(campaign=campaign, by="tests")


def capacity(bot: VirtualAgent, calls: int) -> VirtualAgent:
    VirtualAgent.objects.filter(pk=bot.pk).update(max_concurrent_calls=calls)
    bot.refresh_from_db()
    return bot


@pytest.mark.django_db
@pytest.mark.parametrize("store", STORES)
def test_every_campaign_claims_in_the_one_tick(acme: ContactCenter, store: str) -> None:
    campaigns = [
        running(
            acme, f"C{n}", [capacity(make_bot(acme, f"Bot {n}"), 2)], *(f"+1212555{n}10{i}" for i in range(3))
        )
        for n in range(4)
    ]
    gateway = Recorder()
    result = make_dialer(gateway, store).tick()
    # Two slots each: two dials each, each campaign's own bot and leads.
    assert result.originated == 8
    for campaign in campaigns:
        placed = [o for o in gateway.placed if o.campaign_id == str(campaign.pk)]
        assert len(placed) == 2
        assert {o.virtual_agent_id for o in placed} == {str(campaign.virtual_agents.get().pk)}
        assert {o.lead_id for o in placed} <= {str(pk) for pk in campaign.leads.values_list("pk", flat=True)}
    assert Lead.objects.filter(status=LeadStatus.IN_PROGRESS, attempts=1).count() == 8


@pytest.mark.django_db
@pytest.mark.parametrize("store", STORES)
def test_a_shared_bot_serves_the_first_campaign_first(acme: ContactCenter, store: str) -> None:
    bot = capacity(make_bot(acme, "Shared"), 3)
    second = running(acme, "Second", [bot], *(f"+121255501{i:02d}" for i in range(5)), priority=200)
    first = running(acme, "First", [bot], "+12125550200", "+12125550201", priority=100)
    gateway = Recorder()
    assert make_dialer(gateway, store).tick().originated == 3
    by_campaign = [o.campaign_id for o in gateway.placed]
    assert by_campaign.count(str(first.pk)) == 2 and by_campaign.count(str(second.pk)) == 1
    # Never more dials than the bot's slots, whatever the campaigns: the next tick has none.
    assert make_dialer(gateway, store).tick().originated == 0


@pytest.mark.django_db
@pytest.mark.parametrize("store", STORES)
def test_a_tick_claims_at_most_tick_claims_by_priority(acme: ContactCenter, store: str, monkeypatch) -> None:
    monkeypatch.setattr(dialer_module, "TICK_CLAIMS", 3)
    campaigns = [
        running(
            acme,
            f"C{n}",
            [capacity(make_bot(acme, f"Bot {n}"), 5)],
            *(f"+1212555{n}10{i}" for i in range(2)),
            priority=100 + n,
        )
        for n in range(3)
    ]
    gateway = Recorder()
    assert make_dialer(gateway, store).tick().originated == 3
    counts = [sum(o.campaign_id == str(c.pk) for o in gateway.placed) for c in campaigns]
    assert counts == [2, 1, 0]
    assert make_dialer(gateway, store).tick().originated == 3  # the rest, the next tick


@pytest.mark.django_db
@pytest.mark.parametrize("store", STORES)
def test_a_campaign_waiting_for_retries_takes_no_share_of_the_tick(
    acme: ContactCenter, store: str, monkeypatch
) -> None:
    monkeypatch.setattr(dialer_module, "TICK_CLAIMS", 2)
    waiting = running(acme, "Waiting", [capacity(make_bot(acme, "A"), 5)], "+12125550100", priority=1)
    Lead.objects.filter(campaign=waiting).update(
        status=LeadStatus.RETRY, next_attempt_at=NOON_UTC + timedelta(hours=1)
    )
    later = running(
        acme, "Later", [capacity(make_bot(acme, "B"), 5)], "+12125550200", "+12125550201", priority=2
    )
    gateway = Recorder()
    assert make_dialer(gateway, store).tick().originated == 2
    assert {o.campaign_id for o in gateway.placed} == {str(later.pk)}
    waiting.refresh_from_db()
    assert waiting.status == "active"  # a lead is left (its retry): not completed


@pytest.mark.django_db
@pytest.mark.parametrize("store", STORES)
def test_claim_time_checks_across_campaigns(acme: ContactCenter, store: str) -> None:
    """DNC of the center and of one campaign, windows and the daily cap counted across the campaigns
    that claim in the same tick."""
    DialerPolicy.objects.update_or_create(contact_center=acme, defaults={"daily_cap": 1})
    one = running(
        acme, "One", [capacity(make_bot(acme, "A"), 10)], "+12125550100", "+12125550101", "+12125550102"
    )
    two = running(
        acme, "Two", [capacity(make_bot(acme, "B"), 10)], "+12125550100", "+12125550103", "+13105550100"
    )
    DoNotCall.objects.create(contact_center=acme, phone="+12125550101")  # the center's list
    DoNotCall.objects.create(contact_center=acme, campaign=two, phone="+12125550103")  # Two's own
    DoNotCall.objects.create(contact_center=acme, campaign=two, phone="+12125550102")  # Two's, not One's
    gateway = Recorder()
    result = make_dialer(gateway, store).tick()
    placed = sorted((o.campaign_id, o.to) for o in gateway.placed)
    # +12125550100 is in both: the cap of 1 a day lets one campaign dial it this tick.
    assert placed == sorted([(str(one.pk), "+12125550100"), (str(one.pk), "+12125550102")])
    assert result.dnc == 2
    assert set(Lead.objects.filter(status=LeadStatus.DNC).values_list("campaign__name", "phone")) == {
        ("One", "+12125550101"),
        ("Two", "+12125550103"),
    }
    # The capped lead waits a day from the first dial; Los Angeles (07:00) waits for its window.
    capped = Lead.objects.get(campaign=two, phone="+12125550100")
    assert capped.next_attempt_at == NOON_UTC + timedelta(hours=24)
    assert Lead.objects.get(phone="+13105550100").next_attempt_at > NOON_UTC


@pytest.mark.django_db
@pytest.mark.parametrize("store", STORES)
def test_a_clash_leaves_out_that_claim_only(acme: ContactCenter, store: str) -> None:
    campaign = running(acme, "C", [capacity(make_bot(acme, "A"), 5)], "+12125550100", "+12125550101")
    lead = campaign.leads.get(phone="+12125550100")
    # An attempt 1 written without counting it on the lead (what a broken lock protocol would do).
    CallAttempt.objects.create(
        contact_center=acme, campaign=campaign, lead=lead, number=1, phone=lead.phone, call_id="other"
    )
    gateway = Recorder()
    assert make_dialer(gateway, store).tick().originated == 1
    assert [o.to for o in gateway.placed] == ["+12125550101"]
    lead.refresh_from_db()
    assert (lead.status, lead.attempts) == (LeadStatus.NEW, 0)


@pytest.mark.django_db
def test_a_worker_sweeps_stale_claims_every_sweep_every(acme: ContactCenter) -> None:
    campaign = running(acme, "C", [capacity(make_bot(acme, "A"), 5)], "+12125550100")
    crashed = make_dialer(Recorder())
    crashed._originate_all = lambda originations, result: None  # claimed, died before dialling
    crashed.tick()
    clock = [NOON_UTC + CLAIM_TIMEOUT + timedelta(seconds=1)]
    worker = Dialer(gateway=Recorder(), now=lambda: clock[0], busy_calls=lambda _: 0)
    worker._swept_at = clock[0] - timedelta(seconds=1)  # it swept a second ago
    assert worker.tick().released == 0
    clock[0] += SWEEP_EVERY
    assert worker.tick().released == 1
    assert campaign.attempts.get().originated_at == clock[0]  # dialled afresh, once


# --- PostgreSQL only -----------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db
def test_a_tick_sends_the_same_statements_for_3_or_12_campaigns(acme: ContactCenter) -> None:
    def campaigns_claiming(count: int, start: int) -> None:
        for n in range(start, start + count):
            running(acme, f"C{n}", [capacity(make_bot(acme, f"Bot {n}"), 1)], f"+1212555{n:04d}")

    def statements_of_a_tick() -> int:
        with CaptureQueries() as queries:
            assert make_dialer(Recorder()).tick().originated > 0
        return queries.count

    campaigns_claiming(3, 0)
    few = statements_of_a_tick()
    Campaign.objects.update(status="paused")  # those three no longer dial
    campaigns_claiming(12, 100)
    assert statements_of_a_tick() == few


class CaptureQueries:
    def __enter__(self) -> CaptureQueries:
        self.count = 0
        self._wrapper = connection.execute_wrapper(self._count)
        self._wrapper.__enter__()
        return self

    def _count(self, execute: Any, sql: str, *args: Any) -> Any:
        self.count += 1
        return execute(sql, *args)

    def __exit__(self, *exc: Any) -> None:
        self._wrapper.__exit__(*exc)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_bot_another_worker_holds_is_skipped_for_the_next_campaigns(monkeypatch) -> None:
    monkeypatch.setattr(dialer_module, "TICK_CLAIMS", 2)
    center = make_center()
    bots = [capacity(make_bot(center), 5) for _ in range(2)]
    first = running(center, "First", [bots[0]], "+12125550100", "+12125550101", priority=1)
    second = running(center, "Second", [bots[1]], "+12125550200", "+12125550201", priority=2)
    held, release = threading.Event(), threading.Event()

    def other_worker() -> None:
        # Holds the first campaign's bot as a worker mid-claim does.
        try:
            with transaction.atomic():
                VirtualAgent.objects.select_for_update(no_key=True).get(pk=bots[0].pk)
                held.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=other_worker)
    thread.start()
    try:
        assert held.wait(10)
        gateway = Recorder()
        # TICK_CLAIMS would be the first campaign's: its bot is held, so the next one's is taken.
        assert make_dialer(gateway).tick().originated == 2
        assert {o.campaign_id for o in gateway.placed} == {str(second.pk)}
    finally:
        release.set()
        thread.join()
    assert Lead.objects.filter(campaign=first, attempts=0).count() == 2


@pytest.mark.postgres
@pytest.mark.django_db
def test_the_claim_reaches_due_leads_by_their_index_in_a_generic_plan(acme: ContactCenter) -> None:
    """The claim runs prepared; after five runs PostgreSQL may keep a plan made without the
    parameters' values. That plan must still find each campaign's due leads by campaigns_lead_due
    (with the statuses as a parameter it read every lead of the campaign and sorted them)."""
    from campaigns.claims import _LOCK_DUE_LEADS

    campaign = running(acme, "C", [capacity(make_bot(acme, "A"), 5)], "+12125550100")
    Lead.objects.bulk_create(
        Lead(contact_center=acme, campaign=campaign, phone=f"+1212{n:07d}", status=LeadStatus.DONE)
        for n in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE campaigns_lead")
        cursor.execute("SET LOCAL plan_cache_mode = force_generic_plan")
        numbered = _LOCK_DUE_LEADS
        for number in (1, 2, 3):
            numbered = numbered.replace("%b", f"${number}", 1)
        cursor.execute(f"PREPARE claim_check AS {numbered}")
        cursor.execute(
            "EXPLAIN (FORMAT JSON) EXECUTE claim_check(%s::uuid[], %s::int[], %s)",
            [[campaign.pk], [5], NOON_UTC],
        )
        [[[plan]]] = cursor.fetchall()
        cursor.execute("DEALLOCATE claim_check")
    indexes = {node.get("Index Name") for node in _nodes(plan["Plan"])}
    assert "campaigns_lead_due" in indexes, plan
    assert not any(
        node["Node Type"] == "Seq Scan" and node.get("Relation Name") == "campaigns_lead"
        for node in _nodes(plan["Plan"])
    )


def _nodes(node: dict[str, Any]) -> Any:
    yield node
    for child in node.get("Plans", []):
        yield from _nodes(child)
