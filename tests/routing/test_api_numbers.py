"""/api/v1/numbers/: E.164 numbers, unique across every contact center, attached to a flow."""

from __future__ import annotations

import pytest
from django.test import Client

from routing.models import Flow, PhoneNumber
from tests.conftest import Caller, bearer, error_code
from voiso_byob.models import AuditEvent

NUMBERS = "/api/v1/numbers/"


def test_create_normalises_to_e164_and_audits(caller: Caller) -> None:
    response = caller.post(NUMBERS, {"number": "+44 20 7946 0018", "label": "London"})
    assert response.status_code == 201, response.json()
    assert response.json()["number"] == "+442079460018"
    phone = PhoneNumber.objects.get()
    assert phone.label == "London" and phone.flow is None
    caller.assert_acted(AuditEvent.objects.get(action="phone_number.created"))


@pytest.mark.parametrize(
    "number", ["02079460018", "+44 20", "+1 555 0100", "not a number", "+" + "1" * 20, ""]
)
def test_invalid_numbers_are_refused(caller: Caller, number: str) -> None:
    response = caller.post(NUMBERS, {"number": number})
    assert response.status_code == 400
    assert error_code(response) in {"invalid_number", "validation_error"}
    assert not PhoneNumber.objects.exists()


def test_a_number_rings_in_one_contact_center_only(caller: Caller, globex, globex_admin_key: str) -> None:
    assert caller.post(NUMBERS, {"number": "+442079460018"}).status_code == 201
    response = Client().post(
        NUMBERS, {"number": "+44 20 7946 0018"}, content_type="application/json", **bearer(globex_admin_key)
    )
    assert response.status_code == 400 and error_code(response) == "number_taken"
    assert PhoneNumber.objects.count() == 1


def test_other_centers_numbers_are_404(caller: Caller, globex, globex_admin_key: str) -> None:
    created = caller.post(NUMBERS, {"number": "+442079460018"}).json()
    other = Client()
    for method in ("get", "patch", "delete"):
        response = getattr(other, method)(
            f"{NUMBERS}{created['id']}/", content_type="application/json", **bearer(globex_admin_key)
        )
        assert response.status_code == 404, method
    assert PhoneNumber.objects.filter(pk=created["id"]).exists()


def test_number_is_immutable_but_label_changes(caller: Caller) -> None:
    created = caller.post(NUMBERS, {"number": "+442079460018"}).json()
    # Another number is refused, not silently ignored (as an integration's provider, a member's email).
    response = caller.patch(f"{NUMBERS}{created['id']}/", {"number": "+442079460019", "label": "Main"})
    assert response.status_code == 400
    assert error_code(response) == "immutable"
    assert caller.get(f"{NUMBERS}{created['id']}/").json() == created
    response = caller.patch(f"{NUMBERS}{created['id']}/", {"number": "+44 20 7946 0018", "label": "Main"})
    assert response.status_code == 200
    assert response.json() == {**created, "label": "Main"}


@pytest.mark.parametrize(("persona", "read", "write"), [("supervisor", 200, 403), ("agent", 403, 403)])
def test_roles(request, persona: str, read: int, write: int) -> None:
    client = request.getfixturevalue(persona).client
    assert client.get(NUMBERS).status_code == read
    assert (
        client.post(NUMBERS, {"number": "+442079460018"}, content_type="application/json").status_code
        == write
    )
    assert not PhoneNumber.objects.exists()


def test_only_this_centers_flows_can_be_attached(caller: Caller, globex) -> None:
    foreign = Flow.objects.create(contact_center=globex, name="Theirs")
    response = caller.post(NUMBERS, {"number": "+442079460018", "flow": str(foreign.pk)})
    assert response.status_code == 400
    assert not PhoneNumber.objects.exists()
