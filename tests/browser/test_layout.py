"""Checks only a browser can make: the top bar on one line, action cells in their rows, and the
times the Live page's script writes (24-hour, in the contact center's zone)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command
from django.test import Client

from tests.browser.conftest import snap
from tests.browser.test_portal import log_in
from tests.factories import make_api_key
from voiso_byob.management.commands.seed_demo import ADMIN_EMAIL, SUPERVISOR_EMAIL
from voiso_byob.models import ContactCenter, Membership, Role, User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = [
    "/",
    "/routing/queues/",
    "/routing/numbers/",
    "/campaigns/",
    "/campaigns/dnc/",
    "/members/",
    "/api-keys/",
    "/calls/",
    "/live/",
]

# The top of every item of the top bar: on one line they are all within a few pixels.
TOPBAR_ROWS = """() => {
  const bar = document.querySelector('header.topbar');
  const items = bar.querySelectorAll('.brand, .mainnav a, .who > *');
  return {height: bar.getBoundingClientRect().height,
          tops: Array.from(items, (e) => Math.round(e.getBoundingClientRect().top))};
}"""

# Each action cell: its display, and how far its links sit from the row's first cell's text.
ACTION_CELLS = """() => Array.from(document.querySelectorAll('tbody tr'), (row) => {
  const cell = row.querySelector('td.cell-actions, td.actions');
  if (!cell) return null;
  const first = row.querySelector('td').getBoundingClientRect();
  const links = Array.from(cell.querySelectorAll('a, button'), (e) => e.getBoundingClientRect());
  return {display: getComputedStyle(cell).display,
          cellTop: cell.getBoundingClientRect().top, rowTop: first.top,
          linkTops: links.map((r) => Math.round(r.top))};
}).filter(Boolean)"""


def test_top_bar_is_one_line_at_1280px_with_a_center_switcher(browser_page) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, ADMIN_EMAIL)
    # The widest bar an administrator gets: a second center brings the switcher. Added after
    # signing in, so the session stays pinned to the demo center (no choice page at sign-in).
    other = ContactCenter.objects.create(name="Globex Corporation International", slug="globex")
    Membership.objects.create(
        user=User.objects.get(email=ADMIN_EMAIL), contact_center=other, role=Role.ADMINISTRATOR
    )
    for path in PAGES:
        page.goto(path)
        bar = page.evaluate(TOPBAR_ROWS)
        assert max(bar["tops"]) - min(bar["tops"]) <= 6, (path, bar)
        assert bar["height"] < 60, (path, bar)
    snap(page, "topbar-1280")


def test_action_cells_stay_in_their_rows(browser_page) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, ADMIN_EMAIL)
    checked = 0
    for path in ["/routing/queues/", "/routing/numbers/", "/campaigns/", "/members/", "/api-keys/"]:
        page.goto(path)
        for cell in page.evaluate(ACTION_CELLS):
            assert cell["display"] == "table-cell", (path, cell)
            assert abs(cell["cellTop"] - cell["rowTop"]) < 1, (path, cell)
            assert len(set(cell["linkTops"])) <= 1, (path, cell)  # Edit and Delete side by side
            checked += 1
    assert checked >= 8
    snap(page, "action-cells")


def test_live_writes_24_hour_times_in_the_centers_zone(browser_page) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    center = ContactCenter.objects.get(slug="acme")
    center.timezone = "Asia/Tokyo"  # never the browser's zone (UTC here), and afternoon somewhere
    center.save(update_fields=["timezone"])
    _, key = make_api_key(center, "telephony")
    now = datetime.now(UTC).replace(microsecond=0)
    started, requested = now - timedelta(seconds=20), now - timedelta(seconds=5)

    def event(kind: str, when: datetime, **data: object) -> dict[str, object]:
        return {
            "id": f"{kind}-tz",
            "type": kind,
            "call_id": "call-tz",
            "occurred_at": when.isoformat(),
            "data": data,
        }

    events = [
        event(
            "call.started", started, direction="inbound", **{"from": "+442079460999", "to": "+442079460000"}
        ),
        event("bot.connected", started + timedelta(seconds=1), virtual_agent="5001"),
        event("handoff.requested", requested, virtual_agent="5001", refer_to="<sip:4323@acme.voiso.com>"),
    ]
    response = Client().post(
        "/api/v1/telephony/events",
        {"events": events},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {key}",
    )
    assert response.status_code == 202, response.content

    page = browser_page
    log_in(page, SUPERVISOR_EMAIL)
    page.goto("/live/")
    handoff_time = page.locator("#live-handoffs tbody time").first
    call_time = page.locator("#live-calls time").first
    tokyo = ZoneInfo("Asia/Tokyo")
    # The script rewrote both (its rows replace the server's), as HH:MM:SS in Tokyo.
    assert call_time.inner_text() == started.astimezone(tokyo).strftime("%H:%M:%S")
    assert handoff_time.inner_text() == requested.astimezone(tokyo).strftime("%H:%M:%S")
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in page.locator("main time").all_inner_texts())
    snap(page, "live-times")
