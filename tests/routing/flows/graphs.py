"""Graph builders shared by the flow tests: a small node vocabulary and known targets."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from routing.flows import CenterInfo, CompiledFlow, Target, compile_flow

BOT = "11111111-1111-4111-8111-111111111111"
BUSY_BOT = "22222222-2222-4222-8222-222222222222"
QUEUE = "33333333-3333-4333-8333-333333333333"
USER = "44444444-4444-4444-8444-444444444444"
GONE = "55555555-5555-4555-8555-555555555555"

LONDON = CenterInfo(slug="acme", timezone="Europe/London", allows_external=True, sip_domain="acme.voiso.com")
MONDAY_NOON = datetime(2025, 6, 2, 11, 0, tzinfo=UTC)  # 12:00 BST


def node(kind: str, config: dict[str, Any] | None = None, **branches: str | None) -> dict[str, Any]:
    return {"type": kind, "config": config or {}, "next": branches}


def play(then: str, text: str = "Hello") -> dict[str, Any]:
    return node("play", {"text": text}, next=then)


def flow(**nodes: dict[str, Any]) -> dict[str, Any]:
    """A graph of `nodes`; the first one named is reached from a start node unless one is given."""
    if not any(spec["type"] == "start" for spec in nodes.values()):
        nodes = {"start": node("start", next=next(iter(nodes))), **nodes}
    return {"nodes": nodes, "layout": {name: {"x": 0, "y": 40 * i} for i, name in enumerate(nodes)}}


def route_to(kind: str, ref: str | None = None, **extra: Any) -> dict[str, Any]:
    if kind == "external":
        target: dict[str, Any] = {"type": "external", "number": ref}
    elif kind == "variable":
        target = {"type": "variable", "name": ref}
    else:
        target = {"type": kind, "id": ref}
    branches = {"busy": extra.pop("busy")} if "busy" in extra else {}
    return node("route", {"target": target, **extra}, **branches)


def queue_target() -> Target:
    return Target("queue", QUEUE, "Sales", "sip:4323@acme.voiso.com", extension="4323")


def user_target() -> Target:
    return Target("user", USER, "Ann Agent", "sip:1001@acme.voiso.com", extension="1001")


def bot_target(*, handoff: Target | None = None, is_enabled: bool = True, ref: str = BOT) -> Target:
    return Target(
        "virtual_agent",
        ref,
        "Sales bot",
        "sip:sales@bots.example.com",
        extension="7001",
        virtual_agent_id=ref,
        default_handoff=handoff,
        is_enabled=is_enabled,
    )


def targets(*items: Target) -> dict[tuple[str, str], Target]:
    chosen = items or (queue_target(), user_target(), bot_target(handoff=queue_target()))
    return {(target.kind, target.ref): target for target in chosen}


class Known:
    """A TargetIndex over fixed (kind, ref) pairs, recording what it was asked."""

    def __init__(self, pairs: Mapping[tuple[str, str], Any] | None = None) -> None:
        self.pairs = set(pairs if pairs is not None else targets())
        self.asked: list[tuple[str, str]] = []

    def has(self, kind: str, ref: str) -> bool:
        self.asked.append((kind, ref))
        return (kind, ref) in self.pairs


def every_type() -> dict[str, Any]:
    """A valid graph that uses every node type and condition kind at least once."""
    return flow(
        start=node("start", next="hours"),
        hours=node(
            "schedule",
            {
                "weekly": {
                    "mon": [["09:00", "17:30"]],
                    "tue": [["00:00", "12:00"], ["13:00", "24:00"]],
                    "sun": [],
                },
                "holidays": [{"date": "2025-12-25", "name": "Christmas"}],
            },
            open="welcome",
            closed="closed",
            holiday="hangup",
        ),
        welcome=node("play", {"url": "https://cdn.example.com/welcome.wav"}, next="menu"),
        menu=node(
            "menu",
            {"prompt": "Press 1 or 2", "timeout_seconds": 5, "max_tries": 3},
            **{"1": "uk", "2": "lookup", "#": "vip", "invalid": "hangup", "timeout": "closed"},
        ),
        uk=node("condition", {"kind": "caller_prefix", "prefixes": ["+44"]}, true="country", false="bot"),
        country=node("condition", {"kind": "caller_country", "countries": ["GB"]}, true="bot", false="queue"),
        vip=node(
            "condition", {"kind": "caller_in_list", "numbers": ["+442079460018"]}, true="user", false="ext"
        ),
        lookup=node(
            "http_request",
            {"method": "GET", "url": "https://crm.example.com/x", "timeout_seconds": 1.5, "save_as": "crm"},
            done="tier",
            error="queue",
        ),
        tier=node(
            "condition",
            {"kind": "variable", "name": "crm.tier", "operator": "eq", "value": "gold"},
            true="by_var",
            false="queue",
        ),
        bot=route_to("virtual_agent", BOT, busy="queue", caller_id="+442079460000"),
        queue=route_to("queue", QUEUE),
        user=route_to("user", USER),
        ext=route_to("external", "+12125550199"),
        by_var=route_to("variable", "crm.agent"),
        closed=node("voicemail", {"greeting": "Leave a message"}),
        hangup=node("hangup"),
    )


def changed(graph: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A deep copy of `graph` with the dotted `path` set to `value` (or removed for DELETE)."""
    graph = copy.deepcopy(graph)
    *parents, last = path.split(".")
    target = graph
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[last]
    else:
        target[last] = value
    return graph


DELETE = object()


def build(graph: dict[str, Any], *, center: CenterInfo = LONDON, **kwargs: Any) -> CompiledFlow:
    """Compile `graph` with the standard targets and extensions 1001 (user) and 4323 (queue)."""
    kwargs.setdefault("targets", targets())
    kwargs.setdefault("extensions", {"1001": user_target(), "4323": queue_target()})
    return compile_flow(graph, center=center, **kwargs)
