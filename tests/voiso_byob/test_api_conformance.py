"""The API answers as its schema says: paging bounds, the error shape under /api/, full PUTs.

Each case was found by fuzzing the API from its own OpenAPI schema (issue #12, items 7 to 9);
tests/voiso_byob/test_api_schema_fuzz.py keeps fuzzing every operation.
"""

from __future__ import annotations

import uuid

import pytest
from django.test import Client

from routing.models import PhoneNumber
from routing.services import create_flow, create_phone_number
from tests.conftest import bearer, error_code
from tests.factories import make_member, make_queue
from tests.reporting.conftest import make_bot
from voiso_byob.models import ContactCenter
from voiso_byob.pagination import MAX_LIMIT

LISTS = ["flows", "integrations", "members", "numbers", "queues", "virtual-agents"]
TOO_BIG = "9223372036854775808"  # 2**63: past PostgreSQL's bigint and SQLite's integer


@pytest.fixture
def api(api_keys: dict[str, str]) -> Client:
    client = Client()
    client.defaults.update(bearer(api_keys["admin"]))
    return client


def fields(response) -> dict[str, list[str]]:
    return response.json()["error"]["fields"]


# --- item 7: paging ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", LISTS)
@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        (f"limit={TOO_BIG}", "limit", f"Ensure this value is less than or equal to {MAX_LIMIT}."),
        (f"limit={MAX_LIMIT + 1}", "limit", f"Ensure this value is less than or equal to {MAX_LIMIT}."),
        ("limit=0", "limit", "Ensure this value is greater than or equal to 1."),
        ("limit=ten", "limit", "A valid integer is required."),
        (f"offset={TOO_BIG}", "offset", "Ensure this value is less than or equal to 2147483647."),
        ("offset=null", "offset", "A valid integer is required."),
        ("offset=-1", "offset", "A valid integer is required."),
    ],
)
def test_paging_parameters_out_of_range_are_refused(
    acme: ContactCenter, api: Client, name: str, query: str, field: str, message: str
) -> None:
    response = api.get(f"/api/v1/{name}/?{query}")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
    assert fields(response) == {field: [message]}
    assert response.json()["error"]["message"] == message


def test_paging_within_bounds_pages(acme: ContactCenter, api: Client) -> None:
    for n in range(3):
        make_queue(acme, name=f"Q{n}")
    response = api.get(f"/api/v1/queues/?limit={MAX_LIMIT}&offset=1")
    assert response.status_code == 200
    assert response.json()["count"] == 3 and len(response.json()["results"]) == 2
    # Past the end is an empty page, not an error; empty values are the defaults.
    assert api.get("/api/v1/queues/?offset=2147483647").json()["results"] == []
    assert len(api.get("/api/v1/queues/?limit=&offset=").json()["results"]) == 3


@pytest.mark.parametrize("page_size", ["abc", "1.5", TOO_BIG, "0"])
def test_calls_page_size_is_validated(acme: ContactCenter, api: Client, page_size: str) -> None:
    response = api.get(f"/api/v1/calls/?page_size={page_size}")
    assert response.status_code == 400
    assert set(fields(response)) == {"page_size"}


# --- item 9: the error shape everywhere under /api/ -----------------------------------------------


@pytest.mark.parametrize(
    "path",
    ["/api/v1/webhooks/vapi/not-a-uuid/", "/api/v1/no-such-thing/", "/api/v1/queues/not-a-uuid/x/"],
)
def test_unmatched_api_urls_answer_json_404(api: Client, path: str) -> None:
    response = api.post(path) if "webhooks" in path else api.get(path)
    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert error_code(response) == "not_found"


def test_unmatched_page_urls_keep_the_html_404(admin) -> None:
    response = admin.client.get("/no-such-page/")
    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize(
    "content_type", ["multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]
)
def test_api_bodies_are_json_only(acme: ContactCenter, api: Client, content_type: str) -> None:
    # Not empty: DRF reads an empty body as an empty object whatever its type.
    response = api.post("/api/v1/queues/", data=b"name=Sales&extension=4323", content_type=content_type)
    assert response.status_code == 415
    assert error_code(response) == "unsupported_media_type"


def test_an_unknown_or_foreign_queue_filter_is_a_field_error_with_its_own_code(
    acme: ContactCenter, globex: ContactCenter, api: Client
) -> None:
    foreign = make_queue(globex, name="Theirs")
    answers = []
    for queue in (uuid.uuid4(), foreign.pk):
        # With a bad cursor beside it, the code used to be the cursor's and the message the queue's.
        response = api.get(f"/api/v1/calls/?queue={queue}&after=not-a-cursor")
        assert response.status_code == 400
        body = response.json()["error"]
        assert body["code"] == "invalid_cursor"
        assert body["message"] == fields(response)["after"][0]
        # The message names the id given (the filter takes several): compared without it.
        answers.append([message.replace(str(queue), "<id>") for message in fields(response)["queue"]])
        alone = api.get(f"/api/v1/calls/?queue={queue}")
        assert alone.status_code == 400
        assert error_code(alone) == "validation_error"
        assert alone.json()["error"]["message"] == fields(alone)["queue"][0]
    # A foreign queue is refused exactly as an unknown one: nothing tells it exists.
    assert answers[0] == answers[1]


# --- item 9: PUT is a full update -----------------------------------------------------------------


@pytest.fixture
def number(acme: ContactCenter) -> PhoneNumber:
    flow = create_flow(center=acme, by="tests", name="Main line")
    return create_phone_number(center=acme, by="tests", number="+442079460018", label="Main", flow=flow)


def test_put_without_a_body_is_refused(api: Client, number: PhoneNumber) -> None:
    response = api.put(f"/api/v1/numbers/{number.pk}/", content_type="application/json")
    assert response.status_code == 400
    assert fields(response) == {"number": ["This field is required."]}
    number.refresh_from_db()
    assert number.label == "Main" and number.flow is not None


def test_put_replaces_the_number_and_patch_changes_part(api: Client, number: PhoneNumber) -> None:
    response = api.put(
        f"/api/v1/numbers/{number.pk}/", {"number": "+44 20 7946 0018"}, content_type="application/json"
    )
    assert response.status_code == 200, response.content
    number.refresh_from_db()
    assert (number.label, number.flow) == ("", None)
    response = api.patch(f"/api/v1/numbers/{number.pk}/", {"label": "Sales"}, content_type="application/json")
    assert response.status_code == 200
    number.refresh_from_db()
    assert number.label == "Sales"


def test_put_cannot_change_the_number(api: Client, number: PhoneNumber) -> None:
    response = api.put(
        f"/api/v1/numbers/{number.pk}/", {"number": "+442079460019"}, content_type="application/json"
    )
    assert response.status_code == 400
    assert error_code(response) == "immutable"
    number.refresh_from_db()
    assert number.number == "+442079460018"


@pytest.mark.parametrize("name", LISTS)
def test_every_viewset_refuses_an_empty_put(acme: ContactCenter, api: Client, name: str) -> None:
    created = {
        "flows": lambda: create_flow(center=acme, by="tests", name="F").pk,
        "integrations": lambda: make_bot(acme).integration_id,
        "members": lambda: make_member(acme).pk,
        "numbers": lambda: create_phone_number(center=acme, by="tests", number="+442079460017").pk,
        "queues": lambda: make_queue(acme).pk,
        "virtual-agents": lambda: make_bot(acme).pk,
    }
    pk = created[name]()
    response = api.put(f"/api/v1/{name}/{pk}/", {}, content_type="application/json")
    assert response.status_code == 400
    assert error_code(response) == "validation_error"
