"""Layout checks that only a browser can make: the top bar on one line, action cells in their rows."""

from __future__ import annotations

import pytest
from django.core.management import call_command

from tests.browser.conftest import snap
from tests.browser.test_portal import log_in
from voiso_byob.management.commands.seed_demo import ADMIN_EMAIL
from voiso_byob.models import ContactCenter, Membership, Role, User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PAGES = ["/", "/routing/queues/", "/routing/numbers/", "/members/", "/api-keys/", "/calls/", "/live/"]

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
    # The widest bar an administrator gets: a second center brings the switcher.
    other = ContactCenter.objects.create(name="Globex Corporation International", slug="globex")
    Membership.objects.create(
        user=User.objects.get(email=ADMIN_EMAIL), contact_center=other, role=Role.ADMINISTRATOR
    )
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 800})
    log_in(page, ADMIN_EMAIL)
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
    for path in ["/routing/queues/", "/routing/numbers/", "/members/", "/api-keys/"]:
        page.goto(path)
        for cell in page.evaluate(ACTION_CELLS):
            assert cell["display"] == "table-cell", (path, cell)
            assert abs(cell["cellTop"] - cell["rowTop"]) < 1, (path, cell)
            assert len(set(cell["linkTops"])) <= 1, (path, cell)  # Edit and Delete side by side
            checked += 1
    assert checked >= 8
    snap(page, "action-cells")
