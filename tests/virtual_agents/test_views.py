"""Virtual agents pages: the role matrix, tenants, BYOB off, the connect wizard, detail, Django admin.

The provider is the local Vapi stand-in; the raw API key must never reach a page or a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.db.models import TextField
from django.db.models.functions import Cast
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from routing.models import Queue
from routing.services import delete_queue
from tests.conftest import Persona
from tests.factories import PASSWORD, make_center, make_member
from tests.virtual_agents.fake_providers import API_KEYS, VapiFake
from virtual_agents import services
from virtual_agents.models import HandoffTarget, ProviderIntegration, VirtualAgent
from voiso_byob.models import AuditEvent, ContactCenter, Extension, Membership, Role, User

VAPI_KEY = API_KEYS["vapi"]
WRONG_KEY = "vapi-wrong-key-9d8c7b6a-5f4e-3d2c-1b0a-feedfacecafe"
NEW_VAPI_KEY = "vapi-test-rotated-0f1e2d3c-4b5a-6978-8a9b-ab12cd34ef56"
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def live(vapi: ProviderIntegration, sales: Queue, support: Queue) -> VirtualAgent:
    """Connected at Vapi, handing off to Sales and Support."""
    return services.create_virtual_agent(
        integration=vapi,
        by="tests",
        name="Night desk",
        provider_agent_id="asst-02",
        extension="7002",
        handoff_targets=["4323", "4400"],
        connect=True,
    )


@pytest.fixture
def idle(vapi: ProviderIntegration, sales: Queue) -> VirtualAgent:
    """Created, not connected."""
    return services.create_virtual_agent(
        integration=vapi, by="tests", name="Front desk", provider_agent_id="asst-01", handoff_targets=["4323"]
    )


@pytest.fixture
def initech_admin(db: None) -> Persona:
    """Administrator of a third center that has BYOB on: acme's objects are 404 there."""
    center = make_center("initech", name="Initech", byob_enabled=True)
    return login(Membership.objects.get(contact_center=center, user__email="admin@initech.example"))


def login(membership: Membership) -> Persona:
    client = Client()
    assert client.login(username=membership.user.email, password=PASSWORD)
    return Persona(membership=membership, client=client)


def state() -> tuple[Any, ...]:
    """Everything a refused request must leave as it was."""
    return (
        sorted(
            (str(i.pk), i.label, i.status, i.credentials_hint, i.last_error, str(i.credentials))
            for i in ProviderIntegration.objects.all()
        ),
        sorted(
            VirtualAgent.objects.values_list(
                "pk", "name", "max_concurrent_calls", "is_enabled", "is_connected", "sip_uri"
            )
        ),
        sorted(HandoffTarget.objects.values_list("virtual_agent_id", "sip_uri")),
        sorted(Extension.objects.values_list("contact_center_id", "digits")),
        AuditEvent.objects.count(),
    )


@contextmanager
def nothing_changes() -> Iterator[None]:
    before = state()
    yield
    assert state() == before


def html(response) -> str:
    """The page, after checking that no provider key (nor the wrong ones typed) is anywhere in it."""
    text = response.content.decode()
    for secret in (*API_KEYS.values(), WRONG_KEY, NEW_VAPI_KEY):
        assert secret not in text
    return text


def assert_sent_to_login(response, path: str) -> None:
    assert response.status_code == 302
    location = urlsplit(response["Location"])
    assert location.path == "/accounts/login/"
    assert parse_qs(location.query) == {"next": [path]}


def assert_field_error(response, field: str, message: str) -> None:
    """`message` is among the errors rendered next to `field`."""
    assertContains(
        response, f'<ul class="errorlist" id="id_{field}_error">', status_code=response.status_code
    )
    errors = response.context["form"].errors.get(field, [])
    assert any(message in error for error in errors), errors


# --- the role matrix ---------------------------------------------------------------------


@dataclass
class Objects:
    vapi: ProviderIntegration
    spare: ProviderIntegration  # no virtual agents: can be deleted
    live: VirtualAgent  # connected
    idle: VirtualAgent  # disconnected


@pytest.fixture
def objects(vapi: ProviderIntegration, live: VirtualAgent, idle: VirtualAgent) -> Objects:
    spare = services.create_integration(
        center=vapi.contact_center, provider="generic_sip", label="Spare", credentials=None, by="tests"
    )
    return Objects(vapi=vapi, spare=spare, live=live, idle=idle)


Args = Callable[[Objects], list[Any]] | None

# (url name, its args, method, status for admin, supervisor, agent). Anonymous: the login page.
MATRIX: list[tuple[str, Args, str, int, int, int]] = [
    ("virtual_agents:index", None, "get", 200, 200, 403),
    ("virtual_agents:connect", None, "get", 200, 403, 403),
    ("virtual_agents:integration_detail", lambda o: [o.vapi.pk], "get", 200, 200, 403),
    ("virtual_agents:integration_verify", lambda o: [o.vapi.pk], "post", 302, 403, 403),
    ("virtual_agents:integration_edit", lambda o: [o.vapi.pk], "get", 200, 403, 403),
    ("virtual_agents:integration_delete", lambda o: [o.vapi.pk], "get", 200, 403, 403),
    ("virtual_agents:agent_create", lambda o: [o.vapi.pk], "get", 200, 403, 403),
    ("virtual_agents:agent_detail", lambda o: [o.live.pk], "get", 200, 200, 403),
    ("virtual_agents:agent_edit", lambda o: [o.live.pk], "get", 200, 403, 403),
    ("virtual_agents:agent_check", lambda o: [o.live.pk], "post", 200, 200, 403),
    ("virtual_agents:agent_disconnect", lambda o: [o.live.pk], "post", 302, 403, 403),
    ("virtual_agents:agent_reconnect", lambda o: [o.idle.pk], "post", 302, 403, 403),
    ("virtual_agents:agent_delete", lambda o: [o.idle.pk], "get", 200, 403, 403),
]
MATRIX_IDS = [row[0].split(":")[1] for row in MATRIX]
# The pages of one object, with the method each answers.
OBJECT_URLS = [(name, args, method) for name, args, method, *_ in MATRIX if args is not None]
OBJECT_IDS = [row[0].split(":")[1] for row in OBJECT_URLS]

# Every form post that changes something, with data that succeeds for an administrator, and
# the audit action it records (verify records one only when the status changes).
WRITES: list[tuple[str, Args, dict[str, Any], str | None]] = [
    (
        "virtual_agents:connect",
        None,
        {"provider": "generic_sip", "label": "House bot"},
        "integration.created",
    ),
    ("virtual_agents:integration_verify", lambda o: [o.vapi.pk], {}, None),
    (
        "virtual_agents:integration_edit",
        lambda o: [o.vapi.pk],
        {"label": "Renamed", "api_key": ""},
        "integration.updated",
    ),
    ("virtual_agents:integration_delete", lambda o: [o.spare.pk], {}, "integration.deleted"),
    (
        "virtual_agents:agent_create",
        lambda o: [o.vapi.pk],
        {"provider_agent_id": "asst-04", "name": "New", "max_concurrent_calls": 2, "is_enabled": "on"},
        "virtual_agent.connected",
    ),
    (
        "virtual_agents:agent_edit",
        lambda o: [o.live.pk],
        {"name": "Renamed", "max_concurrent_calls": 2},
        "virtual_agent.updated",
    ),
    ("virtual_agents:agent_disconnect", lambda o: [o.live.pk], {}, "virtual_agent.disconnected"),
    ("virtual_agents:agent_reconnect", lambda o: [o.idle.pk], {}, "virtual_agent.connected"),
    ("virtual_agents:agent_delete", lambda o: [o.idle.pk], {}, "virtual_agent.deleted"),
]
WRITE_IDS = [row[0].split(":")[1] for row in WRITES]


def url_of(name: str, args: Args, objects: Objects) -> str:
    return reverse(name, args=args(objects) if args else None)


@pytest.mark.parametrize("persona", ["admin", "supervisor", "agent", "anonymous"])
@pytest.mark.parametrize(
    ("name", "args", "method", "for_admin", "for_supervisor", "for_agent"), MATRIX, ids=MATRIX_IDS
)
def test_role_matrix(
    request: pytest.FixtureRequest,
    objects: Objects,
    vapi_fake: VapiFake,
    persona: str,
    name: str,
    args: Args,
    method: str,
    for_admin: int,
    for_supervisor: int,
    for_agent: int,
) -> None:
    value = request.getfixturevalue(persona)
    client = value if isinstance(value, Client) else value.client
    url = url_of(name, args, objects)

    response = getattr(client, method)(url)

    if persona == "anonymous":
        assert_sent_to_login(response, url)
    else:
        expected = {"admin": for_admin, "supervisor": for_supervisor, "agent": for_agent}[persona]
        assert response.status_code == expected
        html(response)
    assert vapi_fake.violations == []


@pytest.mark.parametrize("persona", ["supervisor", "agent", "anonymous"])
@pytest.mark.parametrize(("name", "args", "data", "action"), WRITES, ids=WRITE_IDS)
def test_only_administrators_change_anything(
    request: pytest.FixtureRequest,
    objects: Objects,
    vapi_fake: VapiFake,
    persona: str,
    name: str,
    args: Args,
    data: dict[str, Any],
    action: str | None,
) -> None:
    value = request.getfixturevalue(persona)
    client = value if isinstance(value, Client) else value.client
    url = url_of(name, args, objects)
    requests_before = len(vapi_fake.requests)

    with nothing_changes():
        response = client.post(url, data)
        htmx_response = client.post(url, data, **HTMX)

    if persona == "anonymous":
        assert_sent_to_login(response, url)
        assert htmx_response["HX-Redirect"] == response["Location"]
    else:
        assert response.status_code == htmx_response.status_code == 403
    assert len(vapi_fake.requests) == requests_before


@pytest.mark.parametrize(("name", "args", "data", "action"), WRITES, ids=WRITE_IDS)
def test_administrators_writes_are_audited_as_them(
    admin: Persona,
    objects: Objects,
    vapi_fake: VapiFake,
    name: str,
    args: Args,
    data: dict[str, Any],
    action: str | None,
) -> None:
    before = AuditEvent.objects.count()

    response = admin.client.post(url_of(name, args, objects), data)

    assert response.status_code == 302, response.content.decode()[:3000]
    new_events = list(AuditEvent.objects.order_by("id")[before:])
    if action is None:
        assert new_events == []
    else:
        assert new_events and new_events[-1].action == action
        assert {(e.actor, e.contact_center) for e in new_events} == {(admin.user, admin.center)}
    assert vapi_fake.violations == []


@pytest.mark.parametrize(("name", "args", "method"), OBJECT_URLS, ids=OBJECT_IDS)
def test_another_tenants_objects_are_not_found(
    initech_admin: Persona, objects: Objects, vapi_fake: VapiFake, name: str, args: Args, method: str
) -> None:
    url = url_of(name, args, objects)
    requests_before = len(vapi_fake.requests)

    with nothing_changes():
        response = getattr(initech_admin.client, method)(url)
        posted = initech_admin.client.post(url, {"name": "Mine", "label": "Mine"})

    assert response.status_code == posted.status_code == 404
    assert len(vapi_fake.requests) == requests_before


def test_another_tenants_list_shows_none_of_acmes_objects(initech_admin: Persona, objects: Objects) -> None:
    response = initech_admin.client.get(reverse("virtual_agents:index"))

    assert response.status_code == 200
    assertNotContains(response, "Vapi prod")
    assertNotContains(response, "Night desk")
    assertContains(response, "No virtual agents yet.")


# --- BYOB off ----------------------------------------------------------------------------

EXPLANATION = "Bring Your Own Bot is not enabled for Globex."


@pytest.fixture
def globex_objects(globex: ContactCenter) -> Objects:
    """Set up while BYOB was on; then Voiso staff switched it off."""
    globex.byob_enabled = True
    globex.save()
    house = services.create_integration(
        center=globex, provider="generic_sip", label="Globex bot", credentials=None, by="tests"
    )
    live = services.create_virtual_agent(
        integration=house, by="tests", name="Globex desk", sip_uri="sip:bot@10.0.0.5", connect=True
    )
    idle = services.create_virtual_agent(
        integration=house, by="tests", name="Globex spare", sip_uri="sip:spare@10.0.0.5"
    )
    spare = services.create_integration(
        center=globex, provider="generic_sip", label="Globex spare", credentials=None, by="tests"
    )
    globex.byob_enabled = False
    globex.save()
    return Objects(vapi=house, spare=spare, live=live, idle=idle)


def test_the_virtual_agents_page_explains_byob_is_off(outsider: Persona) -> None:
    response = outsider.client.get(reverse("virtual_agents:index"))

    assert response.status_code == 200
    assertContains(response, EXPLANATION)
    assertContains(response, "Voiso staff switch the feature on per contact center")
    assertNotContains(response, reverse("virtual_agents:connect"))


def test_the_wizard_answers_403_with_the_explanation(outsider: Persona) -> None:
    for response in (
        outsider.client.get(reverse("virtual_agents:connect")),
        outsider.client.get(reverse("virtual_agents:connect"), {"provider": "vapi"}),
        outsider.client.post(reverse("virtual_agents:connect"), {"provider": "generic_sip", "label": "Bot"}),
    ):
        assertContains(response, EXPLANATION, status_code=403)
    assert not ProviderIntegration.objects.exists()


@pytest.mark.parametrize(("name", "args", "method"), OBJECT_URLS, ids=OBJECT_IDS)
def test_every_page_of_a_center_without_byob_explains_and_changes_nothing(
    outsider: Persona, globex_objects: Objects, name: str, args: Args, method: str
) -> None:
    url = url_of(name, args, globex_objects)

    with nothing_changes():
        response = getattr(outsider.client, method)(url)
        posted = outsider.client.post(url, {"name": "Renamed", "label": "Renamed", "max_concurrent_calls": 2})

    assertContains(response, EXPLANATION, status_code=403)
    assertContains(posted, EXPLANATION, status_code=403)


# --- the connect wizard ------------------------------------------------------------------


def test_the_wizard_connects_a_vapi_bot_and_never_shows_or_logs_the_key(
    admin: Persona, agent: Persona, sales: Queue, vapi_fake: VapiFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    client = admin.client
    connect = reverse("virtual_agents:connect")

    # Step 1: the providers.
    step1 = client.get(connect)
    assert step1.status_code == 200
    for provider in ("elevenlabs", "vapi", "retell", "generic_sip"):
        assertContains(step1, f'value="{provider}"')

    # Step 2: the key form.
    step2 = client.get(connect, {"provider": "vapi"})
    assert step2.status_code == 200
    assertContains(step2, '<input type="hidden" name="provider" value="vapi">', html=True)
    assertContains(step2, 'name="api_key"')
    assert step2.context["form"]["label"].value() == "Vapi"

    # A wrong key: the provider's refusal next to the field, the key not rendered back, nothing stored.
    credentials = {"provider": "vapi", "label": "Vapi production", "api_key": WRONG_KEY}
    with nothing_changes():
        wrong = client.post(connect, credentials)
        wrong_htmx = client.post(connect, credentials, **HTMX)
    assert wrong.status_code == 400
    assert_field_error(wrong, "api_key", "Vapi rejected the API key.")
    html(wrong)
    assert wrong_htmx.status_code == 200  # htmx swaps 2xx answers only
    assert html(wrong_htmx).lstrip().startswith('<section class="card narrow" id="step">')
    assert "<html" not in wrong_htmx.content.decode()
    assert_field_error(wrong_htmx, "api_key", "Vapi rejected the API key.")

    # The right key: on to step 3 (htmx follows HX-Redirect).
    right = client.post(connect, {**credentials, "api_key": VAPI_KEY}, **HTMX)
    integration = ProviderIntegration.objects.get(label="Vapi production")
    step3_url = reverse("virtual_agents:agent_create", args=[integration.pk])
    assert right.status_code == 200 and right["HX-Redirect"] == step3_url
    html(right)
    assert integration.credentials == {"api_key": VAPI_KEY} and integration.status == "connected"
    assert (
        AuditEvent.objects.get(action="integration.created", target_id=str(integration.pk)).actor
        == admin.user
    )

    # Step 3: the provider's agents, live.
    step3 = client.get(step3_url)
    assert step3.status_code == 200
    for assistant_id, name in VapiFake.ASSISTANTS:
        assertContains(step3, f'value="{assistant_id}"')
        assertContains(step3, f"{name or assistant_id} ({assistant_id})")
    assertContains(step3, "Queue Sales · 4323")
    html(step3)

    created = client.post(
        step3_url,
        {
            "provider_agent_id": "asst-01",
            "name": "Sales assistant",
            "extension": "7001",
            "max_concurrent_calls": 5,
            "is_enabled": "on",
            "handoff_targets": ["4323", "1001"],
            "external_numbers": "+12125550199",
            "default_handoff": "4323",
        },
    )

    bot = VirtualAgent.objects.get(name="Sales assistant")
    assert created.status_code == 302
    assert created["Location"] == reverse("virtual_agents:agent_detail", args=[bot.pk])
    assert bot.is_connected and bot.integration == integration and bot.extension.digits == "7001"
    assert list(bot.handoff_targets.order_by("created", "pk").values_list("sip_uri", flat=True)) == [
        "sip:4323@acme.voiso.com",
        "sip:1001@acme.voiso.com",
        "sip:+12125550199@acme.voiso.com;user=phone",
    ]
    assert vapi_fake.violations == []
    assert ("POST", "/credential") in vapi_fake.calls and ("POST", "/tool") in vapi_fake.calls
    detail = client.get(created["Location"])
    assertContains(detail, "Sales assistant is connected.")
    html(detail)
    assert WRONG_KEY not in caplog.text and VAPI_KEY not in caplog.text
    assert caplog.records, "nothing was logged: the check above proves nothing"


def test_the_wizard_without_htmx_redirects(admin: Persona, vapi_fake: VapiFake) -> None:
    response = admin.client.post(
        reverse("virtual_agents:connect"), {"provider": "vapi", "label": "Vapi", "api_key": VAPI_KEY}
    )

    integration = ProviderIntegration.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("virtual_agents:agent_create", args=[integration.pk])


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"label": "Vapi", "api_key": ""}, "api_key", "Paste the provider's API key."),
        ({"label": "Vapi", "api_key": "two words"}, "api_key", "That does not look like an API key."),
        ({"label": "", "api_key": VAPI_KEY}, "label", "This field is required."),
        ({"label": "vapi PROD", "api_key": VAPI_KEY}, "label", "An integration labelled 'vapi PROD'"),
    ],
    ids=["no-key", "spaced-key", "no-label", "label-taken"],
)
def test_the_wizard_shows_errors_next_to_their_field(
    admin: Persona, vapi: ProviderIntegration, data: dict[str, str], field: str, message: str
) -> None:
    with nothing_changes():
        response = admin.client.post(reverse("virtual_agents:connect"), {"provider": "vapi", **data})

    assert response.status_code == 400
    assert_field_error(response, field, message)
    html(response)


def test_the_wizard_connects_a_generic_sip_bot(admin: Persona, sales: Queue) -> None:
    client = admin.client
    step2 = client.post(reverse("virtual_agents:connect"), {"provider": "generic_sip", "label": "House bot"})
    integration = ProviderIntegration.objects.get(label="House bot")
    assert step2.status_code == 302 and integration.credentials == {}

    step3 = client.get(step2["Location"])
    assertContains(step3, 'name="sip_uri"')
    assertNotContains(step3, 'name="provider_agent_id"')
    refused = client.post(
        step2["Location"], {"name": "IVR", "sip_uri": "http://bot", "max_concurrent_calls": 1}
    )
    assert refused.status_code == 400
    assert_field_error(
        refused, "sip_uri", "Enter the bot's SIP URI, e.g. sip:bot@sip.example.com;transport=tls"
    )
    assert not VirtualAgent.objects.exists()

    created = client.post(
        step2["Location"],
        {
            "name": "IVR",
            "sip_uri": "sip:bot@10.0.0.5:5080",
            "max_concurrent_calls": 1,
            "handoff_targets": ["4323"],
        },
    )
    assert created.status_code == 302
    bot = VirtualAgent.objects.get(name="IVR")
    assert bot.is_connected and bot.sip_uri == "sip:bot@10.0.0.5:5080"
    detail = client.get(created["Location"])
    assertContains(detail, "paste the handoff URIs below into the bot")


def test_the_agent_step_explains_a_provider_outage(
    admin: Persona, vapi: ProviderIntegration, vapi_fake: VapiFake
) -> None:
    vapi_fake.fail("GET", "/assistant", 503)

    response = admin.client.get(reverse("virtual_agents:agent_create", args=[vapi.pk]))

    assertContains(response, "Vapi is having trouble (HTTP 503). Try again in a few minutes.")
    assertNotContains(response, 'name="provider_agent_id"')


def test_the_agent_step_refuses_an_external_number_when_the_center_blocks_them(
    admin: Persona, vapi: ProviderIntegration, sales: Queue
) -> None:
    center = admin.center
    center.external_transfer_policy = "blocked"
    center.save()
    url = reverse("virtual_agents:agent_create", args=[vapi.pk])

    form = admin.client.get(url).context["form"]
    assert "external_numbers" not in form.fields
    with nothing_changes():
        response = admin.client.post(
            url,
            {
                "provider_agent_id": "asst-01",
                "name": "Bot",
                "max_concurrent_calls": 1,
                "default_handoff": "+12125550199",
            },
        )
    assert response.status_code == 400
    assert_field_error(
        response, "default_handoff", "This contact center does not allow handing calls to external numbers."
    )


# --- the detail page ---------------------------------------------------------------------


def test_detail_lists_copy_ready_handoff_uris_and_never_the_key(
    admin: Persona, live: VirtualAgent, agent: Persona, supervisor: Persona
) -> None:
    colleague = make_member(admin.center, Role.AGENT, email="bob@acme.example", extension="1002")

    response = admin.client.get(reverse("virtual_agents:agent_detail", args=[live.pk]))

    assert response.status_code == 200
    for digits in ("4323", "4400", "1001", "1002"):
        assertContains(response, f'<code id="uri-{digits}">sip:{digits}@acme.voiso.com</code>', html=True)
        assertContains(response, f'data-copy="#uri-{digits}"')
    assertContains(response, colleague.user.display_name)
    assertNotContains(response, 'id="uri-7002"')  # the bot itself is not a handoff target here
    assertContains(response, f"<code>{live.sip_uri}</code>", html=True)
    html(response)


def test_detail_lists_other_virtual_agents_as_handoff_targets(admin: Persona, live: VirtualAgent) -> None:
    # Another bot is a valid REFER target (routing.refer resolves its extension); the bot itself is not.
    house = services.create_integration(
        center=admin.center, provider="generic_sip", label="House bots", credentials=None, by="tests"
    )
    billing = services.create_virtual_agent(
        integration=house,
        by="tests",
        name="Billing bot",
        sip_uri="sip:billing@10.0.0.5",
        extension="7010",
        connect=True,
    )
    resting = services.create_virtual_agent(
        integration=house,
        by="tests",
        name="Resting bot",
        sip_uri="sip:resting@10.0.0.6",
        extension="7011",
        connect=True,
    )
    resting.is_enabled = False
    resting.save(update_fields=["is_enabled"])

    response = admin.client.get(reverse("virtual_agents:agent_detail", args=[live.pk]))

    assertContains(response, '<code id="uri-7010">sip:7010@acme.voiso.com</code>', html=True)
    assertContains(response, "<td>Virtual agent</td><td>Billing bot</td><td>7010</td>", html=True)
    assertContains(response, "<td>Virtual agent</td><td>Resting bot (disabled)</td><td>7011</td>", html=True)
    assertNotContains(response, 'id="uri-7002"')  # the bot whose page this is
    # And from the other bot's page, this one is listed.
    other = admin.client.get(reverse("virtual_agents:agent_detail", args=[billing.pk]))
    assertContains(other, '<code id="uri-7002">sip:7002@acme.voiso.com</code>', html=True)
    assertNotContains(other, 'id="uri-7010"')


def test_the_list_page_makes_a_constant_number_of_queries(
    supervisor: Persona, acme: ContactCenter, sales: Queue, django_assert_max_num_queries: Any
) -> None:
    house = services.create_integration(
        center=acme, provider="generic_sip", label="House bot", credentials=None, by="tests"
    )

    def add_agents(first: int, count: int) -> None:
        for n in range(first, first + count):
            services.create_virtual_agent(
                integration=house,
                by="tests",
                name=f"Bot {n:02}",
                sip_uri=f"sip:bot{n}@10.0.0.5",
                extension=f"{7100 + n}",
                handoff_targets=["4323"],
            )

    add_agents(0, 1)
    with CaptureQueriesContext(connection) as one_agent:
        assert supervisor.client.get(reverse("virtual_agents:index")).status_code == 200
    add_agents(1, 9)

    with django_assert_max_num_queries(len(one_agent)):
        response = supervisor.client.get(reverse("virtual_agents:index"))

    assert len(response.context["agents"]) == 10
    assertContains(response, "Bot 09")


@pytest.mark.parametrize("which", ["live", "idle"])
def test_supervisors_see_no_write_controls(
    admin: Persona, supervisor: Persona, objects: Objects, which: str
) -> None:
    bot = getattr(objects, which)
    controls = [
        reverse("virtual_agents:agent_edit", args=[bot.pk]),
        reverse(
            "virtual_agents:agent_disconnect" if which == "live" else "virtual_agents:agent_reconnect",
            args=[bot.pk],
        ),
    ]
    if which == "idle":
        controls.append(reverse("virtual_agents:agent_delete", args=[bot.pk]))
    url = reverse("virtual_agents:agent_detail", args=[bot.pk])

    for_admin = admin.client.get(url)
    for_supervisor = supervisor.client.get(url)

    assert for_admin.status_code == for_supervisor.status_code == 200
    for control in controls:
        assertContains(for_admin, control)
        assertNotContains(for_supervisor, control)
    labels = ["Edit", "Disconnect"] if which == "live" else ["Edit", "Connect again", "Delete"]
    for label in labels:
        assertContains(for_admin, f">{label}</")
        assertNotContains(for_supervisor, f">{label}</")
    html(for_supervisor)


def test_supervisors_see_no_write_controls_on_integrations_and_the_list(
    admin: Persona, supervisor: Persona, vapi: ProviderIntegration
) -> None:
    detail = reverse("virtual_agents:integration_detail", args=[vapi.pk])
    controls = [
        reverse("virtual_agents:agent_create", args=[vapi.pk]),
        reverse("virtual_agents:integration_verify", args=[vapi.pk]),
        reverse("virtual_agents:integration_edit", args=[vapi.pk]),
        reverse("virtual_agents:integration_delete", args=[vapi.pk]),
    ]
    for control in controls:
        assertContains(admin.client.get(detail), control)
        assertNotContains(supervisor.client.get(detail), control)
    assertContains(admin.client.get(reverse("virtual_agents:index")), reverse("virtual_agents:connect"))
    index = supervisor.client.get(reverse("virtual_agents:index"))
    assertNotContains(index, reverse("virtual_agents:connect"))
    assertContains(index, "…" + VAPI_KEY[-4:])
    html(index)
    html(supervisor.client.get(detail))


def test_the_check_as_htmx_returns_only_the_check_partial(
    supervisor: Persona, live: VirtualAgent, sales: Queue, vapi_fake: VapiFake
) -> None:
    delete_queue(queue=sales, by="tests")
    url = reverse("virtual_agents:agent_check", args=[live.pk])

    with nothing_changes():
        partial = supervisor.client.post(url, **HTMX)
        page = supervisor.client.post(url)

    assert partial.status_code == 200
    body = html(partial).strip()
    assert body.startswith('<div id="check">') and body.endswith("</div>")
    assert "<html" not in body and "<h1>" not in body
    assertContains(partial, "Queue Sales (4323) was deleted.")
    assertContains(partial, '<span class="badge danger">dangling</span>', html=True)
    assertContains(partial, "Queue Support (4400)")
    assert page.status_code == 200
    assertContains(page, "<h1>Night desk</h1>", html=True)
    assertContains(page, "Queue Sales (4323) was deleted.")
    assert vapi_fake.violations == []


def test_the_check_of_a_disconnected_agent_says_so(admin: Persona, idle: VirtualAgent) -> None:
    response = admin.client.post(reverse("virtual_agents:agent_check", args=[idle.pk]), **HTMX)

    assertContains(response, "Connect the virtual agent first.")


# --- changing things from the pages ------------------------------------------------------


def test_edit_pushes_new_handoff_targets_to_the_provider(
    admin: Persona, live: VirtualAgent, agent: Persona, vapi_fake: VapiFake
) -> None:
    response = admin.client.post(
        reverse("virtual_agents:agent_edit", args=[live.pk]),
        {
            "name": "Night desk",
            "max_concurrent_calls": 8,
            "is_enabled": "on",
            "handoff_targets": ["4400", "1001"],
        },
    )

    assert response.status_code == 302
    live.refresh_from_db()
    assert live.max_concurrent_calls == 8
    assert services.adapter(live.integration).configured_transfers(
        agent_id="asst-02", state=live.provider_state
    ) == ["sip:4400@acme.voiso.com", "sip:1001@acme.voiso.com"]
    assert vapi_fake.violations == []
    event = AuditEvent.objects.get(action="virtual_agent.updated", target_id=str(live.pk))
    assert event.actor == admin.user


def test_edit_form_errors_change_nothing(admin: Persona, live: VirtualAgent, idle: VirtualAgent) -> None:
    with nothing_changes():
        response = admin.client.post(
            reverse("virtual_agents:agent_edit", args=[live.pk]),
            {"name": "front DESK", "extension": "4323", "max_concurrent_calls": 8},
        )

    assert response.status_code == 400
    assert_field_error(response, "name", "A virtual agent named 'front DESK'")


def test_disconnect_and_connect_again(admin: Persona, live: VirtualAgent, vapi_fake: VapiFake) -> None:
    detail = reverse("virtual_agents:agent_detail", args=[live.pk])

    response = admin.client.post(reverse("virtual_agents:agent_disconnect", args=[live.pk]))

    assert response.status_code == 302 and response["Location"] == detail
    live.refresh_from_db()
    assert not live.is_connected and vapi_fake.phone_numbers == {}
    assertContains(admin.client.get(detail), "Night desk is disconnected")

    response = admin.client.post(reverse("virtual_agents:agent_reconnect", args=[live.pk]))

    assert response.status_code == 302
    live.refresh_from_db()
    assert live.is_connected and len(vapi_fake.phone_numbers) == 1
    assertContains(admin.client.get(detail), "Night desk is connected again.")
    assert vapi_fake.violations == []
    actions = AuditEvent.objects.filter(target_id=str(live.pk), actor=admin.user).values_list(
        "action", flat=True
    )
    assert sorted(actions) == ["virtual_agent.connected", "virtual_agent.disconnected"]


def test_disconnect_says_what_vapi_kept(admin: Persona, live: VirtualAgent, vapi_fake: VapiFake) -> None:
    tool_id = live.provider_state["tool_id"]
    vapi_fake.fail("DELETE", "/tool/", 409, body={"message": "tool_pinned", "statusCode": 409})
    detail = reverse("virtual_agents:agent_detail", args=[live.pk])

    admin.client.post(reverse("virtual_agents:agent_disconnect", args=[live.pk]))

    live.refresh_from_db()
    assert not live.is_connected
    assert vapi_fake.phone_numbers == {} and vapi_fake.credentials == {}
    page = admin.client.get(detail)
    assertContains(page, "Night desk is disconnected; the rest of its setup at the provider was removed")
    assertContains(page, f"Vapi kept the transfer tool {tool_id}")
    event = AuditEvent.objects.get(target_id=str(live.pk), action="virtual_agent.disconnected")
    assert tool_id in event.changes["left_at_provider"][0]


def test_delete_is_refused_while_connected_and_in_use(
    admin: Persona, live: VirtualAgent, vapi: ProviderIntegration
) -> None:
    with nothing_changes():
        agent_delete = admin.client.post(reverse("virtual_agents:agent_delete", args=[live.pk]))
        integration_delete = admin.client.post(reverse("virtual_agents:integration_delete", args=[vapi.pk]))

    assertContains(agent_delete, "Disconnect the virtual agent before deleting it.", status_code=400)
    assertContains(integration_delete, "use this integration; delete them first.", status_code=400)


def test_replacing_the_key_verifies_it_and_never_renders_it(
    admin: Persona, vapi: ProviderIntegration, vapi_fake: VapiFake, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    url = reverse("virtual_agents:integration_edit", args=[vapi.pk])

    with nothing_changes():
        wrong = admin.client.post(url, {"label": "Vapi prod", "api_key": WRONG_KEY})
    assert wrong.status_code == 400
    assert_field_error(wrong, "api_key", "Vapi rejected the API key.")
    html(wrong)

    vapi_fake.api_key = NEW_VAPI_KEY
    right = admin.client.post(url, {"label": "Vapi prod", "api_key": NEW_VAPI_KEY})
    assert right.status_code == 302
    vapi.refresh_from_db()
    assert vapi.credentials == {"api_key": NEW_VAPI_KEY}
    page = admin.client.get(right["Location"])
    assertContains(page, "…" + NEW_VAPI_KEY[-4:])
    html(page)
    assert NEW_VAPI_KEY not in caplog.text and WRONG_KEY not in caplog.text


def test_verify_again_reports_a_revoked_key(
    admin: Persona, vapi: ProviderIntegration, vapi_fake: VapiFake
) -> None:
    vapi_fake.fail("GET", "/assistant", 401)

    response = admin.client.post(reverse("virtual_agents:integration_verify", args=[vapi.pk]), follow=True)

    assertContains(response, "Vapi rejected the API key.")
    vapi.refresh_from_db()
    assert vapi.status == "error"
    assert AuditEvent.objects.get(action="integration.verified").actor == admin.user


# --- Django admin ------------------------------------------------------------------------


@pytest.fixture
def staff(db: None) -> Client:
    client = Client()
    client.force_login(User.objects.create_superuser("staff@voiso.example", "staff-pass-1234"))
    return client


def ciphertext(integration: ProviderIntegration) -> str:
    """The stored column as it is in the database: a Fernet token, not the key."""
    return (
        ProviderIntegration.objects.filter(pk=integration.pk)
        .annotate(raw=Cast("credentials", output_field=TextField()))
        .values_list("raw", flat=True)
        .get()
    )


def test_admin_pages_show_the_hint_never_the_key_or_its_ciphertext(
    staff: Client, vapi: ProviderIntegration, live: VirtualAgent
) -> None:
    token = ciphertext(vapi)
    assert token.startswith("gAAAAA") and VAPI_KEY not in token
    integration_admin = "/admin/virtual_agents/providerintegration/"
    agent_admin = "/admin/virtual_agents/virtualagent/"
    urls = [
        integration_admin,
        f"{integration_admin}?q=acme",
        f"{integration_admin}{vapi.pk}/change/",
        f"{integration_admin}{vapi.pk}/history/",
        agent_admin,
        f"{agent_admin}?q=Night",
        f"{agent_admin}{live.pk}/change/",
    ]

    for url in urls:
        response = staff.get(url)
        assert response.status_code == 200, url
        body = html(response)
        assert token not in body and token[:40] not in body, url
    assertContains(staff.get(f"{integration_admin}{vapi.pk}/change/"), "…" + VAPI_KEY[-4:])
    assertContains(staff.get(f"{agent_admin}{live.pk}/change/"), "sip:4323@acme.voiso.com")
    # Read-only: changes would skip the provider and the audit log.
    for url in (
        f"{integration_admin}add/",
        f"{agent_admin}add/",
        f"{integration_admin}{vapi.pk}/delete/",
        f"{agent_admin}{live.pk}/delete/",
    ):
        assert staff.get(url).status_code == 403, url
    response = staff.post(f"{agent_admin}{live.pk}/change/", {"name": "Renamed"})
    assert response.status_code == 403
    live.refresh_from_db()
    assert live.name != "Renamed"


def test_portal_users_cannot_open_the_admin(admin: Persona, vapi: ProviderIntegration) -> None:
    response = admin.client.get(f"/admin/virtual_agents/providerintegration/{vapi.pk}/change/")

    assert response.status_code == 302 and "/admin/login/" in response["Location"]
