"""Every portal page in Chromium under the Content-Security-Policy the server sends, enforced:
conftest's `browser_page` fails any browser test on a violation. The interactive pages have their
own tests (flow builder, Live, reports, campaigns, calls); this one checks the watcher itself, walks
every page, Swagger UI and the admin, and works what the templates' inline handlers used to do."""

from __future__ import annotations

import re
import time

import pytest
from django.core.management import call_command
from django.utils import timezone

from routing.models import Queue
from tests.browser.conftest import snap
from tests.browser.test_portal import log_in
from tests.factories import make_api_key
from tests.voiso_byob.test_templates_render import portal_pages
from voiso_byob.management.commands.seed_demo import ADMIN_EMAIL
from voiso_byob.models import ApiKey, ContactCenter, Membership, Role, User

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Elements whose size or place the server computed, and whether portal.js applied it.
PLACED = """() => Array.from(
  document.querySelectorAll('[data-place-left], [data-place-top], [data-place-width], [data-place-height]'),
  (e) => ['left', 'top', 'width', 'height']
    .filter((p) => e.dataset['place' + p[0].toUpperCase() + p.slice(1)] !== undefined)
    .map((p) => ({p, want: e.dataset['place' + p[0].toUpperCase() + p.slice(1)], got: e.style[p]})),
).flat()"""


def wait_for(page, condition, seconds: float = 5.0) -> None:
    # Playwright's sync API delivers the page's events while it is called: wait through it.
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        page.wait_for_timeout(50)


def test_the_policy_is_enforced_and_a_violation_is_caught(browser_page, csp_violations: list[str]) -> None:
    page = browser_page
    page.goto("/accounts/login/")
    # What a stray template or script would do: run inline code, write a style attribute.
    page.evaluate(
        """() => {
          const script = document.createElement('script');
          script.textContent = 'window.ranInline = true';
          document.body.append(script);
          document.body.setAttribute('style', 'background-color: rgb(255, 0, 0)');
        }"""
    )
    wait_for(page, lambda: len(csp_violations) >= 2)
    assert page.evaluate("() => window.ranInline") is None  # refused, not run
    assert page.evaluate("() => getComputedStyle(document.body).backgroundColor") != "rgb(255, 0, 0)"
    found = "\n".join(csp_violations)
    assert "violation: script-src-elem refused inline" in found, found
    assert "violation: style-src-attr refused inline" in found, found
    csp_violations.clear()  # provoked on purpose: the fixture must not fail this test


def test_every_portal_page_runs_under_the_policy(browser_page) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    demo = ContactCenter.objects.get(slug="acme")
    pages = portal_pages(demo)
    page = browser_page
    page.set_viewport_size({"width": 1280, "height": 900})
    log_in(page, ADMIN_EMAIL)
    placed = 0
    for path in pages:
        page.goto(path)
        page.wait_for_load_state("load")
        # Sizes and places from data attributes, applied by script (no style="" in any page).
        checks = page.evaluate(PLACED)
        assert all(check["got"] == check["want"] for check in checks), (path, checks)
        placed += len(checks)
        if re.fullmatch(r"/routing/flows/[0-9a-f-]{36}/", path):  # the flow builder
            lefts = page.evaluate(
                "() => Array.from(document.querySelectorAll('.canvas .node'), (e) => e.offsetLeft)"
            )
            tops = page.evaluate(
                "() => Array.from(document.querySelectorAll('.canvas .node'), (e) => e.offsetTop)"
            )
            assert len(set(zip(lefts, tops, strict=True))) == len(lefts) > 1, (lefts, tops)  # not piled up
            snap(page, "csp-flow-builder")
    assert placed > 10  # the flow builder's boxes and the campaigns' progress bars were among them


def test_swagger_ui_draws_the_api_under_the_policy(browser_page) -> None:
    page = browser_page
    page.goto("/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    page.wait_for_selector(".opblock-tag-section")
    assert page.locator(".opblock").count() > 20
    page.locator(".opblock-summary").first.click()  # an operation opens: Swagger UI's own script runs
    page.wait_for_selector(".opblock.is-open")
    snap(page, "csp-swagger-ui")


def test_admin_runs_under_the_policy(browser_page) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    User.objects.create_superuser("staff@voiso.example", "staff-pass-1234")
    queue = Queue.objects.filter(contact_center__slug="acme").first()
    page = browser_page
    page.goto("/admin/login/")
    page.fill("input[name=username]", "staff@voiso.example")
    page.fill("input[name=password]", "staff-pass-1234")
    page.click("input[type=submit]")
    page.wait_for_url("**/admin/")
    page.goto("/admin/voiso_byob/contactcenter/")  # list_editable, actions
    page.check("#action-toggle")
    assert page.locator("tr.selected").count() >= 1  # admin's actions.js ran
    page.goto(f"/admin/routing/queue/{queue.pk}/change/")
    page.wait_for_selector(".selector .selector-available")  # filter_horizontal, built by SelectFilter2.js
    snap(page, "csp-admin-queue")


def test_confirmations_and_the_center_switcher_work_without_inline_handlers(browser_page) -> None:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    demo = ContactCenter.objects.get(slug="acme")
    key, _ = make_api_key(demo, "read")
    page = browser_page
    log_in(page, ADMIN_EMAIL)
    other = ContactCenter.objects.create(name="Globex", slug="globex")
    Membership.objects.create(
        user=User.objects.get(email=ADMIN_EMAIL), contact_center=other, role=Role.ADMINISTRATOR
    )

    # Revoke asks first (data-confirm): dismissed, nothing happens; accepted, the key is revoked.
    page.goto("/api-keys/")
    revoke = page.locator("tr", has_text=key.name).locator("button:has-text('Revoke')")
    page.once("dialog", lambda dialog: dialog.dismiss())
    revoke.click()
    page.wait_for_timeout(300)
    key.refresh_from_db()
    assert key.revoked_at is None
    page.once("dialog", lambda dialog: dialog.accept())
    revoke.click()
    page.wait_for_url("**/api-keys/")
    wait_for(page, lambda: ApiKey.objects.get(pk=key.pk).revoked_at is not None)
    assert ApiKey.objects.get(pk=key.pk).revoked_at <= timezone.now()

    # The switcher sends its form on a choice (data-submit-on-change).
    page.select_option("#center-switch", "globex")
    page.wait_for_selector(".message:has-text('Now working in Globex.')")
    assert page.locator("#center-switch option[selected]").inner_text() == "Globex"


def test_calls_search_asks_once_as_you_type_not_again_on_leaving(browser_page) -> None:
    """The trigger filter `change[target.type !== 'search']` needed eval; portal.js drops the search
    box's `change` instead (data-search-asks-on-input), and the other filters still ask on change."""
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    page = browser_page
    log_in(page, ADMIN_EMAIL)
    page.goto("/calls/")
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/calls/?" in request.url else None)
    with page.expect_response("**/calls/?*number=5309*"):
        page.fill("input[name=number]", "5309")
    page.locator("input[name=number]").blur()  # fires `change`
    page.wait_for_timeout(800)  # longer than the search box's 400 ms delay
    assert len(asked) == 1, asked
    with page.expect_response("**/calls/?*direction=outbound*"):
        page.select_option("select[name=direction]", "outbound")
    assert len(asked) == 2, asked
