"""Writes on routing objects. Atomic, audited."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict
from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Max, ProtectedError
from django.utils import timezone

from routing.models import (
    SERVICE_LEVEL_DEFAULT,
    SERVICE_LEVEL_MAX,
    SERVICE_LEVEL_MIN,
    FailoverAction,
    Flow,
    FlowVersion,
    FlowVersionState,
    PhoneNumber,
    Queue,
    QueueStrategy,
)
from virtual_agents.models import VirtualAgent
from voiso_byob.errors import DomainError
from voiso_byob.models import AuditEvent, ContactCenter, ExtensionKind, Membership
from voiso_byob.phone import normalise_e164
from voiso_byob.services import (
    Actor,
    bump_routing_revision,
    claim_extension,
    diff,
    set_extension,
    unique_name,
)


def _snapshot(queue: Queue) -> dict[str, Any]:
    return {
        "name": queue.name,
        "extension": queue.extension.digits,
        "strategy": queue.strategy,
        "max_wait_seconds": queue.max_wait_seconds,
        "service_level_seconds": queue.service_level_seconds,
        "failover_action": queue.failover_action,
        # The audit log is read by people, and outlives the rows: names, not ids. Members by
        # email (a changed display name is not a change of the queue), bots and queues by name.
        "failover_queue": queue.failover_queue.name if queue.failover_queue_id else None,
        "failover_number": queue.failover_number,
        "members": sorted(queue.members.values_list("user__email", flat=True)),
        "virtual_agent_members": sorted(queue.virtual_agent_members.values_list("name", flat=True)),
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
    service_level_seconds: int = SERVICE_LEVEL_DEFAULT,
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
    _check_service_level(service_level_seconds)
    ext = claim_extension(center=center, digits=(extension or "").strip(), kind=ExtensionKind.QUEUE)
    queue = Queue(
        contact_center=center,
        name=name,
        extension=ext,
        strategy=strategy,
        max_wait_seconds=max_wait_seconds,
        service_level_seconds=service_level_seconds,
        failover_action=failover[0],
        failover_queue=failover[1],
        failover_number=failover[2],
    )
    _save_named(queue)
    queue.members.set(members)
    queue.virtual_agent_members.set(virtual_agent_members)
    bump_routing_revision(center)
    AuditEvent.record(center=center, by=by, action="queue.created", target=queue, changes=_snapshot(queue))
    return queue


def _check_service_level(seconds: int) -> None:
    if not (SERVICE_LEVEL_MIN <= int(seconds) <= SERVICE_LEVEL_MAX):
        raise DomainError(
            "invalid",
            f"The service level threshold is between {SERVICE_LEVEL_MIN} and {SERVICE_LEVEL_MAX} seconds.",
            field="service_level_seconds",
        )


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
    service_level_seconds: int = _UNSET,
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
    if service_level_seconds is not _UNSET:
        _check_service_level(service_level_seconds)
        queue.service_level_seconds = service_level_seconds
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
        bump_routing_revision(center)
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
    bump_routing_revision(center)


# --- phone numbers -------------------------------------------------------------------------


def _check_flow(center: ContactCenter, flow: Flow | None, *, field: str = "flow") -> Flow | None:
    if flow is not None and flow.contact_center_id != center.pk:
        raise DomainError("invalid", "Choose a flow of this contact center.", field=field)
    return flow


@transaction.atomic
def create_phone_number(
    *, center: ContactCenter, by: Actor, number: str, label: str = "", flow: Flow | None = None
) -> PhoneNumber:
    number = normalise_e164(number, field="number")
    phone = PhoneNumber(contact_center=center, number=number, label=(label or "").strip()[:100])
    phone.flow = _check_flow(center, flow)
    try:
        with transaction.atomic():
            phone.save()
    except IntegrityError:
        # Numbers are unique across every contact center: a DID rings in one place only.
        raise DomainError("number_taken", f"{number} is already in use.", field="number") from None
    AuditEvent.record(
        center=center,
        by=by,
        action="phone_number.created",
        target=phone,
        changes={"number": number, "label": phone.label, "flow": flow.name if flow else None},
    )
    return phone


@transaction.atomic
def update_phone_number(
    *, phone: PhoneNumber, by: Actor, label: str | None = None, flow: Flow | None = _UNSET
) -> PhoneNumber:
    before = {"label": phone.label, "flow": phone.flow.name if phone.flow else None}
    if label is not None:
        phone.label = label.strip()[:100]
    if flow is not _UNSET:
        phone.flow = _check_flow(phone.contact_center, flow)
    phone.save(update_fields=["label", "flow"])
    changes = diff(before, {"label": phone.label, "flow": phone.flow.name if phone.flow else None})
    if changes:
        AuditEvent.record(
            center=phone.contact_center, by=by, action="phone_number.updated", target=phone, changes=changes
        )
    return phone


@transaction.atomic
def delete_phone_number(*, phone: PhoneNumber, by: Actor) -> None:
    AuditEvent.record(
        center=phone.contact_center,
        by=by,
        action="phone_number.deleted",
        target=phone,
        changes={"number": phone.number},
    )
    phone.delete()


# --- flows ---------------------------------------------------------------------------------


def flow_problems(center: ContactCenter, graph: Any) -> list[dict[str, Any]]:
    """What stops `graph` from being published in `center`, pinned to nodes. Reads only."""
    from routing.flows.schema import validate

    return [asdict(problem) for problem in validate(graph, targets=CenterTargets(center))]


def _check_business_hours(value: Any) -> dict[str, Any]:
    from routing.flows.schema import validate_schedule

    value = value or {}
    problems = validate_schedule(value)
    if problems:
        raise DomainError("invalid_business_hours", problems[0].message, field="business_hours")
    return value


def _check_after_hours(flow: Flow | None, target: Flow | None, center: ContactCenter) -> Flow | None:
    if target is None:
        return None
    if target.contact_center_id != center.pk:
        raise DomainError("invalid", "Choose a flow of this contact center.", field="after_hours_flow")
    seen = {flow.pk} if flow is not None else set()
    current: Flow | None = target
    while current is not None:
        if current.pk in seen:
            raise DomainError(
                "chain_loop", "That after-hours chain leads back to this flow.", field="after_hours_flow"
            )
        seen.add(current.pk)
        current = current.after_hours_flow
    return target


STARTER_GRAPH: dict[str, Any] = {
    "nodes": {
        "start": {"type": "start", "config": {}, "next": {"next": "hangup"}},
        "hangup": {"type": "hangup", "config": {}, "next": {}},
    },
    "layout": {"start": {"x": 40, "y": 40}, "hangup": {"x": 40, "y": 160}},
}


@transaction.atomic
def create_flow(
    *,
    center: ContactCenter,
    by: Actor,
    name: str,
    business_hours: dict[str, Any] | None = None,
    after_hours_flow: Flow | None = None,
    graph: dict[str, Any] | None = None,
) -> Flow:
    name = unique_name(name, among=Flow.objects.for_center(center), field="name", what="flow")
    flow = Flow(
        contact_center=center,
        name=name,
        business_hours=_check_business_hours(business_hours),
        after_hours_flow=_check_after_hours(None, after_hours_flow, center),
    )
    try:
        with transaction.atomic():
            flow.save()
    except IntegrityError:
        raise DomainError("name_taken", f"A flow named {name!r} already exists.", field="name") from None
    graph = graph if graph is not None else STARTER_GRAPH
    FlowVersion.objects.create(
        flow=flow, number=1, graph=graph, problems=flow_problems(center, graph), created_by=_user(by)
    )
    AuditEvent.record(center=center, by=by, action="flow.created", target=flow, changes={"name": name})
    return flow


def _user(by: Actor) -> Any:
    from voiso_byob.models import User

    return by if isinstance(by, User) else None


@transaction.atomic
def update_flow(
    *,
    flow: Flow,
    by: Actor,
    name: str | None = None,
    business_hours: dict[str, Any] | None = _UNSET,
    after_hours_flow: Flow | None = _UNSET,
) -> Flow:
    # Re-read under lock, and save only these fields: a stale instance must not undo a publish.
    flow = _locked(flow)
    center = flow.contact_center
    before = {
        "name": flow.name,
        "business_hours": flow.business_hours,
        "after_hours_flow": flow.after_hours_flow_id,
    }
    if name is not None:
        flow.name = unique_name(
            name, among=Flow.objects.for_center(center), field="name", what="flow", exclude=flow
        )
    if business_hours is not _UNSET:
        flow.business_hours = _check_business_hours(business_hours)
    if after_hours_flow is not _UNSET:
        flow.after_hours_flow = _check_after_hours(flow, after_hours_flow, center)
    flow.save(update_fields=["name", "business_hours", "after_hours_flow"])
    after = {
        "name": flow.name,
        "business_hours": flow.business_hours,
        "after_hours_flow": flow.after_hours_flow_id,
    }
    changes = diff(
        {k: str(v) if k == "after_hours_flow" and v else v for k, v in before.items()},
        {k: str(v) if k == "after_hours_flow" and v else v for k, v in after.items()},
    )
    if changes:
        AuditEvent.record(center=center, by=by, action="flow.updated", target=flow, changes=changes)
    return flow


def _locked(flow: Flow) -> Flow:
    # Saving, publishing and restoring one flow at once from two browsers must not fork
    # it into two drafts or two published versions: they queue on the flow row.
    return Flow.objects.select_for_update(of=("self",)).get(pk=flow.pk)


@transaction.atomic
def save_draft(*, flow: Flow, by: Actor, graph: Any) -> FlowVersion:
    """Store `graph` as the flow's draft, valid or not; its problems are kept with it."""
    if not isinstance(graph, dict):
        raise DomainError("invalid_graph", "A flow graph is a JSON object.", field="graph")
    flow = _locked(flow)
    problems = flow_problems(flow.contact_center, graph)
    draft = flow.versions.filter(state=FlowVersionState.DRAFT).first()
    if draft is None:
        number = (flow.versions.aggregate(top=Max("number"))["top"] or 0) + 1
        draft = FlowVersion(flow=flow, number=number, state=FlowVersionState.DRAFT)
    draft.graph = graph
    draft.problems = problems
    draft.created_by = _user(by)
    draft.created = timezone.now()
    draft.save()
    AuditEvent.record(
        center=flow.contact_center,
        by=by,
        action="flow.draft_saved",
        target=flow,
        changes={"version": draft.number, "nodes": len(graph.get("nodes") or {}), "problems": len(problems)},
    )
    return draft


@transaction.atomic
def publish_flow(*, flow: Flow, by: Actor) -> FlowVersion:
    """Publish the draft. Checked again now: a queue it routes to may have gone since it was saved."""
    flow = _locked(flow)
    draft = flow.versions.filter(state=FlowVersionState.DRAFT).first()
    if draft is None:
        raise DomainError("no_draft", "There is no draft to publish; edit the flow first.")
    problems = flow_problems(flow.contact_center, draft.graph)
    if problems:
        FlowVersion.objects.filter(pk=draft.pk).update(problems=problems)
        raise DomainError(
            "invalid_flow",
            f"The draft has {len(problems)} problem(s); fix them before publishing: {problems[0]['message']}",
        )
    flow.versions.filter(state=FlowVersionState.PUBLISHED).update(state=FlowVersionState.ARCHIVED)
    draft.state = FlowVersionState.PUBLISHED
    draft.problems = []
    draft.published_at = timezone.now()
    draft.save(update_fields=["state", "problems", "published_at"])
    flow.published_version = draft
    flow.save(update_fields=["published_version"])
    AuditEvent.record(
        center=flow.contact_center,
        by=by,
        action="flow.published",
        target=flow,
        changes={"version": draft.number},
    )
    return draft


@transaction.atomic
def restore_version(*, version: FlowVersion, by: Actor) -> FlowVersion:
    """Make an older version's graph the draft again (the version itself stays as it was)."""
    draft = save_draft(flow=version.flow, by=by, graph=version.graph)
    AuditEvent.record(
        center=version.flow.contact_center,
        by=by,
        action="flow.version_restored",
        target=version.flow,
        changes={"from_version": version.number, "draft": draft.number},
    )
    return draft


@transaction.atomic
def delete_flow(*, flow: Flow, by: Actor) -> None:
    numbers = list(flow.phone_numbers.values_list("number", flat=True))
    if numbers:
        raise DomainError("flow_in_use", f"Numbers {', '.join(numbers)} run this flow; move them first.")
    chained = list(flow.chained_from.values_list("name", flat=True))
    if chained:
        raise DomainError("flow_in_use", f"Flows {', '.join(chained)} chain to this one after hours.")
    AuditEvent.record(
        center=flow.contact_center, by=by, action="flow.deleted", target=flow, changes={"name": flow.name}
    )
    Flow.objects.filter(pk=flow.pk).update(published_version=None)
    flow.delete()


class CenterTargets:
    """Which route targets exist in a contact center: the flow validator asks, the database answers."""

    def __init__(self, center: ContactCenter) -> None:
        self.center = center
        self._known: dict[str, set[str]] | None = None

    def has(self, kind: str, ref: str) -> bool:
        if self._known is None:
            self._known = {
                "virtual_agent": {
                    str(pk)
                    for pk in VirtualAgent.objects.for_center(self.center).values_list("pk", flat=True)
                },
                "queue": {
                    str(pk) for pk in Queue.objects.for_center(self.center).values_list("pk", flat=True)
                },
                "user": {
                    str(pk)
                    for pk in Membership.objects.for_center(self.center)
                    .filter(extension__isnull=False)
                    .values_list("pk", flat=True)
                },
            }
        return str(ref) in self._known.get(kind, set())
