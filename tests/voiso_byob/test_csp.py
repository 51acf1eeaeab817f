"""The Content-Security-Policy (django-csp, settings.CONTENT_SECURITY_POLICY): on every response,
without 'unsafe-inline' or 'unsafe-eval', and nothing in templates, pages or scripts that it refuses.

Every portal page is walked in tests/voiso_byob/test_templates_render.py (with `inline_code_in`);
the browser tests (tests/browser/conftest.py) fail on any violation Chromium reports.
"""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib import admin as django_admin
from django.test import Client
from django.urls import reverse

from voiso_byob.models import User

TEMPLATES_DIR = Path(settings.BASE_DIR) / "templates"
STATIC_DIR = Path(settings.BASE_DIR) / "static"
PROJECT_APPS = {"voiso_byob", "virtual_agents", "routing", "campaigns", "reporting"}

# Script types a browser does not run: data blocks (Django's json_script) are not refused.
DATA_SCRIPT_TYPES = {"application/json", "application/ld+json"}
URL_ATTRIBUTES = {"href", "src", "action", "formaction"}
# An event name followed by `[…]` at the start of a trigger (not a `from:input[type=search]` selector).
TRIGGER_FILTER = re.compile(r"(?:^|,)\s*[\w:.-]+\[")


class _InlineCode(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        where = self.get_starttag_text() or tag
        if tag == "script" and not attributes.get("src") and attributes.get("type") not in DATA_SCRIPT_TYPES:
            self.found.append(f"inline <script>: {where}")
        if tag == "style":
            self.found.append(f"<style> block: {where}")
        for name, value in attrs:
            if name.startswith("on") or name.startswith("hx-on"):
                self.found.append(f"{name}= handler: {where}")
            elif name == "style":
                self.found.append(f"style= attribute: {where}")
            elif name in URL_ATTRIBUTES and (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"javascript: URL: {where}")
            elif name == "hx-trigger" and TRIGGER_FILTER.search(value or ""):
                # A trigger filter (`change[…]`) is evaluated as code: htmx needs eval for it.
                self.found.append(f"hx-trigger filter: {where}")
            elif name in {"hx-vals", "hx-vars"} and ("js:" in (value or "") or name == "hx-vars"):
                self.found.append(f"{name} evaluated as code: {where}")


def inline_code_in(html: str) -> list[str]:
    """Each inline script, style, handler or javascript: URL in `html` (what the policy refuses)."""
    parser = _InlineCode()
    parser.feed(html)
    parser.close()
    return parser.found


def test_the_check_finds_each_kind_of_inline_code() -> None:
    assert len(inline_code_in("<script>alert(1)</script>")) == 1
    assert len(inline_code_in("<style>a { color: red }</style>")) == 1
    assert len(inline_code_in('<button onclick="go()">x</button>')) == 1
    assert len(inline_code_in('<form onsubmit="return confirm(1)">')) == 1
    assert len(inline_code_in('<div style="width: 10%"></div>')) == 1
    assert len(inline_code_in('<div hx-on::before-swap="x()"></div>')) == 1
    assert len(inline_code_in('<a href=" JavaScript:go()">x</a>')) == 1
    assert len(inline_code_in("<form hx-trigger=\"change[target.type !== 'search']\">")) == 1
    assert len(inline_code_in('<div hx-vals="js:{a: 1}"></div>')) == 1
    # What the templates use instead passes.
    assert not inline_code_in('<script src="/static/js/portal.js" defer data-time-zone="UTC"></script>')
    assert not inline_code_in('<script id="points" type="application/json">{"a": 1}</script>')
    assert not inline_code_in('<div class="progress-fill" data-place-width="40%"></div>')
    assert not inline_code_in('<form data-confirm="Stop it?" hx-trigger="change, every 5s">')
    assert not inline_code_in('<form hx-trigger="change, input changed delay:1s from:input[type=search]">')
    assert not inline_code_in("<div hx-vals='{\"a\": 1}'></div>")


def test_no_template_holds_inline_code() -> None:
    """Every template file, partials and includes too, read as source (tags left in place)."""
    found = [
        f"{path.relative_to(TEMPLATES_DIR)}: {text}"
        for path in sorted(TEMPLATES_DIR.rglob("*.html"))
        for text in inline_code_in(path.read_text())
    ]
    assert not found, "\n".join(found)


# Script that writes markup with styles or handlers in it, or runs strings as code.
REFUSED_IN_SCRIPT = re.compile(
    r"""setAttribute\(\s*["'](style|on\w+)["']"""
    r"""|\beval\("""
    r"""|new\s+Function\("""
    r"""|set(Timeout|Interval)\(\s*["'`]"""
    r"""|(innerHTML|outerHTML|insertAdjacentHTML)\b[^;\n]*(style=|\son\w+=)"""
)


def test_no_project_script_writes_inline_styles_or_runs_strings() -> None:
    # `element.style.x = …` (CSSOM) is allowed by the policy; a style="" attribute written as markup is not.
    scripts = [path for path in STATIC_DIR.rglob("*.js") if "vendor" not in path.parts]
    assert scripts
    found = [
        f"{path.relative_to(STATIC_DIR)}:{number}: {line.strip()}"
        for path in scripts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if REFUSED_IN_SCRIPT.search(line)
    ]
    assert not found, "\n".join(found)
    assert REFUSED_IN_SCRIPT.search("node.setAttribute('style', 'width: 1px')")
    assert REFUSED_IN_SCRIPT.search('box.innerHTML = `<b style="x">`')
    assert not REFUSED_IN_SCRIPT.search("element.style.width = element.dataset.placeWidth;")


def directives(policy: str) -> dict[str, list[str]]:
    return {name: values for name, *values in (part.split() for part in policy.split(";") if part.strip())}


def test_the_policy_as_sent(client: Client, db) -> None:
    response = client.get(reverse("login"))
    assert response.status_code == 200
    assert directives(response["Content-Security-Policy"]) == {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "media-src": ["'self'", "https:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
    assert "Content-Security-Policy-Report-Only" not in response


def test_htmx_runs_without_eval_or_injected_styles() -> None:
    base = (TEMPLATES_DIR / "base.html").read_text()
    config = re.search(r"""<meta name="htmx-config" content='([^']*)'>""", base)
    assert config and json.loads(config.group(1)) == {
        "allowEval": False,
        "includeIndicatorStyles": False,
        "attributesToSettle": ["class", "width", "height"],  # htmx's default has "style" too
    }
    # htmx reads its config when it loads: the meta tag must come before the script.
    assert base.index('name="htmx-config"') < base.index("vendor/htmx-")


@pytest.mark.parametrize("path", ["/api/v1/queues/", "/api/schema/", "/api/v1/nope/"])
def test_api_answers_carry_the_policy_too(client: Client, db, path: str) -> None:
    response = client.get(path)
    assert response.status_code in {200, 401, 403, 404}
    assert directives(response["Content-Security-Policy"])["script-src"] == ["'self'"]


def test_swagger_ui_loads_its_start_up_script_as_a_file(client: Client, db) -> None:
    page = client.get("/api/docs/")
    assert page.status_code == 200
    html = page.content.decode()
    assert not inline_code_in(html)
    assert "unsafe" not in page["Content-Security-Policy"]
    script_url = re.search(r'<script src="(/api/docs/\?[^"]*script=[^"]*)"', html).group(1)
    script = client.get(script_url.replace("&amp;", "&"))
    assert script.status_code == 200
    assert script["Content-Type"].startswith("application/javascript")
    assert "SwaggerUIBundle(" in script.content.decode()


@pytest.fixture
def staff(db) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("staff@voiso.example", "staff-pass-1234"))
    return client


def test_admin_pages_need_no_relaxation(staff: Client) -> None:
    """Django's admin templates hold no inline code for our models: the same policy serves them."""
    urls = ["/admin/", "/admin/password_change/"]
    for model in django_admin.site._registry:
        if model._meta.app_label in PROJECT_APPS:
            name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
            urls += [reverse(f"{name}_changelist"), reverse(f"{name}_add")]
    found = []
    for url in urls:
        response = staff.get(url)
        assert response.status_code in {200, 403}, url  # 403: models whose admin refuses adding
        assert "unsafe" not in response["Content-Security-Policy"], url
        found += [f"{url}: {text}" for text in inline_code_in(response.content.decode())]
    assert not found, "\n".join(found)


def test_admin_login_carries_the_policy(client: Client, db) -> None:
    response = client.get("/admin/login/")
    assert response.status_code == 200
    assert "unsafe" not in response["Content-Security-Policy"]
    assert not inline_code_in(response.content.decode())
