"""Writes on routing objects. Atomic, audited."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import ProtectedError

from routing.models import FailoverAction, Queue, QueueStrategy
from virtual_agents.models import VirtualAgent
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, ContactCenter, ExtensionKind, Membership
from voiso_byob.phone import normalise_e164
from voiso_byob.services import Actor, claim_extension, diff, set_extension, unique_name


def _snapshot(queue: Queue) -> dict[str, Any]:
    return {
        "name": queue.name,
        "extension": queue.extension.digits,
        "strategy": queue.strategy,
        "max_wait_seconds": queue.max_wait_seconds,
        "failover_action": queue.failover_action,
        "failover_queue": str(queue.failover_queue_id) if queue.failover_queue_id else None,
        "failover_number": queue.failover_number,
        "members": sorted(str(pk) for pk in queue.members.values_list("pk", flat=True)),
        "virtual_agent_members": sorted(
            str(pk) for pk in queue.virtual_agent_members.values_list("pk", flat=True)
        ),
    }


def _check_members(center: ContactCenter, members: Iterable[Membership]) -> list[Membership]:
    members = list(members)
    for member in members:
        if member.contact_center_id != center.pk:
            raise DomainError(
                "invalid_member", "Members must belong to this contact center.", field="members"
            )
        if member.extension_id is None:
            raise DomainError(
                "member_without_extension",
                f"{member.user.email} has no extension, so a queue cannot ring them.",
                field="members",
            )
    return members


def _check_virtual_agents(center: ContactCenter, agents: Iterable[VirtualAgent]) -> list[VirtualAgent]:
    agents = list(agents)
    for agent in agents:
        if agent.contact_center_id != center.pk:
            raise DomainError(
                "invalid_member",
                "Virtual agents must belong to this contact center.",
                field="virtual_agent_members",
            )
        if agent.extension_id is None:
            raise DomainError(
                "member_without_extension",
                f"Virtual agent {agent.name} has no extension, so a queue cannot ring it.",
                field="virtual_agent_members",
            )
    return agents


def _check_failover(
    center: ContactCenter,
    action: str,
    failover_queue: Queue | None,
    number: str,
    *,
    queue: Queue | None,
) -> tuple[str, Queue | None, str]:
    if action not in FailoverAction.values:
        raise DomainError("invalid_choice", "Unknown failover action.", field="failover_action")
    if action == FailoverAction.QUEUE:
        if failover_queue is None:
            raise DomainError("required", "Choose the queue to fail over to.", field="failover_queue")
        if failover_queue.contact_center_id != center.pk:
            raise DomainError("invalid", "Choose a queue of this contact center.", field="failover_queue")
        if queue is not None and _reaches(failover_queue, queue):
            raise DomainError(
                "failover_loop",
                "That failover would send callers round in a loop back to this queue.",
                field="failover_queue",
            )
        return action, failover_queue, ""
    if action == FailoverAction.EXTERNAL:
        return action, None, normalise_e164(number, field="failover_number")
    return action, None, ""


def _reaches(start: Queue, target: Queue) -> bool:
    """Whether following failover queues from `start` arrives at `target`."""
    seen: set[Any] = set()
    current: Queue | None = start
    while current is not None and current.pk not in seen:
        if current.pk == target.pk:
            return True
        seen.add(current.pk)
        current = current.failover_queue
    return False


@transaction.atomic
def create_queue(
    *,
    center: ContactCenter,
    by: Actor,
    name: str,
    extension: str,
    strategy: str = QueueStrategy.RING_ALL,
    members: Iterable[Membership] = (),
    virtual_agent_members: Iterable[VirtualAgent] = (),
    max_wait_seconds: int = 300,
    failover_action: str = FailoverAction.VOICEMAIL,
    failover_queue: Queue | None = None,
    failover_number: str = "",
) -> Queue:
    name = unique_name(name, among=Queue.objects.for_center(center), field="name", what="queue")
    if strategy not in QueueStrategy.values:
        raise DomainError("invalid_choice", "Unknown strategy.", field="strategy")
    members = _check_members(center, members)
    virtual_agent_members = _check_virtual_agents(center, virtual_agent_members)
    failover = _check_failover(center, failover_action, failover_queue, failover_number, queue=None)
    if not (5 <= int(max_wait_seconds) <= 86_400):
        raise DomainError(
            "invalid", "Maximum wait is between 5 seconds and 24 hours.", field="max_wait_seconds"
        )
    ext = claim_extension(center=center, digits=(extension or "").strip(), kind=ExtensionKind.QUEUE)
    queue = Queue(
        contact_center=center,
        name=name,
        extension=ext,
        strategy=strategy,
        max_wait_seconds=max_wait_seconds,
        failover_action=failover[0],
        failover_queue=failover[1],
        failover_number=failover[2],
    )
    _save_named(queue)
    queue.members.set(members)
    queue.virtual_agent_members.set(virtual_agent_members)
    AuditEvent.record(center=center, by=by, action="queue.created", target=queue, changes=_snapshot(queue))
    return queue


def _save_named(queue: Queue) -> None:
    # The name check above reads before writing; the unique constraint decides a race.
    try:
        with transaction.atomic():
            queue.save()
    except IntegrityError:
        raise DomainError(
            "name_taken", f"A queue named {queue.name!r} already exists.", field="name"
        ) from None


_UNSET: Any = object()


@transaction.atomic
def update_queue(
    *,
    queue: Queue,
    by: Actor,
    name: str = _UNSET,
    extension: str = _UNSET,
    strategy: str = _UNSET,
    members: Iterable[Membership] = _UNSET,
    virtual_agent_members: Iterable[VirtualAgent] = _UNSET,
    max_wait_seconds: int = _UNSET,
    failover_action: str = _UNSET,
    failover_queue: Queue | None = _UNSET,
    failover_number: str = _UNSET,
) -> Queue:
    center = queue.contact_center
    before = _snapshot(queue)
    if name is not _UNSET:
        queue.name = unique_name(
            name, among=Queue.objects.for_center(center), field="name", what="queue", exclude=queue
        )
    if strategy is not _UNSET:
        if strategy not in QueueStrategy.values:
            raise DomainError("invalid_choice", "Unknown strategy.", field="strategy")
        queue.strategy = strategy
    if max_wait_seconds is not _UNSET:
        if not (5 <= int(max_wait_seconds) <= 86_400):
            raise DomainError(
                "invalid", "Maximum wait is between 5 seconds and 24 hours.", field="max_wait_seconds"
            )
        queue.max_wait_seconds = max_wait_seconds
    if any(v is not _UNSET for v in (failover_action, failover_queue, failover_number)):
        action = queue.failover_action if failover_action is _UNSET else failover_action
        target = queue.failover_queue if failover_queue is _UNSET else failover_queue
        number = queue.failover_number if failover_number is _UNSET else failover_number
        queue.failover_action, queue.failover_queue, queue.failover_number = _check_failover(
            center, action, target, number, queue=queue
        )
    if members is not _UNSET:
        queue.members.set(_check_members(center, members))
    if virtual_agent_members is not _UNSET:
        queue.virtual_agent_members.set(_check_virtual_agents(center, virtual_agent_members))
    if extension is not _UNSET:
        if not (extension or "").strip():
            raise DomainError("required", "A queue needs an extension.", field="extension")
        set_extension(center=center, current=queue.extension, digits=extension, kind=ExtensionKind.QUEUE)
    _save_named(queue)
    changes = diff(before, _snapshot(queue))
    if changes:
        AuditEvent.record(center=center, by=by, action="queue.updated", target=queue, changes=changes)
    return queue


@transaction.atomic
def delete_queue(*, queue: Queue, by: Actor) -> None:
    center = queue.contact_center
    sources = list(queue.failover_sources.values_list("name", flat=True))
    if sources:
        raise DomainError(
            "queue_in_use",
            f"Queue {queue.name} is the failover of {', '.join(sources)}; change those first.",
        )
    AuditEvent.record(center=center, by=by, action="queue.deleted", target=queue, changes=_snapshot(queue))
    extension = queue.extension
    try:
        queue.delete()
    except ProtectedError as exc:  # a later app's reference (a flow, a virtual agent's default)
        raise DomainError("queue_in_use", f"Queue {queue.name} is still in use.") from exc
    extension.delete()
