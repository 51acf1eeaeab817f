"""Reading and editing a flow graph the way the builder shows it: node names, branch slots,
one-line summaries. The graph may be anything a draft can hold (the API saves invalid drafts
too), so every read is defensive."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from routing.flows.schedule import DAYS
from routing.flows.schema import BRANCHES, DIGITS
from routing.forms.menus import KEYPAD

TYPE_LABELS = {
    "start": "Start",
    "schedule": "Schedule",
    "menu": "Menu",
    "play": "Play",
    "condition": "Condition",
    "http_request": "HTTP request",
    "route": "Route",
    "voicemail": "Voicemail",
    "hangup": "Hang up",
}
DAY_LABELS = {day: day.title() for day in DAYS}
OPERATORS = {"eq": "=", "ne": "≠", "contains": "contains", "gt": ">", "lt": "<", "exists": "is set"}


def nodes_of(graph: Any) -> dict[str, dict[str, Any]]:
    """The graph's nodes that can be drawn: string ids mapping to objects."""
    nodes = graph.get("nodes") if isinstance(graph, dict) else None
    if not isinstance(nodes, dict):
        return {}
    return {
        node_id: node
        for node_id, node in nodes.items()
        if isinstance(node_id, str) and isinstance(node, dict)
    }


def branches_of(node: Mapping[str, Any]) -> list[tuple[str, str | None]]:
    branches = node.get("next")
    if not isinstance(branches, dict):
        return []
    return [(str(name), target if isinstance(target, str) else None) for name, target in branches.items()]


def branch_label(name: str) -> str:
    return f"press {name}" if name in DIGITS else name


def cut(text: Any, limit: int = 60) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def schedule_summary(config: Mapping[str, Any]) -> str:
    weekly = config.get("weekly") if isinstance(config.get("weekly"), dict) else {}
    open_days = [DAY_LABELS.get(day, str(day)) for day, ranges in weekly.items() if ranges]
    holidays = config.get("holidays") if isinstance(config.get("holidays"), list) else []
    text = ", ".join(open_days) if open_days else "closed every day"
    if holidays:
        text += f" · {len(holidays)} holiday{'s' if len(holidays) != 1 else ''}"
    return text


def _condition_summary(config: Mapping[str, Any]) -> str:
    kind = config.get("kind")
    if kind == "caller_prefix":
        return "Caller starts with " + ", ".join(map(str, config.get("prefixes") or []))
    if kind == "caller_country":
        return "Caller from " + ", ".join(map(str, config.get("countries") or []))
    if kind == "caller_in_list":
        return f"Caller in a list of {len(config.get('numbers') or [])}"
    if kind == "variable":
        operator = OPERATORS.get(str(config.get("operator")), str(config.get("operator", "?")))
        value = "" if config.get("operator") == "exists" else f" {config.get('value', '')}"
        return f"{config.get('name', '?')} {operator}{value}"
    return "Not set up yet"


def _route_summary(config: Mapping[str, Any], names: Mapping[tuple[str, str], str]) -> str:
    target = config.get("target")
    if not isinstance(target, dict):
        return "No target yet"
    kind = target.get("type")
    if kind == "external":
        text = f"External {target.get('number', '?')}"
    elif kind == "variable":
        text = f"Number in {target.get('name', '?')}"
    else:
        name = names.get((str(kind), str(target.get("id"))))
        text = name if name is not None else f"Missing {str(kind).replace('_', ' ')}"
    if config.get("caller_id"):
        text += f" · as {config['caller_id']}"
    return text


def summary(node: Mapping[str, Any], names: Mapping[tuple[str, str], str]) -> str:
    """One line on what the node does; `names` maps (target kind, id) to a display name."""
    config = node.get("config") if isinstance(node.get("config"), dict) else {}
    kind = node.get("type")
    if kind == "start":
        text = "The call arrives"
    elif kind == "schedule":
        text = schedule_summary(config)
    elif kind == "menu":
        text = f"“{config['prompt']}”" if config.get("prompt") else "No prompt yet"
    elif kind == "play":
        text = f"“{config['text']}”" if config.get("text") else config.get("url") or "Nothing to play yet"
    elif kind == "condition":
        text = _condition_summary(config)
    elif kind == "http_request":
        text = f"{config.get('method', '?')} {config.get('url', '(no URL yet)')}"
    elif kind == "route":
        text = _route_summary(config, names)
    elif kind == "voicemail":
        text = f"“{config['greeting']}”" if config.get("greeting") else "Leave a message"
    elif kind == "hangup":
        text = "End the call"
    else:
        text = f"Unknown type {kind!r}"
    return cut(text)


# --- edits ---------------------------------------------------------------------------------


def node_choices(graph: dict[str, Any]) -> list[tuple[str, str]]:
    """Every node a branch can lead to, as "id — label (type)"."""
    choices = []
    for node_id, node in nodes_of(graph).items():
        label = node.get("label")
        kind = TYPE_LABELS.get(str(node.get("type")), str(node.get("type")))
        text = f"{node_id} — {label} ({kind})" if isinstance(label, str) and label else f"{node_id} ({kind})"
        choices.append((node_id, text))
    return choices


def branch_slots(graph: dict[str, Any]) -> list[tuple[str, str]]:
    """The branches a new node can hang from ("menu.1"), saying where each leads now."""
    slots = []
    for node_id, node in nodes_of(graph).items():
        kind = node.get("type")
        if kind not in BRANCHES:
            continue
        branches = dict(branches_of(node))
        required, optional = BRANCHES[kind]
        names = [name for name in branches if name in DIGITS] if kind == "menu" else []
        if kind == "menu":
            free = next((key for key in KEYPAD if key not in branches), None)
            names += [free] if free else []
        names += sorted(required) + sorted(optional - set(DIGITS))
        for name in names:
            now = branches.get(name)
            where = f"now → {now}" if now else "not connected"
            slots.append((f"{node_id}.{name}", f"{node_id} · {branch_label(name)} ({where})"))
    return slots


def new_node_id(graph: dict[str, Any], kind: str) -> str:
    if kind not in graph["nodes"]:
        return kind
    number = 2
    while f"{kind}_{number}" in graph["nodes"]:
        number += 1
    return f"{kind}_{number}"


def remove_node(graph: dict[str, Any], node_id: str) -> None:
    del graph["nodes"][node_id]
    if isinstance(graph.get("layout"), dict):
        graph["layout"].pop(node_id, None)
    for node in nodes_of(graph).values():
        branches = node.get("next")
        if isinstance(branches, dict):
            node["next"] = {name: target for name, target in branches.items() if target != node_id}
