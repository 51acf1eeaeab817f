"""Several dialer workers at once on PostgreSQL: every lead dialled once, never above capacity."""

from __future__ import annotations

import threading
from collections import Counter
from datetime import UTC, datetime

import pytest
from django.db import connection

from campaigns.dialer import Dialer
from campaigns.gateways import Origination
from campaigns.models import CallAttempt, Lead
from campaigns.services import LeadRow, create_campaign, import_leads, start_campaign
from tests.factories import make_center
from tests.reporting.factories import make_bot
from virtual_agents.models import VirtualAgent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

NOON_UTC = datetime(2026, 1, 7, 15, 0, tzinfo=UTC)  # 10:00 in New York


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.placed: Counter[str] = Counter()

    def originate(self, origination: Origination) -> None:
        with self.lock:
            self.placed[origination.lead_id] += 1

    def close(self) -> None:
        pass


@pytest.mark.parametrize("workers", [2, 4])
def test_workers_never_dial_a_lead_twice(workers: int, time_machine) -> None:
    time_machine.move_to(NOON_UTC, tick=False)
    center = make_center()
    bots = [make_bot(center) for _ in range(2)]
    VirtualAgent.objects.filter(pk__in=[bot.pk for bot in bots]).update(max_concurrent_calls=150)
    campaign = create_campaign(center=center, by="tests", name="Load", virtual_agents=bots)
    rows = [LeadRow(f"+1212555{n:04d}") for n in range(400)]
    import_leads(campaign=campaign, rows=rows, by="tests")
    start_campaign(campaign=campaign, by="tests")

    tally = Tally()
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def work() -> None:
        try:
            worker = Dialer(gateway=tally, now=lambda: NOON_UTC, busy_calls=lambda _: 0)
            barrier.wait()
            for _ in range(3):
                worker.tick()
        except BaseException as exc:
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    # 300 slots in all: exactly that many dials, each lead at most once, each attempt row once.
    assert sum(tally.placed.values()) == 300
    assert max(tally.placed.values()) == 1
    assert CallAttempt.objects.count() == 300
    assert Lead.objects.filter(attempts=1).count() == 300
