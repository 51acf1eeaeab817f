"""The flow diagram, drawn on the server: node boxes placed on a canvas, branch arrows in SVG.

Positions come from the graph's `layout`; a node without one is placed by breadth-first
depth from the start node (one row per depth), moved right until it overlaps nothing.
The graph may be anything a draft can hold (the API saves invalid drafts too), so every
read here is defensive: a malformed node is drawn as well as it can be, never an error.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from routing.views.graph import TYPE_LABELS, branch_label, branches_of, cut, nodes_of, summary

NODE_WIDTH = 200
NODE_HEIGHT = 88
GAP_X = 40
GAP_Y = 76
MARGIN = 24
# Arrows back up the page bulge out to the right of the boxes.
BULGE = 56
MAX_COORDINATE = 20_000
LABEL_CHAR_WIDTH = 6.5  # px per character of a 12px branch label, near enough to leave room
LABEL_HEIGHT = 15


@dataclass(frozen=True)
class Box:
    id: str
    type: str
    type_label: str
    title: str
    summary: str
    x: int
    y: int
    problems: list[str] = field(default_factory=list)
    step: int | None = None  # order on the test call's path, from 1
    is_selected: bool = False

    @property
    def has_problems(self) -> bool:
        return bool(self.problems)


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    label: str
    d: str  # the SVG path
    label_x: int
    label_y: int
    is_on_path: bool = False


@dataclass(frozen=True)
class Diagram:
    boxes: list[Box]
    edges: list[Edge]
    width: int
    height: int


def auto_layout(nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, tuple[int, int]]:
    """Rows by breadth-first depth from the start node, each row centred on the widest one.

    Nodes no path reaches get rows of their own below, so they are visible and clickable.
    """
    depth: dict[str, int] = {}
    roots = [node_id for node_id, node in nodes.items() if node.get("type") == "start"]
    roots += [node_id for node_id in nodes if node_id not in roots]
    floor = 0
    for root in roots:
        if root in depth:
            continue
        depth[root] = floor
        queue = deque([root])
        while queue:
            current = queue.popleft()
            for _, target in branches_of(nodes[current]):
                if target in nodes and target not in depth:
                    depth[target] = depth[current] + 1
                    queue.append(target)
        floor = max(depth.values()) + 1
    rows: dict[int, list[str]] = {}
    for node_id, row in depth.items():
        rows.setdefault(row, []).append(node_id)
    widest = max((len(row) for row in rows.values()), default=0)
    step_x = NODE_WIDTH + GAP_X
    positions = {}
    for row, members in rows.items():
        offset = (widest - len(members)) * step_x // 2
        for index, node_id in enumerate(members):
            positions[node_id] = (MARGIN + offset + index * step_x, MARGIN + row * (NODE_HEIGHT + GAP_Y))
    return positions


def _point(value: Any) -> tuple[int, int] | None:
    if not isinstance(value, dict):
        return None
    x, y = value.get("x"), value.get("y")
    if type(x) is not int or type(y) is not int:
        return None
    return (min(max(x, 0), MAX_COORDINATE), min(max(y, 0), MAX_COORDINATE))


def _overlaps(placed: Iterable[tuple[int, int]], x: int, y: int) -> bool:
    return any(
        abs(x - px) < NODE_WIDTH + GAP_X // 2 and abs(y - py) < NODE_HEIGHT + GAP_Y // 2 for px, py in placed
    )


def positions(graph: Any) -> dict[str, tuple[int, int]]:
    """Where each node is drawn: its stored layout point, else its automatic place."""
    nodes = nodes_of(graph)
    layout = graph.get("layout") if isinstance(graph, dict) else None
    layout = layout if isinstance(layout, dict) else {}
    placed: dict[str, tuple[int, int]] = {}
    for node_id in nodes:
        point = _point(layout.get(node_id))
        if point is not None:
            placed[node_id] = point
    for node_id, (x, y) in auto_layout(nodes).items():
        if node_id in placed:
            continue
        while _overlaps(placed.values(), x, y):
            x += NODE_WIDTH + GAP_X
        placed[node_id] = (x, y)
    return placed


def free_spot(graph: Any, *, below: str | None) -> tuple[int, int]:
    """A place for a new node: under `below` when given, else under everything; never on a box."""
    placed = positions(graph)
    if below in placed:
        x, y = placed[below]
        y += NODE_HEIGHT + GAP_Y
    else:
        x, y = MARGIN, max((py for _, py in placed.values()), default=MARGIN - NODE_HEIGHT - GAP_Y)
        y += NODE_HEIGHT + GAP_Y
    while _overlaps(placed.values(), x, y):
        x += NODE_WIDTH + GAP_X
    return x, y


# --- the drawing ---------------------------------------------------------------------------


def _bezier(points: Sequence[tuple[float, float]], t: float) -> tuple[int, int]:
    (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
    u = 1 - t
    x = u**3 * x0 + 3 * u**2 * t * x1 + 3 * u * t**2 * x2 + t**3 * x3
    y = u**3 * y0 + 3 * u**2 * t * y1 + 3 * u * t**2 * y2 + t**3 * y3
    return round(x), round(y)


def _curve(
    source: tuple[int, int],
    target: tuple[int, int],
    out_index: int,
    out_count: int,
    in_index: int,
    in_count: int,
    label_width: float,
) -> tuple[list[tuple[float, float]], float]:
    """Control points of one arrow, and where along it (0..1) its label sits."""
    sx, sy = source
    tx, ty = target
    if source == target:  # a menu retrying itself: a loop out of the right side and back
        right = sx + NODE_WIDTH
        return [
            (right, sy + NODE_HEIGHT * 0.7),
            (right + BULGE, sy + NODE_HEIGHT * 0.9),
            (right + BULGE, sy + NODE_HEIGHT * 0.1),
            (right, sy + NODE_HEIGHT * 0.3),
        ], 0.5
    if ty >= sy + NODE_HEIGHT + 8:  # downwards: bottom edge to top edge, ends spread apart
        x0 = sx + NODE_WIDTH * (out_index + 1) / (out_count + 1)
        y0 = sy + NODE_HEIGHT
        x3 = tx + NODE_WIDTH * (in_index + 1) / (in_count + 1)
        y3 = ty
        bend = max(32.0, (y3 - y0) / 2)
        return [(x0, y0), (x0, y0 + bend), (x3, y3 - bend), (x3, y3)], 0.3
    is_level = ty + NODE_HEIGHT + 8 > sy  # neither below nor clearly above: side by side
    gap = max(tx - (sx + NODE_WIDTH), sx - (tx + NODE_WIDTH))
    if is_level and gap >= label_width + 24:  # room for the label between the boxes
        y0 = sy + NODE_HEIGHT * (out_index + 1) / (out_count + 1)
        y3 = ty + NODE_HEIGHT / 2
        x0, x3 = (sx + NODE_WIDTH, tx) if tx > sx else (sx, tx + NODE_WIDTH)
        middle = (x0 + x3) / 2
        return [(x0, y0), (middle, y0), (middle, y3), (x3, y3)], 0.5
    if is_level and gap > 0:  # close neighbours: under both boxes, the label in the gap below
        toward = 1 if tx > sx else -1
        x0 = sx + NODE_WIDTH / 2 + toward * NODE_WIDTH / 4
        x3 = tx + NODE_WIDTH / 2 - toward * NODE_WIDTH / 4
        y0, y3 = sy + NODE_HEIGHT, ty + NODE_HEIGHT
        dip = max(y0, y3) + GAP_Y * 0.6
        return [(x0, y0), (x0, dip), (x3, dip), (x3, y3)], 0.5
    if not is_level and gap > 0:  # up to another column: top edge up to the bottom edge
        x0 = sx + NODE_WIDTH * (out_index + 1) / (out_count + 1)
        x3 = tx + NODE_WIDTH * (in_index + 1) / (in_count + 1)
        y0, y3 = sy, ty + NODE_HEIGHT
        bend = max(32.0, (y0 - y3) / 2)
        return [(x0, y0), (x0, y0 - bend), (x3, y3 + bend), (x3, y3)], 0.5
    # Up the same column (a loop back): out of the right side, round, into the right side.
    x0, y0 = sx + NODE_WIDTH, sy + NODE_HEIGHT * (out_index + 1) / (out_count + 1)
    x3, y3 = tx + NODE_WIDTH, ty + NODE_HEIGHT * (in_index + 1) / (in_count + 1)
    reach = max(x0, x3) + BULGE
    return [(x0, y0), (reach, y0), (reach, y3), (x3, y3)], 0.5


def _path_pairs(path: Sequence[str]) -> set[tuple[str, str]]:
    return {(path[i], path[i + 1]) for i in range(len(path) - 1)}


def build(
    graph: Any,
    *,
    problems: Iterable[Mapping[str, Any]] = (),
    names: Mapping[tuple[str, str], str] | None = None,
    path: Sequence[str] = (),
    selected: str | None = None,
) -> Diagram:
    """The drawing of `graph`, its problems pinned to their nodes and `path` highlighted."""
    names = names or {}
    nodes = nodes_of(graph)
    placed = positions(graph)
    by_node: dict[str, list[str]] = {}
    for problem in problems:
        node_id = problem.get("node")
        if isinstance(node_id, str) and node_id in nodes:
            by_node.setdefault(node_id, []).append(str(problem.get("message", "")))
    steps: dict[str, int] = {}
    for node_id in path:
        steps.setdefault(node_id, len(steps) + 1)
    boxes = []
    for node_id, node in nodes.items():
        kind = str(node.get("type", ""))
        label = node.get("label")
        x, y = placed[node_id]
        boxes.append(
            Box(
                id=node_id,
                type=kind,
                type_label=TYPE_LABELS.get(kind, kind or "?"),
                title=cut(label, 40) if isinstance(label, str) and label else node_id,
                summary=summary(node, names),
                x=x,
                y=y,
                problems=by_node.get(node_id, []),
                step=steps.get(node_id),
                is_selected=node_id == selected,
            )
        )
    edges = _edges(nodes, placed, _path_pairs(path))
    right = max((x + NODE_WIDTH for x, _ in placed.values()), default=NODE_WIDTH)
    bottom = max((y + NODE_HEIGHT for _, y in placed.values()), default=NODE_HEIGHT)
    return Diagram(boxes=boxes, edges=edges, width=right + BULGE + MARGIN * 2, height=bottom + MARGIN * 2)


def _edges(
    nodes: Mapping[str, Mapping[str, Any]],
    placed: Mapping[str, tuple[int, int]],
    on_path: set[tuple[str, str]],
) -> list[Edge]:
    # Branches from one node to the same target share one arrow ("invalid, timeout").
    grouped: dict[str, dict[str, list[str]]] = {}
    for node_id, node in nodes.items():
        targets: dict[str, list[str]] = {}
        for name, target in branches_of(node):
            if target in nodes:
                targets.setdefault(target, []).append(branch_label(name))
        grouped[node_id] = targets
    incoming: dict[str, list[str]] = {}
    for node_id, targets in grouped.items():
        for target in targets:
            incoming.setdefault(target, []).append(node_id)
    for sources in incoming.values():
        sources.sort(key=lambda source: placed[source][0])
    edges: list[Edge] = []
    taken: list[tuple[float, float, float]] = []  # labels placed so far: centre x, y, half width
    for node_id, targets in grouped.items():
        ordered = sorted(targets, key=lambda target: placed[target][0])
        for out_index, target in enumerate(ordered):
            label = ", ".join(targets[target])
            points, at = _curve(
                placed[node_id],
                placed[target],
                out_index,
                len(ordered),
                incoming[target].index(node_id),
                len(incoming[target]),
                label_width=len(label) * LABEL_CHAR_WIDTH,
            )
            label_x, label_y = _unclash(_bezier(points, at), len(label) * LABEL_CHAR_WIDTH / 2, taken)
            (x0, y0), (x1, y1), (x2, y2), (x3, y3) = points
            edges.append(
                Edge(
                    source=node_id,
                    target=target,
                    label=label,
                    d=f"M{x0:.0f},{y0:.0f} C{x1:.0f},{y1:.0f} {x2:.0f},{y2:.0f} {x3:.0f},{y3:.0f}",
                    label_x=label_x,
                    label_y=label_y,
                    is_on_path=(node_id, target) in on_path,
                )
            )
    return edges


def _unclash(
    point: tuple[int, int], half_width: float, taken: list[tuple[float, float, float]]
) -> tuple[int, int]:
    """Move a label down until it overlaps no label placed before it, and remember it."""
    x, y = point
    for _ in range(6):
        clash = any(abs(x - ox) < half_width + ow + 4 and abs(y - oy) < LABEL_HEIGHT for ox, oy, ow in taken)
        if not clash:
            break
        y += LABEL_HEIGHT
    taken.append((x, y, half_width))
    return x, y
