"""One number space per contact center: queues, people (and later bots) never share an extension."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from django.db import connection

from routing.models import Queue
from tests.factories import make_center, make_member, make_queue
from voiso_byob.errors import DomainError
from voiso_byob.models import Extension, ExtensionKind, Membership, Role
from voiso_byob.services import add_member, claim_extension, update_member


def test_queue_and_member_cannot_share_an_extension(acme) -> None:
    make_queue(acme, name="Sales", extension="4323")
    with pytest.raises(DomainError) as caught:
        make_member(acme, extension="4323")
    assert caught.value.code == "extension_taken"
    assert caught.value.field == "extension"
    assert Extension.objects.filter(contact_center=acme, digits="4323").count() == 1


def test_same_digits_in_two_centers_are_independent(acme, globex) -> None:
    make_queue(acme, extension="4323")
    make_queue(globex, extension="4323")
    assert Extension.objects.filter(digits="4323").count() == 2


@pytest.mark.parametrize(
    "digits",
    ["", "43", "43234", "43a3", "٤٣٢٣", "４３２３", "४३२३", " 4323x", "+432", "43.3"],
)
def test_only_ascii_digits_of_the_center_length(acme, digits: str) -> None:
    with pytest.raises(DomainError) as caught:
        claim_extension(center=acme, digits=digits, kind=ExtensionKind.QUEUE)
    assert caught.value.code == "invalid_extension"
    assert not Extension.objects.filter(contact_center=acme).exists()


def test_extension_length_is_per_center(db) -> None:
    long_center = make_center("longext", extension_length=6)
    assert claim_extension(center=long_center, digits="123456", kind=ExtensionKind.QUEUE).digits == "123456"
    with pytest.raises(DomainError):
        claim_extension(center=long_center, digits="1234", kind=ExtensionKind.QUEUE)


def test_renumbering_keeps_the_row_and_refuses_taken_digits(acme) -> None:
    member = make_member(acme, extension="1001")
    make_queue(acme, extension="4323")
    original_pk = member.extension_id
    update_member(membership=member, extension="1002", by="tests")
    member.refresh_from_db()
    assert member.extension_id == original_pk
    assert member.extension.digits == "1002"
    with pytest.raises(DomainError) as caught:
        update_member(membership=member, extension="4323", by="tests")
    assert caught.value.code == "extension_taken"
    member.refresh_from_db()
    assert member.extension.digits == "1002"


def test_removing_an_extension_frees_the_digits(acme) -> None:
    member = make_member(acme, extension="1001")
    update_member(membership=member, extension="", by="tests")
    member.refresh_from_db()
    assert member.extension is None
    assert not Extension.objects.filter(contact_center=acme, digits="1001").exists()
    assert make_queue(acme, extension="1001").extension.digits == "1001"


def test_database_rejects_non_ascii_digits_even_without_the_service(acme) -> None:
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        Extension.objects.create(contact_center=acme, digits="４３２３", kind=ExtensionKind.QUEUE)


def _race(actions: list[Callable[[], object]]) -> list[object]:
    """Run the actions at the same moment in threads, each on its own connection."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int, action: Callable[[], object]) -> None:
        try:
            barrier.wait(timeout=10)
            results[index] = action()
        except Exception as exc:
            results[index] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_of_one_extension_let_exactly_one_win() -> None:
    center = make_center("race")
    actions: list[Callable[[], object]] = [
        lambda: make_queue(center, name="Queue A", extension="4323"),
        lambda: make_queue(center, name="Queue B", extension="4323"),
        lambda: add_member(center=center, email="a@race.example", role=Role.AGENT, extension="4323", by="t"),
        lambda: add_member(center=center, email="b@race.example", role=Role.AGENT, extension="4323", by="t"),
    ]
    results = _race(actions)
    winners = [r for r in results if isinstance(r, (Queue, Membership))]
    losers = [r for r in results if isinstance(r, DomainError)]
    assert len(winners) == 1, results
    assert len(losers) == 3 and all(e.code == "extension_taken" for e in losers), results
    assert Extension.objects.filter(contact_center=center, digits="4323").count() == 1
    # Losers left nothing half-created behind.
    assert (
        Queue.objects.filter(contact_center=center).count()
        + Membership.objects.filter(contact_center=center, extension__isnull=False).count()
        == 1
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_administrators_demoting_each_other_leave_one() -> None:
    center = make_center("demote")
    first = Membership.objects.get(contact_center=center)
    second = make_member(center, Role.ADMINISTRATOR)
    results = _race(
        [
            lambda: update_member(membership=Membership.objects.get(pk=first.pk), role=Role.AGENT, by="t"),
            lambda: update_member(membership=Membership.objects.get(pk=second.pk), role=Role.AGENT, by="t"),
        ]
    )
    assert sum(isinstance(r, DomainError) and r.code == "last_administrator" for r in results) == 1, results
    assert Membership.objects.filter(contact_center=center, role=Role.ADMINISTRATOR).count() == 1


def test_queue_member_keeps_an_extension_while_in_a_queue(acme) -> None:
    member = make_member(acme, extension="1001")
    make_queue(acme, name="Sales", extension="4323", members=[member])
    with pytest.raises(DomainError) as caught:
        update_member(membership=member, extension="", by="tests")
    assert caught.value.code == "extension_in_use" and "Sales" in caught.value.message
    member.refresh_from_db()
    assert member.extension.digits == "1001"


def test_overlong_email_is_a_clear_error(acme) -> None:
    with pytest.raises(DomainError) as caught:
        add_member(center=acme, email="a" * 250 + "@x.example", role=Role.AGENT, by="tests")
    assert caught.value.code == "invalid_email"


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_queues_with_one_name_let_exactly_one_win() -> None:
    center = make_center("namerace")
    results = _race(
        [
            lambda: make_queue(center, name="Sales", extension="4001"),
            lambda: make_queue(center, name="sales", extension="4002"),
        ]
    )
    assert sum(isinstance(r, Queue) for r in results) == 1, results
    assert [r.code for r in results if isinstance(r, DomainError)] == ["name_taken"]
    # The loser's extension was rolled back with it.
    assert Extension.objects.filter(contact_center=center).count() == 1
