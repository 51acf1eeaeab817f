"""The flow graph format and its validation.

A flow version's graph (``FlowVersion.graph``) is one JSON object:

    {
      "nodes": {"<node id>": <node>, ...},               # 1..200 nodes
      "layout": {"<node id>": {"x": <int>, "y": <int>}}  # optional; the builder's canvas only
    }

No other top-level keys; the whole graph serialises to at most 64 KB of UTF-8 JSON.
Node ids match ``^[a-z][a-z0-9_]{0,39}$``. A node is

    {"type": "<type>", "label": "<optional, ≤ 100 chars>", "config": {...}, "next": {"<branch>": "<node id>"}}

``config`` and ``next`` may be omitted when empty; a branch whose value is ``null`` is not
connected. Unknown keys are refused everywhere, so a typo never silently means "default".

Types, their config and their branches (R = required, O = optional):

``start``
    config ``{}``; branches R ``next``. Exactly one per graph.
``schedule``
    config ``{"weekly": {"mon": [["09:00", "17:30"], ...], ..., "sun": []},
    "holidays": [{"date": "YYYY-MM-DD", "name": "<1..100 chars>"}]}`` (see ``schedule.py``:
    wall-clock ranges in the contact center's timezone, end exclusive, "24:00" only as an end,
    no range across midnight, missing day = closed); branches R ``open``, R ``closed``,
    O ``holiday`` (a holiday takes ``closed`` when it is not connected; holiday beats open).
``menu``
    config ``{"prompt": "<1..500 chars>", "timeout_seconds": 1..30 (default 5),
    "max_tries": 1..5 (default 3)}``; branches: at least one of ``0``-``9``, ``*``, ``#``, and
    R ``invalid``, R ``timeout``. The prompt is gathered up to ``max_tries`` times; after the last
    failed try the ``invalid`` or ``timeout`` branch (whichever the last failure was) is taken.
``play``
    config exactly one of ``{"text": "<1..1000 chars>"}`` or ``{"url": "<http(s) URL>"}``;
    branches R ``next``.
``condition``
    config one of
    ``{"kind": "caller_prefix", "prefixes": ["+44", ...]}`` (1..100 prefixes, ``+`` then 1..15 digits),
    ``{"kind": "caller_country", "countries": ["GB", ...]}`` (phonenumbers region codes),
    ``{"kind": "caller_in_list", "numbers": ["+442079460018", ...]}`` (1..500 E.164 numbers),
    ``{"kind": "variable", "name": "<variable>", "operator": "eq"|"ne"|"contains"|"gt"|"lt"|"exists",
    "value": "<≤ 256 chars>"}`` (``value`` is not used by ``exists``; ``gt``/``lt`` compare numbers
    and need a numeric value); branches R ``true``, R ``false``.
``http_request``
    config ``{"method": "GET"|"POST", "url": "<http(s) URL>", "timeout_seconds": 0.1..2.0
    (default 2.0), "save_as": "<name>"}``; branches R ``done``, R ``error``. The scalar top-level
    fields of a 2xx JSON-object response become variables ``<save_as>.<key>``.
``route``
    config ``{"target": <target>, "caller_id": "<optional E.164>"}`` where target is
    ``{"type": "virtual_agent"|"queue"|"user", "id": "<uuid>"}``,
    ``{"type": "external", "number": "<E.164>"}`` or ``{"type": "variable", "name": "<variable>"}``
    (an extension or an E.164 number at run time); branches O ``busy``.
``voicemail``
    config ``{"greeting": "<optional, 1..500 chars>"}``; no branches.
``hangup``
    config ``{}``; no branches.

Variable names are ``<name>`` or ``<name>.<key>`` with name ``^[a-z][a-z0-9_]{0,39}$`` and key
``[A-Za-z0-9_-]{1,64}``; ``call.caller`` and ``call.called`` are built in, so ``save_as`` may
not be ``call``.

Graph rules: exactly one start; every required branch connected and no unknown branch; every
branch points to an existing node; every node reachable from start; no loop that can run
without caller input (every cycle passes through a menu); every route target exists in the
contact center (asked through ``TargetIndex``).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

from routing.flows.checks import NODE_ID_RE, Problem, TargetIndex, show
from routing.flows.configs import CONFIG_CHECKS, validate_schedule

MAX_NODES = 200
MAX_GRAPH_BYTES = 64 * 1024
MAX_LABEL = 100

DIGITS = frozenset("0123456789*#")
# type → (required branches, optional branches); menu digits are handled on their own.
BRANCHES: dict[str, tuple[frozenset[str], frozenset[str]]] = {
    "start": (frozenset({"next"}), frozenset()),
    "schedule": (frozenset({"open", "closed"}), frozenset({"holiday"})),
    "menu": (frozenset({"invalid", "timeout"}), DIGITS),
    "play": (frozenset({"next"}), frozenset()),
    "condition": (frozenset({"true", "false"}), frozenset()),
    "http_request": (frozenset({"done", "error"}), frozenset()),
    "route": (frozenset(), frozenset({"busy"})),
    "voicemail": (frozenset(), frozenset()),
    "hangup": (frozenset(), frozenset()),
}
NODE_KEYS = frozenset({"type", "label", "config", "next"})


def validate(graph: Any, *, targets: TargetIndex) -> list[Problem]:
    """Every problem with `graph`; never raises, whatever `graph` is."""
    problem = _check_envelope(graph)
    if problem is not None:
        return [problem]
    nodes: dict[Any, Any] = graph["nodes"]
    problems: list[Problem] = []
    edges: dict[str, list[str]] = {}
    for node_id, node in nodes.items():
        problems += _check_node(node_id, node, nodes, targets, edges)
    problems += _check_layout(graph.get("layout"))
    starts = sorted(node_id for node_id, node in _typed(nodes) if node["type"] == "start")
    if not starts:
        problems.append(Problem(None, None, "missing_start", "The flow needs a start node."))
    for extra in starts[1:]:
        problems.append(
            Problem(extra, "type", "multiple_starts", f"Only one start node is allowed ({starts[0]}).")
        )
    # An unconnected start already says it all; every other node being unreachable is noise.
    if len(starts) == 1 and edges.get(starts[0]):
        problems += _check_reachable(starts[0], edges)
    problems += _check_loops(nodes, edges)
    return problems


# --- the envelope ------------------------------------------------------------------------


def _check_envelope(graph: Any) -> Problem | None:
    """Size, top-level shape and node count: the checks that stop everything else."""
    try:
        size = len(json.dumps(graph, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    except (TypeError, ValueError, RecursionError):
        # UnicodeEncodeError (lone surrogates) is a ValueError too.
        return Problem(None, None, "invalid_graph", "The flow graph is not plain JSON.")
    if size > MAX_GRAPH_BYTES:
        return Problem(None, None, "too_large", f"The flow is {size} bytes of JSON; the limit is 64 KB.")
    if not isinstance(graph, dict) or not isinstance(graph.get("nodes"), dict):
        return Problem(None, None, "invalid_graph", 'A flow graph is a JSON object with "nodes".')
    unknown = sorted(str(key) for key in graph if key not in ("nodes", "layout"))
    if unknown:
        return Problem(None, unknown[0], "unknown_field", f"Unknown top-level field {show(unknown[0])}.")
    count = len(graph["nodes"])
    if count == 0:
        return Problem(None, "nodes", "missing_start", "The flow has no nodes; it needs a start node.")
    if count > MAX_NODES:
        return Problem(
            None, "nodes", "too_many_nodes", f"The flow has {count} nodes; the limit is {MAX_NODES}."
        )
    return None


def _check_layout(layout: Any) -> list[Problem]:
    if layout is None:
        return []
    message = 'The layout maps node ids to {"x": <integer>, "y": <integer>}.'
    if not isinstance(layout, dict):
        return [Problem(None, "layout", "invalid_layout", message)]
    for node_id, point in layout.items():
        is_point = (
            isinstance(point, dict)
            and set(point) == {"x", "y"}
            and all(type(point[axis]) is int for axis in ("x", "y"))
        )
        if not is_point:
            node = node_id if isinstance(node_id, str) and NODE_ID_RE.fullmatch(node_id) else None
            return [Problem(node, "layout", "invalid_layout", message)]
    return []


def _typed(nodes: Mapping[Any, Any]) -> Iterable[tuple[str, dict[str, Any]]]:
    """Nodes with a valid id and a known type: the ones graph-level rules reason about."""
    for node_id, node in nodes.items():
        is_valid_id = isinstance(node_id, str) and NODE_ID_RE.fullmatch(node_id)
        if is_valid_id and isinstance(node, dict) and _is_type(node.get("type")):
            yield node_id, node


def _is_type(kind: Any) -> bool:
    # isinstance first: `in` on a dict raises TypeError for unhashable garbage such as a list.
    return isinstance(kind, str) and kind in BRANCHES


# --- one node ----------------------------------------------------------------------------


def _check_node(
    node_id: Any, node: Any, nodes: dict[Any, Any], targets: TargetIndex, edges: dict[str, list[str]]
) -> list[Problem]:
    if not isinstance(node_id, str) or not NODE_ID_RE.fullmatch(node_id):
        return [
            Problem(
                None,
                "nodes",
                "invalid_node_id",
                f"Node id {show(node_id)} must be a lower-case letter, then letters, digits or _ (≤ 40).",
            )
        ]
    if not isinstance(node, dict):
        return [Problem(node_id, None, "invalid_node", "A node is a JSON object with a type.")]
    kind = node.get("type")
    if not _is_type(kind):
        allowed = ", ".join(BRANCHES)
        return [
            Problem(node_id, "type", "unknown_type", f"Unknown node type {show(kind)}; use one of {allowed}.")
        ]
    problems = [
        Problem(node_id, str(key), "unknown_field", f"Unknown node field {show(key)}.")
        for key in node
        if key not in NODE_KEYS
    ]
    label = node.get("label")
    if label is not None and not (isinstance(label, str) and len(label) <= MAX_LABEL):
        problems.append(
            Problem(node_id, "label", "invalid", f"The label is text of at most {MAX_LABEL} characters.")
        )
    problems += CONFIG_CHECKS[kind](node_id, node.get("config", {}), targets)
    problems += _check_branches(node_id, kind, node.get("next", {}), nodes, edges)
    return problems


def _check_branches(
    node_id: str, kind: str, branches: Any, nodes: dict[Any, Any], edges: dict[str, list[str]]
) -> list[Problem]:
    edges[node_id] = []
    if not isinstance(branches, dict):
        return [Problem(node_id, "next", "invalid", "Branches are an object of branch name → node id.")]
    required, optional = BRANCHES[kind]
    problems = []
    for name, target in branches.items():
        if name not in required and name not in optional:
            message = f"A {kind} node has no branch {show(name)}."
            problems.append(Problem(node_id, f"next.{name}", "unknown_branch", message))
        elif target is None:
            continue
        elif not isinstance(target, str) or target not in nodes:
            message = f"Branch {name} points to {show(target)}, which is not a node of this flow."
            problems.append(Problem(node_id, f"next.{name}", "missing_node", message))
        else:
            edges[node_id].append(target)
    connected = {name for name, target in branches.items() if target is not None}
    for name in sorted(required - connected):
        problems.append(Problem(node_id, f"next.{name}", "missing_branch", f"Connect the {name} branch."))
    if kind == "menu" and not connected & DIGITS:
        problems.append(Problem(node_id, "next", "missing_branch", "Connect at least one digit (0-9, *, #)."))
    return problems


# --- graph-level rules -------------------------------------------------------------------


def _check_reachable(start: str, edges: dict[str, list[str]]) -> list[Problem]:
    seen = {start}
    queue = deque([start])
    while queue:
        for target in edges.get(queue.popleft(), ()):
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return [
        Problem(node_id, None, "unreachable", "No path from the start node reaches this node.")
        for node_id in edges
        if node_id not in seen
    ]


def _check_loops(nodes: dict[Any, Any], edges: dict[str, list[str]]) -> list[Problem]:
    """Nodes on a cycle that never passes through a menu: the run would spin without the caller."""
    # A menu stops the run for caller input, so edges leaving a menu cannot close such a loop.
    silent = {node_id: targets for node_id, targets in edges.items() if nodes[node_id].get("type") != "menu"}
    problems = []
    for node_id in silent:
        cycle = _path_back(node_id, silent)
        if cycle is not None:
            route = " → ".join([node_id, *cycle])
            message = f"This node is on a loop that never waits for the caller ({route}); add a menu to it."
            problems.append(Problem(node_id, None, "loop_without_input", message))
    return problems


def _path_back(origin: str, edges: dict[str, list[str]]) -> list[str] | None:
    """The shortest path from `origin`'s successors back to `origin` within `edges`, or None."""
    parents: dict[str, str | None] = dict.fromkeys(edges[origin])
    queue = deque(parents)
    while queue:
        current = queue.popleft()
        if current == origin:
            path: list[str] = []
            step: str | None = current
            while step is not None:
                path.append(step)
                step = parents[step]
            return path[::-1]
        for target in edges.get(current, ()):
            if target not in parents:
                parents[target] = current
                queue.append(target)
    return None


__all__ = ["MAX_GRAPH_BYTES", "MAX_NODES", "Problem", "TargetIndex", "validate", "validate_schedule"]
