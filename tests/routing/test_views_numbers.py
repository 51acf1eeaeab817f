"""Phone number pages: list and search, add, attach to a flow, delete; roles and tenancy."""

from __future__ import annotations

import pytest
from django.urls import reverse
from pytest_django.asserts import assertContains, assertNotContains

from routing import services
from routing.models import Flow, PhoneNumber
from tests.conftest import Persona
from voiso_byob.models import AuditEvent, ContactCenter

LIST = reverse("routing:number_list")
NEW = reverse("routing:number_create")


@pytest.fixture
def main_line(acme: ContactCenter) -> Flow:
    return services.create_flow(center=acme, by="tests", name="Main line")


@pytest.fixture
def phone(acme: ContactCenter, main_line: Flow) -> PhoneNumber:
    return services.create_phone_number(
        center=acme, by="tests", number="+442079460018", label="UK sales", flow=main_line
    )


def state(center: ContactCenter) -> tuple[list[tuple[object, ...]], int]:
    return (
        sorted(PhoneNumber.objects.for_center(center).values_list("pk", "number", "label", "flow")),
        AuditEvent.objects.for_center(center).count(),
    )


# --- roles and tenancy ---------------------------------------------------------------------


def test_supervisors_read_the_list_without_edit_controls(supervisor: Persona, phone: PhoneNumber) -> None:
    response = supervisor.client.get(LIST)

    assertContains(response, "+442079460018")
    assertContains(response, "UK sales")
    assertContains(response, "Main line")
    assertNotContains(response, NEW)
    assertNotContains(response, reverse("routing:number_edit", args=[phone.pk]))
    assertNotContains(response, reverse("routing:number_delete", args=[phone.pk]))


@pytest.mark.parametrize(
    ("method", "target", "data"),
    [
        ("get", "new", {}),
        ("post", "new", {"number": "+12125550199"}),
        ("get", "edit", {}),
        ("post", "edit", {"label": "Changed"}),
        ("get", "delete", {}),
        ("post", "delete", {}),
    ],
)
def test_only_administrators_change_numbers(
    supervisor: Persona, agent: Persona, phone: PhoneNumber, method: str, target: str, data: dict
) -> None:
    address = {
        "new": NEW,
        "edit": reverse("routing:number_edit", args=[phone.pk]),
        "delete": reverse("routing:number_delete", args=[phone.pk]),
    }[target]
    before = state(phone.contact_center)

    for persona in (supervisor, agent):
        assert getattr(persona.client, method)(address, data).status_code == 403

    assert state(phone.contact_center) == before


def test_agents_and_anonymous_users_cannot_read_the_list(agent: Persona, anonymous) -> None:
    assert agent.client.get(LIST).status_code == 403
    response = anonymous.get(LIST)
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.parametrize(
    ("method", "name"), [("get", "number_edit"), ("post", "number_edit"), ("post", "number_delete")]
)
def test_another_centers_number_is_not_found(
    outsider: Persona, phone: PhoneNumber, method: str, name: str
) -> None:
    before = state(phone.contact_center)

    response = getattr(outsider.client, method)(
        reverse(f"routing:{name}", args=[phone.pk]), {"label": "Mine"}
    )

    assert response.status_code == 404
    assert state(phone.contact_center) == before
    assertNotContains(outsider.client.get(LIST), "+442079460018")


# --- the list ------------------------------------------------------------------------------


def test_list_shows_each_numbers_flow_and_whether_it_is_live(
    admin: Persona, phone: PhoneNumber, main_line: Flow, django_assert_max_num_queries
) -> None:
    services.create_phone_number(center=admin.center, by="tests", number="+12125550199", label="US")
    for n in range(28):
        services.create_phone_number(center=admin.center, by="tests", number=f"+4420794600{n + 20}")

    with django_assert_max_num_queries(8):
        response = admin.client.get(LIST)

    body = response.content.decode()
    uk_row = body.split("+442079460018", 1)[1].split("</tr>", 1)[0]
    assert "Main line" in uk_row and "not published" in uk_row
    us_row = body.split("+12125550199", 1)[1].split("</tr>", 1)[0]
    assert "none: calls are refused" in us_row
    assertContains(response, "Page 1 of 2 · 30 in all")

    services.publish_flow(flow=main_line, by="tests")
    assertContains(admin.client.get(LIST), "v1 live")


def test_search_matches_number_label_or_flow_and_answers_htmx_with_the_list(
    admin: Persona, phone: PhoneNumber
) -> None:
    services.create_phone_number(center=admin.center, by="tests", number="+12125550199", label="US support")

    for query, shown, hidden in (
        ("2079", "+442079460018", "+12125550199"),
        ("+1 212", "+12125550199", "+442079460018"),
        ("support", "+12125550199", "+442079460018"),
        ("main", "+442079460018", "+12125550199"),
    ):
        response = admin.client.get(LIST, {"q": query}, HTTP_HX_REQUEST="true")
        assert not response.content.lstrip().startswith(b"<!doctype")
        assertContains(response, shown)
        assertNotContains(response, hidden)


# --- add, attach, delete -------------------------------------------------------------------


def test_add_a_number_attached_to_a_flow(admin: Persona, main_line: Flow) -> None:
    response = admin.client.post(
        NEW, {"number": "+44 20 7946 0018", "label": "UK sales", "flow": main_line.pk}
    )

    assert response.status_code == 302 and response["Location"] == LIST
    phone = PhoneNumber.objects.get(contact_center=admin.center)
    assert (phone.number, phone.label, phone.flow) == ("+442079460018", "UK sales", main_line)
    event = AuditEvent.objects.for_center(admin.center).get(action="phone_number.created")
    assert event.actor == admin.user and event.changes["flow"] == "Main line"
    assertContains(admin.client.get(LIST), "Number +442079460018 added.")


def test_the_flow_page_link_preselects_the_flow(admin: Persona, main_line: Flow) -> None:
    form = admin.client.get(NEW, {"flow": main_line.pk}).context["form"]

    assert form["flow"].value() == str(main_line.pk)


@pytest.mark.parametrize(
    ("number", "message"),
    [
        ("2079460018", "Enter the number in international format, starting with + and the country code."),
        ("+44 12", "+44 12 is not a valid phone number."),
        ("+442079460018", "+442079460018 is already in use."),
    ],
)
def test_invalid_or_taken_numbers_are_refused_inline(
    admin: Persona, outsider: Persona, number: str, message: str
) -> None:
    services.create_phone_number(center=outsider.center, by="tests", number="+442079460018")
    before = state(admin.center)

    response = admin.client.post(NEW, {"number": number})

    assert response.status_code == 400
    assert response.context["form"].errors["number"] == [message]
    assert state(admin.center) == before


def test_another_centers_flow_cannot_be_attached(admin: Persona, outsider: Persona) -> None:
    foreign = services.create_flow(center=outsider.center, by="tests", name="Foreign")

    response = admin.client.post(NEW, {"number": "+442079460018", "flow": foreign.pk})

    assert response.status_code == 400
    assert "flow" in response.context["form"].errors
    assert not PhoneNumber.objects.exists()


def test_edit_changes_label_and_flow_but_not_the_number(admin: Persona, phone: PhoneNumber) -> None:
    night = services.create_flow(center=admin.center, by="tests", name="Night")
    edit = reverse("routing:number_edit", args=[phone.pk])
    form = admin.client.get(edit).context["form"]
    assert "number" not in form.fields
    assert form.initial == {"label": "UK sales", "flow": phone.flow}

    response = admin.client.post(edit, {"label": "UK night", "flow": night.pk, "number": "+12125550199"})

    assert response.status_code == 302
    phone.refresh_from_db()
    assert (phone.number, phone.label, phone.flow) == ("+442079460018", "UK night", night)
    event = AuditEvent.objects.for_center(admin.center).get(action="phone_number.updated")
    assert event.changes == {
        "label": {"from": "UK sales", "to": "UK night"},
        "flow": {"from": "Main line", "to": "Night"},
    }


def test_detaching_the_flow(admin: Persona, phone: PhoneNumber) -> None:
    admin.client.post(reverse("routing:number_edit", args=[phone.pk]), {"label": "UK sales", "flow": ""})

    phone.refresh_from_db()
    assert phone.flow is None


def test_delete_a_number(admin: Persona, phone: PhoneNumber) -> None:
    delete = reverse("routing:number_delete", args=[phone.pk])
    assertContains(admin.client.get(delete), "Delete number +442079460018?")

    response = admin.client.post(delete)

    assert response.status_code == 302 and response["Location"] == LIST
    assert not PhoneNumber.objects.filter(pk=phone.pk).exists()
    assert AuditEvent.objects.for_center(admin.center).filter(action="phone_number.deleted").exists()
