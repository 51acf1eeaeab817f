"""Where an inbound call goes: the telephony route API's work, around the pure flow engine.

Hot path, after warm-up: one SQL query (routing.hotpath: the API key, its contact center
and the dialled number's flows), one cache write when the call waits at a menu (menu state
lives in the shared cache per call) and one cache read when it answers one. Compiled flows
are kept in this process, keyed by the published version and the center's routing
revision — so a publish (a new version id) or a change to any route target (a new
revision) is seen by every process on its next call.
"""

from __future__ import annotations

import json
import logging
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from threading import Lock
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.conf import settings
from django.core.cache import cache

from routing import menu_state
from routing.flows.calls import (
    CallInput,
    CenterInfo,
    FlowCompileError,
    InvalidRunState,
    RunResult,
    RunState,
    Target,
)
from routing.flows.engine import CompiledFlow, compile_flow
from routing.flows.schedule import Schedule, parse_schedule
from routing.hotpath import DialledLine
from routing.models import Flow, FlowVersion, Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.cache import CACHE_DOWN, cache_answered, cache_unavailable
from voiso_byob.errors import DomainError
from voiso_byob.models import ContactCenter, Membership
from voiso_byob.phone import normalise_e164
from voiso_byob.sip import external_handoff_uri, handoff_uri

logger = logging.getLogger(__name__)

MENU_STATE_SECONDS = menu_state.SECONDS
COMPILED_LIMIT = 512

_compiled: OrderedDict[tuple[UUID, int], CompiledFlow] = OrderedDict()
_compiled_lock = Lock()


class RouteRefused(DomainError):
    """A call the flow cannot take; `sip_status` is what the switch answers the call's INVITE with."""

    def __init__(self, code: str, message: str, *, status: int, sip_status: int) -> None:
        super().__init__(code, message, status=status)
        self.sip_status = sip_status


@dataclass(frozen=True)
class RouteAnswer:
    instructions: list[dict[str, Any]]
    destination: dict[str, Any] | None
    path: list[str]
    # What the caller must do with the call's menu state (routing.menu_state): store
    # `menu_state` when the call now waits at a menu, else drop it if `clear_state` (the call
    # has left the menu it waited at).
    center_id: Any = None
    call_id: str = ""
    menu_state: dict[str, Any] | None = None
    clear_state: bool = False

    @property
    def state_key(self) -> str:
        return menu_state.key(self.center_id, self.call_id)

    def save_state(self) -> None:
        if self.menu_state is not None:
            menu_state.save(self.center_id, self.call_id, self.menu_state)
        elif self.clear_state:
            menu_state.clear(self.center_id, self.call_id)


def center_info(center: ContactCenter) -> CenterInfo:
    return CenterInfo(
        slug=center.slug,
        timezone=center.timezone,
        allows_external=center.allows_external_transfers,
        sip_domain=center.sip_domain,
        external_refusal=center.external_refusal,
    )


def route_targets(center: ContactCenter) -> tuple[dict[tuple[str, str], Target], dict[str, Target]]:
    """Every route target of a center, by (kind, id) and by extension. Warm-up only."""
    by_ref: dict[tuple[str, str], Target] = {}
    by_extension: dict[str, Target] = {}

    def add(target: Target) -> None:
        by_ref[(target.kind, target.ref)] = target
        if target.extension:
            by_extension[target.extension] = target

    for queue in Queue.objects.for_center(center).select_related("extension"):
        digits = queue.extension.digits
        add(Target("queue", str(queue.pk), queue.name, handoff_uri(digits, center.slug), digits))
    for member in (
        Membership.objects.for_center(center)
        .filter(extension__isnull=False)
        .select_related("user", "extension")
    ):
        digits = member.extension.digits
        add(
            Target("user", str(member.pk), member.user.display_name, handoff_uri(digits, center.slug), digits)
        )
    agents = list(
        VirtualAgent.objects.for_center(center).select_related("extension", "default_handoff_extension")
    )
    for agent in agents:
        add(_agent_target(center, agent, by_extension))
    return by_ref, by_extension


def _agent_target(center: ContactCenter, agent: VirtualAgent, by_extension: dict[str, Target]) -> Target:
    default: Target | None = None
    if agent.default_handoff_extension is not None:
        default = by_extension.get(agent.default_handoff_extension.digits)
    elif agent.default_handoff_number:
        number = agent.default_handoff_number
        default = Target("external", number, number, external_handoff_uri(number, center.slug), number=number)
    return Target(
        "virtual_agent",
        str(agent.pk),
        agent.name,
        agent.sip_uri or None,
        agent.extension.digits if agent.extension else None,
        virtual_agent_id=str(agent.pk),
        default_handoff=default,
        is_enabled=agent.is_enabled and agent.is_connected and bool(agent.sip_uri),
    )


def compiled(version_id: UUID, center: ContactCenter) -> CompiledFlow:
    """The published version, compiled against the center's current targets (cached per revision)."""
    cache_key = (version_id, center.routing_revision)
    with _compiled_lock:
        flow = _compiled.get(cache_key)
        if flow is not None:
            _compiled.move_to_end(cache_key)
            return flow
    version = FlowVersion.objects.only("graph").get(pk=version_id)
    targets, extensions = route_targets(center)
    flow = compile_flow(version.graph, targets=targets, extensions=extensions, center=center_info(center))
    with _compiled_lock:
        _compiled[cache_key] = flow
        while len(_compiled) > COMPILED_LIMIT:
            _compiled.popitem(last=False)
    return flow


def forget_compiled() -> None:
    """Empty this process's compiled-flow cache (tests, and the benchmark's cold runs)."""
    with _compiled_lock:
        _compiled.clear()


# Counts the calls each bot is on from the stored call records: what active_calls reads while the
# counters are out of reach. Reporting, which owns the records, sets it when it loads (routing
# does not import reporting); None: no such reader, a bot then reads as free.
count_active_calls: Callable[[Iterable[str]], dict[str, int]] | None = None


def active_calls(virtual_agent_id: str) -> int:
    """Calls a virtual agent is on now; the call-event ingestion keeps this counter in Redis."""
    try:
        value = cache.get(f"va-active:{virtual_agent_id}")
    except CACHE_DOWN as exc:
        cache_unavailable("bots' active calls counted in PostgreSQL", exc)
        return _counted([virtual_agent_id]).get(virtual_agent_id, 0)
    cache_answered()
    return int(value or 0)


def active_calls_of(virtual_agent_ids: Iterable[str]) -> dict[str, int]:
    """`active_calls` of several bots in one cache round trip (the dashboard's load bars)."""
    keys = {f"va-active:{agent_id}": agent_id for agent_id in virtual_agent_ids}
    try:
        found = cache.get_many(list(keys))
    except CACHE_DOWN as exc:
        cache_unavailable("bots' active calls counted in PostgreSQL", exc)
        counted = _counted(keys.values())
        return {agent_id: counted.get(agent_id, 0) for agent_id in keys.values()}
    return {agent_id: max(int(found.get(key) or 0), 0) for key, agent_id in keys.items()}


def _counted(virtual_agent_ids: Iterable[str]) -> dict[str, int]:
    return count_active_calls(list(virtual_agent_ids)) if count_active_calls is not None else {}


def _capacity_check(center: ContactCenter) -> Any:
    capacities: dict[str, int] | None = None

    def is_available(virtual_agent_id: str) -> bool:
        nonlocal capacities
        if capacities is None:  # only when a flow actually routes to a bot
            capacities = {
                str(pk): cap
                for pk, cap in VirtualAgent.objects.for_center(center).values_list(
                    "pk", "max_concurrent_calls"
                )
            }
        return active_calls(virtual_agent_id) < capacities.get(virtual_agent_id, 0)

    return is_available


def menu_state_key(center_id: Any, call_id: str) -> str:
    return menu_state.key(center_id, call_id)


def route_call(
    *,
    center: ContactCenter,
    number: str,
    line: DialledLine | None,
    call_id: str,
    caller: str,
    at: datetime,
    digits: str | None,
    stored_state: Any = None,
) -> RouteAnswer:
    """Run the flow of the dialled number (or continue a call waiting at a menu).

    `center` and `line` come from routing.hotpath: the center's routing revision and the
    flow's published version decide which compiled flow runs. With `digits`, `stored_state`
    is what the shared cache holds under `menu_state_key()`. The answer says what to store;
    the caller stores it (routing.telephony does it in the same round trip as its check).
    """
    if line is None:
        raise RouteRefused(
            "unknown_number", f"{number} is not a number of this contact center.", status=404, sip_status=404
        )
    state: RunState | None = None
    if digits is not None:
        if stored_state is None:
            # 481 Call/Transaction Does Not Exist: the switch's call has no dialog with a menu here.
            raise RouteRefused(
                "unknown_call",
                f"Call {call_id} is not waiting at a menu here (unknown, finished or expired); "
                "post without digits to start it.",
                status=409,
                sip_status=481,
            )
        try:
            state = RunState.from_dict(stored_state["state"])
            version_id = UUID(stored_state["version"])
        except (InvalidRunState, KeyError, TypeError, ValueError):
            menu_state.clear(center.pk, call_id)
            raise RouteRefused(
                "unknown_call", f"Call {call_id} has no usable menu state.", status=409, sip_status=481
            ) from None
    else:
        version_id = _version_for(line, center, at)
    flow = compiled(version_id, center)
    result: RunResult = flow.run(
        CallInput(
            call_id=call_id,
            caller=caller,
            called=number,
            at=at,
            digits=digits,
            is_available=_capacity_check(center),
            allow_private_http=settings.FLOW_HTTP_ALLOW_PRIVATE,
        ),
        state,
    )
    new_state = None
    if result.state is not None:
        new_state = {"version": str(version_id), "state": result.state.as_dict()}
    return RouteAnswer(
        result.instructions,
        result.destination,
        result.path,
        center_id=center.pk,
        call_id=call_id,
        menu_state=new_state,
        clear_state=digits is not None and new_state is None,
    )


def dialled_number(to: str) -> str | None:
    """`to` as E.164, or None when it cannot be one of our numbers."""
    try:
        return normalise_e164(to, field="to")
    except DomainError:
        return None


def _version_for(line: DialledLine, center: ContactCenter, at: datetime) -> UUID:
    """The published version to run: the flow's, or its after-hours flow's outside business hours."""
    if line.published_version_id is None:
        # 480 Temporarily Unavailable: the number is ours, its flow is not published yet.
        raise RouteRefused(
            "no_published_flow",
            "This number has no published flow; publish one and attach it.",
            status=409,
            sip_status=480,
        )
    if line.after_hours_version_id is not None and line.business_hours:
        schedule = _business_hours(line.business_hours)
        if schedule is not None and not schedule.is_open(at, ZoneInfo(center.timezone)):
            return line.after_hours_version_id
    return line.published_version_id


@lru_cache(maxsize=256)
def _business_hours(text: str) -> Schedule | None:
    """Parsed once per distinct stored schedule (the text is the cache key, so edits are seen)."""
    hours = json.loads(text)
    return parse_schedule(hours) if hours else None


@dataclass(frozen=True)
class SimulationStep:
    digits: str | None
    instructions: list[dict[str, Any]]
    path: list[str]
    destination: dict[str, Any] | None
    notes: list[str]


def simulate_flow(
    *,
    flow: Flow,
    version: FlowVersion,
    caller: str,
    at: datetime,
    digits: list[str],
    is_http_allowed: bool,
) -> list[SimulationStep]:
    """A test call through `version` (a draft too): each menu answered with the next digits.

    A dry run: nothing is stored, nobody is called. http_request nodes make their request, as the
    real call would, only when `is_http_allowed` (callers with write access): a reader's test call
    must not make the server contact the outside world, so those nodes then note that they sent
    nothing and take their error branch. The draft is compiled afresh, since it changes in place.
    """
    center = flow.contact_center
    targets, extensions = route_targets(center)
    try:
        compiled_flow = compile_flow(
            version.graph, targets=targets, extensions=extensions, center=center_info(center)
        )
    except FlowCompileError as exc:
        raise DomainError("invalid_flow", f"This version cannot run: {exc}") from None
    called = flow.phone_numbers.values_list("number", flat=True).first() or ""
    answers = list(digits)
    steps: list[SimulationStep] = []
    state: RunState | None = None
    pressed: str | None = None
    for _ in range(len(answers) + 1):
        result = compiled_flow.run(
            CallInput(
                call_id="test-call",
                caller=caller,
                called=called,
                at=at,
                digits=pressed,
                is_available=_capacity_check(center),
                allow_private_http=settings.FLOW_HTTP_ALLOW_PRIVATE,
                is_http_allowed=is_http_allowed,
            ),
            state,
        )
        steps.append(
            SimulationStep(pressed, result.instructions, result.path, result.destination, result.notes)
        )
        if result.state is None or not answers:
            break
        state, pressed = result.state, answers.pop(0)
    return steps
