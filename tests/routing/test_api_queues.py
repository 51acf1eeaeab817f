"""Queues through the REST API, as an administrator's session and as an admin-scope API key."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.test import Client

from routing.models import FailoverAction, Queue, QueueStrategy
from tests.conftest import Caller, Persona, bearer, error_code
from tests.factories import make_member, make_queue
from voiso_byob.models import (
    AuditEvent,
    ContactCenter,
    Extension,
    Membership,
    Role,
)

QUEUES = "/api/v1/queues/"


def detail(queue: Queue) -> str:
    return f"{QUEUES}{queue.pk}/"


@pytest.fixture
def sales(acme: ContactCenter) -> Queue:
    return make_queue(acme, name="Sales", extension="4323")


@pytest.fixture
def globex_queue(globex: ContactCenter) -> Queue:
    return make_queue(globex, name="Globex line", extension="4400")


def _counts() -> tuple[int, ...]:
    return (
        Queue.objects.count(),
        Queue.members.through.objects.count(),
        Extension.objects.count(),
        AuditEvent.objects.count(),
    )


@contextmanager
def nothing_changes() -> Iterator[None]:
    """A refused request writes nothing: no queue, queue member, extension or audit row."""
    before = _counts()
    yield
    assert _counts() == before


def last_event(action: str) -> AuditEvent:
    return AuditEvent.objects.filter(action=action).latest("created", "id")


# --- create ------------------------------------------------------------------------------


def test_create_with_defaults(caller: Caller, acme: ContactCenter) -> None:
    response = caller.post(QUEUES, {"name": "Support", "extension": "4500"})

    assert response.status_code == 201, response.content
    body = response.json()
    assert body["strategy"] == "ring_all"
    assert body["failover_action"] == "voicemail"
    assert body["failover_queue"] is None and body["failover_number"] == ""
    assert body["members"] == [] and body["max_wait_seconds"] == 300
    queue = Queue.objects.get(pk=body["id"])
    assert queue.contact_center == acme
    assert (queue.name, queue.extension.digits, queue.extension.kind) == ("Support", "4500", "queue")
    assert (queue.strategy, queue.failover_action) == (QueueStrategy.RING_ALL, FailoverAction.VOICEMAIL)
    event = last_event("queue.created")
    assert event.contact_center == acme and event.target_id == str(queue.pk)
    caller.assert_acted(event)


def test_create_with_members_and_failover(caller: Caller, agent: Persona, sales: Queue) -> None:
    second = make_member(agent.center, Role.AGENT, extension="1002")

    response = caller.post(
        QUEUES,
        {
            "name": "Support",
            "extension": "4500",
            "strategy": "longest_idle",
            "members": [str(agent.membership.pk), str(second.pk)],
            "max_wait_seconds": 60,
            "failover_action": "queue",
            "failover_queue": str(sales.pk),
        },
    )

    assert response.status_code == 201, response.content
    queue = Queue.objects.get(pk=response.json()["id"])
    assert set(queue.members.all()) == {agent.membership, second}
    assert (queue.strategy, queue.max_wait_seconds) == ("longest_idle", 60)
    assert (queue.failover_action, queue.failover_queue) == ("queue", sales)
    assert sorted(response.json()["members"]) == sorted([str(agent.membership.pk), str(second.pk)])


def test_create_normalises_an_external_failover_number(caller: Caller) -> None:
    response = caller.post(
        QUEUES,
        {
            "name": "Support",
            "extension": "4500",
            "failover_action": "external",
            "failover_number": "+1 212 555 0199",
        },
    )

    assert response.status_code == 201, response.content
    assert response.json()["failover_number"] == "+12125550199"
    assert Queue.objects.get(name="Support").failover_number == "+12125550199"


# --- list and retrieve -------------------------------------------------------------------


def test_list_is_scoped_to_the_callers_center(
    caller: Caller, sales: Queue, globex_queue: Queue, outsider: Persona, globex_admin_key: str
) -> None:
    ours = caller.get(QUEUES).json()
    theirs = outsider.client.get(QUEUES).json()
    theirs_by_key = Client().get(QUEUES, **bearer(globex_admin_key)).json()

    assert [q["id"] for q in ours["results"]] == [str(sales.pk)]
    assert ours["count"] == 1
    assert [q["id"] for q in theirs["results"]] == [str(globex_queue.pk)]
    assert [q["id"] for q in theirs_by_key["results"]] == [str(globex_queue.pk)]


def test_list_is_ordered_by_name_and_paginated(caller: Caller, acme: ContactCenter) -> None:
    for name in ("Charlie", "Alpha", "Bravo"):
        make_queue(acme, name=name)

    page = caller.get(f"{QUEUES}?limit=2").json()

    assert page["count"] == 3
    assert [q["name"] for q in page["results"]] == ["Alpha", "Bravo"]
    assert page["next"] is not None


def test_list_makes_a_constant_number_of_queries(
    caller: Caller, acme: ContactCenter, agent: Persona, django_assert_max_num_queries: Any
) -> None:
    members = [agent.membership, *(make_member(acme, extension=f"{1100 + n}") for n in range(3))]
    previous = None
    for n in range(10):
        previous = make_queue(
            acme,
            name=f"Queue {n:02}",
            extension=f"{4600 + n}",
            members=members,
            **({"failover_action": "queue", "failover_queue": previous} if previous else {}),
        )

    # Authentication (session + user + membership, or key + last-used update), count,
    # page of queues with their extensions, their members, their virtual agents: however
    # many queues there are.
    with django_assert_max_num_queries(7):
        response = caller.get(QUEUES)

    assert response.status_code == 200
    results = response.json()["results"]
    assert len(results) == 10
    assert all(len(q["members"]) == 4 for q in results)


def test_retrieve(caller: Caller, sales: Queue) -> None:
    response = caller.get(detail(sales))

    assert response.status_code == 200
    assert response.json()["name"] == "Sales"
    assert response.json()["extension"] == "4323"


# --- another center's queue --------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "payload"),
    [
        ("get", None),
        ("put", {"name": "Mine", "extension": "4401"}),
        ("patch", {"name": "Mine"}),
        ("delete", None),
    ],
)
def test_another_centers_queue_is_404(
    caller: Caller, globex_queue: Queue, method: str, payload: dict[str, str] | None
) -> None:
    args = (detail(globex_queue),) if payload is None else (detail(globex_queue), payload)

    with nothing_changes():
        response = getattr(caller, method)(*args)

    assert response.status_code == 404
    assert error_code(response) == "not_found"
    globex_queue.refresh_from_db()
    assert (globex_queue.name, globex_queue.extension.digits) == ("Globex line", "4400")


def test_unknown_or_malformed_id_is_404(caller: Caller, sales: Queue) -> None:
    assert error_code(caller.get(f"{QUEUES}00000000-0000-0000-0000-000000000000/")) == "not_found"
    assert error_code(caller.get(f"{QUEUES}not-a-uuid/")) == "not_found"


# --- validation --------------------------------------------------------------------------


def test_extension_of_another_queue_is_taken(caller: Caller, sales: Queue) -> None:
    with nothing_changes():
        response = caller.post(QUEUES, {"name": "Support", "extension": "4323"})

    assert response.status_code == 400
    assert error_code(response) == "extension_taken"
    assert "extension" in response.json()["error"]["fields"]


def test_extension_of_a_member_is_taken(caller: Caller, agent: Persona) -> None:
    with nothing_changes():
        response = caller.post(QUEUES, {"name": "Support", "extension": "1001"})

    assert response.status_code == 400
    assert error_code(response) == "extension_taken"


def test_renumbering_onto_a_taken_extension_is_refused(caller: Caller, sales: Queue, agent: Persona) -> None:
    with nothing_changes():
        response = caller.patch(detail(sales), {"extension": "1001", "name": "Renamed"})

    assert response.status_code == 400
    assert error_code(response) == "extension_taken"
    sales.refresh_from_db()
    assert (sales.name, sales.extension.digits) == ("Sales", "4323")
    assert agent.membership.extension.digits == "1001"


@pytest.mark.parametrize(
    "extension",
    ["432", "43234", "٤٣٢٣", "４３２３", "43a3", "+432", "43 3"],
    ids=["short", "long", "arabic-indic", "full-width", "letter", "plus", "space"],
)
def test_invalid_extension(caller: Caller, acme: ContactCenter, extension: str) -> None:
    with nothing_changes():
        response = caller.post(QUEUES, {"name": "Support", "extension": extension})

    assert response.status_code == 400
    assert error_code(response) == "invalid_extension"


@pytest.mark.parametrize("name", ["Sales", "sales", "  SALES  "])
def test_duplicate_name_is_refused_whatever_the_case(caller: Caller, sales: Queue, name: str) -> None:
    with nothing_changes():
        response = caller.post(QUEUES, {"name": name, "extension": "4500"})

    assert response.status_code == 400
    assert error_code(response) == "name_taken"
    assert "name" in response.json()["error"]["fields"]


def test_rename_onto_another_queues_name_is_refused(
    caller: Caller, sales: Queue, acme: ContactCenter
) -> None:
    support = make_queue(acme, name="Support")

    with nothing_changes():
        response = caller.patch(detail(support), {"name": "SALES"})

    assert response.status_code == 400
    assert error_code(response) == "name_taken"
    support.refresh_from_db()
    assert support.name == "Support"


def test_rename_changing_only_the_case_is_allowed(caller: Caller, sales: Queue) -> None:
    response = caller.patch(detail(sales), {"name": "SALES"})

    assert response.status_code == 200
    sales.refresh_from_db()
    assert sales.name == "SALES"


def test_members_of_another_center_are_refused(caller: Caller, outsider: Persona, agent: Persona) -> None:
    foreigner = make_member(outsider.center, extension="1001")

    with nothing_changes():
        response = caller.post(
            QUEUES,
            {
                "name": "Support",
                "extension": "4500",
                "members": [str(agent.membership.pk), str(foreigner.pk)],
            },
        )

    assert response.status_code == 400
    assert "members" in response.json()["error"]["fields"]
    assert not Queue.objects.filter(name="Support").exists()


def test_members_of_another_center_cannot_be_patched_in(
    caller: Caller, sales: Queue, outsider: Persona
) -> None:
    foreigner = make_member(outsider.center, extension="1001")

    with nothing_changes():
        response = caller.patch(detail(sales), {"members": [str(foreigner.pk)]})

    assert response.status_code == 400
    assert not sales.members.exists()


def test_members_need_an_extension(caller: Caller, supervisor: Persona) -> None:
    with nothing_changes():
        response = caller.post(
            QUEUES, {"name": "Support", "extension": "4500", "members": [str(supervisor.membership.pk)]}
        )

    assert response.status_code == 400
    assert error_code(response) == "member_without_extension"


@pytest.mark.parametrize("members", [["not-a-uuid"], [17], "everyone", [None]])
def test_malformed_member_ids_are_400(caller: Caller, acme: ContactCenter, members: Any) -> None:
    with nothing_changes():
        response = caller.post(QUEUES, {"name": "Support", "extension": "4500", "members": members})

    assert response.status_code == 400
    assert "members" in response.json()["error"]["fields"]


def test_failover_queue_of_another_center_is_refused(caller: Caller, globex_queue: Queue) -> None:
    with nothing_changes():
        response = caller.post(
            QUEUES,
            {
                "name": "Support",
                "extension": "4500",
                "failover_action": "queue",
                "failover_queue": str(globex_queue.pk),
            },
        )

    assert response.status_code == 400
    assert "failover_queue" in response.json()["error"]["fields"]


def test_failover_to_a_queue_needs_the_queue(caller: Caller, acme: ContactCenter) -> None:
    with nothing_changes():
        response = caller.post(QUEUES, {"name": "Support", "extension": "4500", "failover_action": "queue"})

    assert response.status_code == 400
    assert error_code(response) == "required"
    assert "failover_queue" in response.json()["error"]["fields"]


@pytest.mark.parametrize(
    ("number", "code"),
    [
        ("", "invalid_number"),
        ("2125550199", "invalid_number"),  # no country code
        ("+1 555", "invalid_number"),
        ("+999 123456", "invalid_number"),  # no such country
        ("+44 20 7946 0958 ext. 12", "invalid_number"),  # a switch cannot dial an extension
        ("+1" * 20, "validation_error"),  # longer than any number: refused before parsing
    ],
)
def test_invalid_external_failover_number(
    caller: Caller, acme: ContactCenter, number: str, code: str
) -> None:
    with nothing_changes():
        response = caller.post(
            QUEUES,
            {
                "name": "Support",
                "extension": "4500",
                "failover_action": "external",
                "failover_number": number,
            },
        )

    assert response.status_code == 400
    assert error_code(response) == code
    assert "failover_number" in response.json()["error"]["fields"]


def test_failover_loop_is_refused(caller: Caller, acme: ContactCenter) -> None:
    first = make_queue(acme, name="First")
    second = make_queue(acme, name="Second", failover_action="queue", failover_queue=first)
    third = make_queue(acme, name="Third", failover_action="queue", failover_queue=second)

    with nothing_changes():
        response = caller.patch(detail(first), {"failover_action": "queue", "failover_queue": str(third.pk)})

    assert response.status_code == 400
    assert error_code(response) == "failover_loop"
    first.refresh_from_db()
    assert (first.failover_action, first.failover_queue) == ("voicemail", None)


def test_failover_to_itself_is_a_loop(caller: Caller, sales: Queue) -> None:
    with nothing_changes():
        response = caller.patch(detail(sales), {"failover_action": "queue", "failover_queue": str(sales.pk)})

    assert response.status_code == 400
    assert error_code(response) == "failover_loop"


@pytest.mark.parametrize(
    ("payload", "field_name"),
    [
        ({"strategy": "random"}, "strategy"),
        ({"failover_action": "pray"}, "failover_action"),
        ({"max_wait_seconds": 4}, "max_wait_seconds"),
        ({"max_wait_seconds": 86_401}, "max_wait_seconds"),
        ({"name": ""}, "name"),
        ({"name": "x" * 101}, "name"),
        ({"extension": None}, "extension"),
    ],
)
def test_invalid_fields_are_400_with_the_field(
    caller: Caller, acme: ContactCenter, payload: dict[str, Any], field_name: str
) -> None:
    with nothing_changes():
        response = caller.post(QUEUES, {"name": "Support", "extension": "4500", **payload})

    assert response.status_code == 400
    assert field_name in response.json()["error"]["fields"]


@pytest.mark.parametrize("body", ["{not json", '{"name": "Support", "extension": ', "", "[1, 2]", '"text"'])
def test_malformed_body_is_400_in_the_error_shape(caller: Caller, acme: ContactCenter, body: str) -> None:
    with nothing_changes():
        response = caller.post(QUEUES, body)

    assert response.status_code == 400
    assert error_code(response) in {"parse_error", "validation_error"}


# --- update ------------------------------------------------------------------------------


def test_patch_changes_only_the_fields_sent(caller: Caller, acme: ContactCenter, agent: Persona) -> None:
    queue = make_queue(
        acme,
        name="Sales",
        extension="4323",
        strategy=QueueStrategy.ROUND_ROBIN,
        members=[agent.membership],
        max_wait_seconds=90,
        failover_action=FailoverAction.EXTERNAL,
        failover_number="+12125550199",
    )

    response = caller.patch(detail(queue), {"name": "Sales EMEA"})

    assert response.status_code == 200, response.content
    queue.refresh_from_db()
    assert queue.name == "Sales EMEA"
    assert queue.extension.digits == "4323"
    assert queue.strategy == QueueStrategy.ROUND_ROBIN
    assert list(queue.members.all()) == [agent.membership]
    assert queue.max_wait_seconds == 90
    assert (queue.failover_action, queue.failover_number) == ("external", "+12125550199")
    event = last_event("queue.updated")
    assert event.changes == {"name": {"from": "Sales", "to": "Sales EMEA"}}
    caller.assert_acted(event)


def test_patch_renumbers_and_frees_the_old_extension(caller: Caller, sales: Queue) -> None:
    response = caller.patch(detail(sales), {"extension": "4324"})

    assert response.status_code == 200
    sales.refresh_from_db()
    assert sales.extension.digits == "4324"
    assert not Extension.objects.filter(contact_center=sales.contact_center, digits="4323").exists()
    assert caller.post(QUEUES, {"name": "Support", "extension": "4323"}).status_code == 201


def test_patch_switches_failover_from_queue_to_voicemail(
    caller: Caller, sales: Queue, acme: ContactCenter
) -> None:
    queue = make_queue(acme, name="Overflow", failover_action="queue", failover_queue=sales)

    response = caller.patch(detail(queue), {"failover_action": "voicemail"})

    assert response.status_code == 200
    queue.refresh_from_db()
    assert (queue.failover_action, queue.failover_queue) == ("voicemail", None)
    assert response.json()["failover_queue"] is None


def test_put_replaces_the_queue(caller: Caller, acme: ContactCenter, agent: Persona, sales: Queue) -> None:
    queue = make_queue(
        acme,
        name="Support",
        extension="4500",
        strategy=QueueStrategy.ROUND_ROBIN,
        members=[agent.membership],
        failover_action=FailoverAction.QUEUE,
        failover_queue=sales,
    )

    response = caller.put(detail(queue), {"name": "Support 2", "extension": "4501"})

    assert response.status_code == 200, response.content
    queue.refresh_from_db()
    assert (queue.name, queue.extension.digits, queue.strategy) == ("Support 2", "4501", "ring_all")
    assert not queue.members.exists()
    assert (queue.failover_action, queue.failover_queue, queue.failover_number) == ("voicemail", None, "")
    assert response.json()["members"] == []


def test_put_needs_the_required_fields(caller: Caller, sales: Queue) -> None:
    with nothing_changes():
        response = caller.put(detail(sales), {"name": "Sales 2"})

    assert response.status_code == 400
    assert "extension" in response.json()["error"]["fields"]


def test_an_update_that_changes_nothing_records_nothing(caller: Caller, sales: Queue) -> None:
    with nothing_changes():
        response = caller.patch(detail(sales), {"name": "Sales"})

    assert response.status_code == 200


# --- delete ------------------------------------------------------------------------------


def test_delete_removes_the_queue_and_its_extension(
    caller: Caller, sales: Queue, acme: ContactCenter
) -> None:
    response = caller.delete(detail(sales))

    assert response.status_code == 204
    assert not Queue.objects.filter(pk=sales.pk).exists()
    assert not Extension.objects.filter(contact_center=acme, digits="4323").exists()
    event = last_event("queue.deleted")
    assert (event.target_id, event.contact_center) == (str(sales.pk), acme)
    caller.assert_acted(event)
    assert caller.post(QUEUES, {"name": "Sales", "extension": "4323"}).status_code == 201


def test_a_queue_used_as_failover_cannot_be_deleted(
    caller: Caller, sales: Queue, acme: ContactCenter
) -> None:
    make_queue(acme, name="Overflow", failover_action="queue", failover_queue=sales)

    with nothing_changes():
        response = caller.delete(detail(sales))

    assert response.status_code == 400
    assert error_code(response) == "queue_in_use"
    assert Queue.objects.filter(pk=sales.pk).exists()


def test_deleting_a_queue_keeps_its_members(caller: Caller, acme: ContactCenter, agent: Persona) -> None:
    queue = make_queue(acme, members=[agent.membership])

    assert caller.delete(detail(queue)).status_code == 204

    assert Membership.objects.filter(pk=agent.membership.pk).exists()
    agent.membership.refresh_from_db()
    assert agent.membership.extension.digits == "1001"


# --- roles -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("persona", "read_status", "write_status"),
    [("supervisor", 200, 403), ("agent", 403, 403)],
)
def test_roles_without_write_access(
    request: pytest.FixtureRequest, sales: Queue, persona: str, read_status: int, write_status: int
) -> None:
    who: Persona = request.getfixturevalue(persona)

    with nothing_changes():
        reads = [who.client.get(QUEUES), who.client.get(detail(sales))]
        writes = [
            who.client.post(
                QUEUES, {"name": "Support", "extension": "4500"}, content_type="application/json"
            ),
            who.client.put(
                detail(sales), {"name": "X", "extension": "4501"}, content_type="application/json"
            ),
            who.client.patch(detail(sales), {"name": "X"}, content_type="application/json"),
            who.client.delete(detail(sales)),
        ]

    assert [r.status_code for r in reads] == [read_status] * 2
    assert [r.status_code for r in writes] == [write_status] * 4
    assert {error_code(r) for r in writes} == {"permission_denied"}


def test_anonymous_is_401(anonymous: Client, sales: Queue) -> None:
    with nothing_changes():
        responses = [anonymous.get(QUEUES), anonymous.get(detail(sales)), anonymous.delete(detail(sales))]

    assert [r.status_code for r in responses] == [401] * 3
    assert {error_code(r) for r in responses} == {"not_authenticated"}


# --- service level threshold (the reports' T) ---------------------------------------------------


def test_service_level_seconds_defaults_to_20_and_is_bounded(caller: Caller, sales: Queue) -> None:
    created = caller.post(QUEUES, {"name": "Support", "extension": "4500"})
    assert created.json()["service_level_seconds"] == 20
    response = caller.patch(detail(sales), {"service_level_seconds": 45})
    assert response.status_code == 200 and response.json()["service_level_seconds"] == 45
    sales.refresh_from_db()
    assert sales.service_level_seconds == 45
    assert last_event("queue.updated").changes["service_level_seconds"] == {"from": 20, "to": 45}
    for bad in (4, 601, "soon", None):
        with nothing_changes():
            refused = caller.patch(detail(sales), {"service_level_seconds": bad})
        assert refused.status_code == 400 and error_code(refused) == "validation_error"
        assert "service_level_seconds" in refused.json()["error"]["fields"]
    sales.refresh_from_db()
    assert sales.service_level_seconds == 45
