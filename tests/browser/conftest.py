"""Real Chromium (Debian's /usr/bin/chromium) driven by Playwright; never a downloaded browser."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections

# The provider stand-ins, for walking the connect wizard against them.
from tests.virtual_agents.conftest import elevenlabs_fake, retell_fake, vapi_fake  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
# The machine has no outside network: keep Chromium from trying to reach it.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


# Django template syntax that reached the browser: a multi-line `{# … #}` (Django's comment is one
# line; longer ones are `{% comment %}`), a tag split over lines, or a template served unrendered.
TEMPLATE_TEXT = re.compile(r"\{[#%]|[#%]\}")


def template_text_in(html: str) -> list[str]:
    """Each piece of template syntax in `html`, with a little of what surrounds it."""
    return [html[max(0, m.start() - 40) : m.end() + 40] for m in TEMPLATE_TEXT.finditer(html)]


def watch_for_template_text(page) -> list[str]:
    """Check every HTML document and htmx fragment the page receives; return the list of findings.

    Bodies are read as they arrive: once the page has moved on, Chromium may have dropped them.
    """
    found: list[str] = []

    def check(response) -> None:
        if "text/html" not in response.headers.get("content-type", ""):
            return
        try:
            body = response.text()
        except Exception:  # a redirect or an aborted load has no body to check
            return
        found.extend(f"{response.url}: …{text}…" for text in template_text_in(body))

    page.on("response", check)
    return found


# The pages are tested under the policy the server sends (Playwright's bypass_csp stays off). So a
# test's page.wait_for_function takes a function, "() => …": a bare expression is eval'd in the page
# while polling, which the policy refuses ('unsafe-eval').
#
# Reported by the page itself: every `securitypolicyviolation` event, in any document it loads.
# Playwright adds this script through the DevTools protocol, so the policy does not refuse it.
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (event) => {
  window.__reportCspViolation(
    `${event.effectiveDirective} refused ${event.blockedURI || "inline"} in ${event.documentURI}` +
      ` (${event.sourceFile || "?"}:${event.lineNumber}) ${event.sample || ""}`
  );
});
"""


def watch_for_csp_violations(context, page, found: list[str]) -> None:
    """Add to `found` what fails a test against the Content-Security-Policy: each violation the page
    reports (as an event, or in Chromium's console), each HTML document served without the policy."""
    context.expose_function("__reportCspViolation", lambda text: found.append(f"violation: {text}"))
    context.add_init_script(REPORT_CSP_VIOLATIONS)

    def console(message) -> None:
        if "Content Security Policy" in message.text:
            found.append(f"console: {message.text}")

    def document(response) -> None:
        if response.request.resource_type != "document" or response.status in (301, 302, 303):
            return
        policy = response.headers.get("content-security-policy", "")
        if "script-src 'self'" not in policy or "unsafe" in policy:
            found.append(f"{response.url}: served with Content-Security-Policy {policy!r}")

    page.on("console", console)
    page.on("response", document)


@pytest.fixture
def csp_violations() -> list[str]:
    """What `browser_page` found against the policy; a test that provokes a violation on purpose
    reads and clears it."""
    return []


@pytest.fixture
def browser_page(live_server, csp_violations: list[str]) -> Iterator[object]:
    # Playwright's sync API runs an event loop in this thread; the test's own
    # ORM calls are still synchronous and safe here.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        context = browser.new_context(base_url=live_server.url)
        page = context.new_page()
        page.set_default_timeout(15_000)
        template_text = watch_for_template_text(page)
        watch_for_csp_violations(context, page, csp_violations)
        try:
            yield page
            # What the page shows last, as rendered (a `{#` put there by script counts too).
            template_text.extend(
                f"{page.url} (rendered): …{text}…" for text in template_text_in(page.content())
            )
        finally:
            ARTIFACTS.mkdir(exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "last-browser-test.png"), full_page=True)
            context.close()
            browser.close()
            # Inside this block Playwright runs an event loop in the thread, so Django keeps the
            # test's database connection in a context variable rather than the thread's storage:
            # close it here, or it outlives the test (and the test database's teardown warns).
            connections.close_all()
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        if template_text:
            pytest.fail("template syntax in a rendered page:\n" + "\n".join(template_text), pytrace=False)
        if csp_violations:
            pytest.fail("against the Content-Security-Policy:\n" + "\n".join(csp_violations), pytrace=False)


def snap(page, name: str) -> None:
    """A full-page screenshot in test-artifacts/, for a person to look at what the test saw."""
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
