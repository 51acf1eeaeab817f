"""The flow engine: a published graph is compiled once, then run per call in microseconds.

Compiling validates the graph's shape, parses every config (times, dates, numbers), resolves
every fixed route target to a dial target and links the nodes to each other, so a run is a
walk over objects: no parsing, no lookups by id, no I/O except an http_request node's fetch
(through the injected callable). Pure Python: no Django, no database.

A run stops at the first gather (a menu), dial, voicemail or hangup. When it stops at a menu
the result carries a small RunState; the next request for the call passes it back with the
caller's digits and the run continues at that menu.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from routing.flows.calls import (
    CallInput,
    CenterInfo,
    FlowCompileError,
    InvalidRunState,
    RunResult,
    RunState,
    Target,
)
from routing.flows.checks import Problem
from routing.flows.nodes import (
    CallerCountry,
    CallerInList,
    CallerPrefix,
    Hangup,
    HttpCall,
    Menu,
    Node,
    Play,
    Run,
    ScheduleNode,
    Start,
    VariableCompare,
    Voicemail,
)
from routing.flows.routes import Route, external_target
from routing.flows.schedule import parse_schedule
from routing.flows.schema import validate

# No valid flow gets near this (loops need caller input); it guards against the unforeseen.
MAX_STEPS = 100


class CompiledFlow:
    """A runnable flow. Immutable once built, so one instance serves every thread and call."""

    __slots__ = ("_extensions", "_menus", "_start", "center")

    def __init__(
        self, start: Node, menus: dict[str, Menu], extensions: dict[str, Target], center: CenterInfo
    ):
        self._start = start
        self._menus = menus
        self._extensions = extensions
        self.center = center

    def run(self, call: CallInput, state: RunState | None = None) -> RunResult:
        """Run from the start, or, given the state a menu left, from that menu with `call.digits`."""
        if state is None:
            run = Run(call, self.center, self._extensions, {})
            path: list[str] = []
            node: Node | None = self._start
        else:
            menu = self._menus.get(state.node)
            if menu is None:
                raise InvalidRunState(f"this flow has no menu {state.node!r} (published again since?)")
            run = Run(call, self.center, self._extensions, dict(state.variables))
            path = [menu.id]
            node = menu.answer(run, call.digits, tries=state.tries)
        steps = 0
        while node is not None:
            if steps == MAX_STEPS:
                run.hangup("step_limit")
                break
            steps += 1
            path.append(node.id)
            node = node.step(run)
        return RunResult(
            instructions=run.instructions,
            path=path,
            destination=run.destination,
            state=run.state,
            notes=run.notes,
        )


class _AnyTarget:
    """Compiling checks shape only: a target deleted since publishing must not stop the flow."""

    def has(self, kind: str, ref: str) -> bool:
        return True


def compile_flow(
    graph: Any,
    *,
    targets: Mapping[tuple[str, str], Target],
    extensions: Mapping[str, Target],
    center: CenterInfo,
) -> CompiledFlow:
    """Build the runnable form of `graph` for `center`; FlowCompileError when it cannot run.

    `targets` maps (kind, UUID text) → Target for the center's virtual agents, queues and
    users; `extensions` maps extension digits → Target for routes to a variable.
    """
    problems = validate(graph, targets=_AnyTarget())
    if problems:
        raise FlowCompileError(problems)
    try:
        zone = ZoneInfo(center.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise FlowCompileError(
            [Problem(None, None, "invalid_timezone", f"Unknown timezone {center.timezone!r}.")]
        ) from None
    specs: dict[str, dict[str, Any]] = graph["nodes"]
    context = _Context(zone, targets, center)
    nodes = {
        node_id: _BUILDERS[spec["type"]](node_id, spec.get("config", {}), context)
        for node_id, spec in specs.items()
    }
    for node_id, spec in specs.items():
        branches = spec.get("next", {})
        nodes[node_id].link({name: nodes[target] for name, target in branches.items() if target is not None})
    start = next(node for node in nodes.values() if isinstance(node, Start))
    menus = {node_id: node for node_id, node in nodes.items() if isinstance(node, Menu)}
    return CompiledFlow(start, menus, dict(extensions), center)


class _Context:
    __slots__ = ("center", "targets", "zone")

    def __init__(self, zone: ZoneInfo, targets: Mapping[tuple[str, str], Target], center: CenterInfo) -> None:
        self.zone = zone
        self.targets = targets
        self.center = center


def _route(node_id: str, config: dict[str, Any], context: _Context) -> Route:
    spec = config["target"]
    target: Target | None = None
    if spec["type"] == "external":
        target = external_target(spec["number"], context.center)
    elif spec["type"] != "variable":
        # Validation accepted any UUID spelling; the Django side keys by str(uuid).
        target = context.targets.get((spec["type"], str(uuid.UUID(spec["id"]))))
    return Route(node_id, config, target)


def _condition(node_id: str, config: dict[str, Any], context: _Context) -> Node:
    kinds: dict[str, Callable[[str, dict[str, Any]], Node]] = {
        "caller_prefix": CallerPrefix,
        "caller_country": CallerCountry,
        "caller_in_list": CallerInList,
        "variable": VariableCompare,
    }
    return kinds[config["kind"]](node_id, config)


_BUILDERS: dict[str, Callable[[str, dict[str, Any], _Context], Node]] = {
    "start": lambda node_id, config, context: Start(node_id),
    "schedule": lambda node_id, config, context: ScheduleNode(node_id, parse_schedule(config), context.zone),
    "menu": lambda node_id, config, context: Menu(node_id, config),
    "play": lambda node_id, config, context: Play(node_id, config),
    "condition": _condition,
    "http_request": lambda node_id, config, context: HttpCall(node_id, config),
    "route": _route,
    "voicemail": lambda node_id, config, context: Voicemail(node_id, config),
    "hangup": lambda node_id, config, context: Hangup(node_id),
}

__all__ = ["MAX_STEPS", "CompiledFlow", "compile_flow"]
