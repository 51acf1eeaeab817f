"""The route node: dial a target, or fall back when it is busy, disabled or not allowed.

A virtual agent that is disabled or at capacity takes the node's busy branch; without one,
its default handoff destination is dialled when that is reachable; otherwise the call is
hung up with a reason. Other targets are reachable unless disabled or without a SIP URI.
"""

from __future__ import annotations

from typing import Any

from routing.flows.calls import CenterInfo, Target
from routing.flows.checks import is_e164
from routing.flows.nodes import Node, Run, parse_e164


class Route(Node):
    __slots__ = ("busy", "caller_id", "target", "variable")

    def __init__(self, node_id: str, config: dict[str, Any], target: Target | None) -> None:
        super().__init__(node_id)
        self.target = target
        spec = config["target"]
        self.variable = spec["name"] if spec["type"] == "variable" else None
        self.caller_id = config.get("caller_id")
        self.busy: Node | None = None

    def link(self, branches: dict[str, Node]) -> None:
        self.busy = branches.get("busy")

    def step(self, run: Run) -> Node | None:
        target = self.target if self.variable is None else _variable_target(run, self.variable)
        if target is None:
            run.hangup("unknown_target" if self.variable else "target_missing")
            return None
        if target.kind == "external" and not run.center.allows_external:
            run.hangup("external_not_allowed")
            return None
        refusal = _external_refusal(run, target)
        if refusal is not None:
            run.notes.append(f"{self.id}: {refusal}")
            run.hangup("destination_denied")
            return None
        if _is_reachable(run, target):
            self._dial(run, target)
            return None
        if self.busy is not None:
            run.notes.append(f"{self.id}: {target.kind} {target.name or target.ref} unavailable, busy branch")
            return self.busy
        self._fall_back(run, target)
        return None

    def _fall_back(self, run: Run, target: Target) -> None:
        """No busy branch: the target's default handoff if it can take the call, else hang up."""
        fallback = target.default_handoff
        if fallback is not None and _can_take(run, fallback):
            run.notes.append(f"{self.id}: {target.name or target.ref} unavailable, default handoff")
            self._dial(run, fallback)
        else:
            run.hangup("target_unavailable")

    def _dial(self, run: Run, target: Target) -> None:
        headers = {"X-Voiso-Call-Id": run.call.call_id, "X-Voiso-Target": target.kind}
        if target.kind != "external":
            headers["X-Voiso-Target-Id"] = target.ref
        instruction: dict[str, Any] = {"verb": "dial", "sip_uri": target.sip_uri, "headers": headers}
        if self.caller_id:
            instruction["caller_id"] = self.caller_id
        run.instructions.append(instruction)
        run.destination = target.as_destination()


def _can_take(run: Run, fallback: Target) -> bool:
    if fallback.kind == "external" and not run.center.allows_external:
        return False
    if _external_refusal(run, fallback) is not None:
        return False
    return _is_reachable(run, fallback)


def _external_refusal(run: Run, target: Target) -> str | None:
    if target.kind != "external" or target.number is None:
        return None
    return run.center.external_refusal(target.number)


def _is_reachable(run: Run, target: Target) -> bool:
    if not target.sip_uri or not target.is_enabled:
        return False
    if target.kind == "virtual_agent":
        return bool(run.call.is_available(target.virtual_agent_id or target.ref))
    return True


def _variable_target(run: Run, name: str) -> Target | None:
    """An extension of this center or an E.164 number held in a variable, as a Target."""
    value = (run.lookup(name) or "").strip()
    target = run.extensions.get(value) if value else None
    if target is not None:
        return target
    number = parse_e164(value) if value.startswith("+") else None
    if number is None or not is_e164(number):
        run.notes.append(f"variable {name} = {value[:40]!r} is neither an extension nor a phone number")
        return None
    return external_target(number, run.center)


def external_target(number: str, center: CenterInfo) -> Target:
    return Target(
        kind="external", ref=number, number=number, sip_uri=f"sip:{number}@{center.domain};user=phone"
    )
