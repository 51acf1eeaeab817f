"""Compiled nodes: each holds its parsed config and its branches as direct references.

`step(run)` does the node's work and returns the next node, or None when the run stops
(it then has appended the instruction that stops it: gather, dial, voicemail or hangup).
Everything that does not depend on the call is computed when the flow is compiled.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers

from routing.flows.calls import MAX_STATE_VARIABLES, CallInput, CenterInfo, RunState, Target
from routing.flows.checks import E164_RE, as_number
from routing.flows.fetch import HttpRequest, variables_from_reply, vet_url
from routing.flows.schedule import CLOSED, HOLIDAY, OPEN, Schedule

_UNSET: Any = object()
_HEADER_VALUE_RE = re.compile(r"[\x21-\x7e]{1,128}")


class Run:
    """The mutable state of one run; a CompiledFlow itself is shared and never changes."""

    __slots__ = (
        "_caller",
        "_region",
        "call",
        "center",
        "destination",
        "extensions",
        "instructions",
        "notes",
        "state",
        "variables",
    )

    def __init__(
        self, call: CallInput, center: CenterInfo, extensions: Mapping[str, Target], variables: dict[str, str]
    ) -> None:
        self.call = call
        self.center = center
        self.extensions = extensions
        self.variables = variables
        self.instructions: list[dict[str, Any]] = []
        self.notes: list[str] = []
        self.destination: dict[str, Any] | None = None
        self.state: RunState | None = None
        self._caller: Any = _UNSET
        self._region: Any = _UNSET

    def lookup(self, name: str) -> str | None:
        if name == "call.caller":
            return self.call.caller
        if name == "call.called":
            return self.call.called
        return self.variables.get(name)

    def caller_e164(self) -> str | None:
        """The caller in E.164, or None when the switch gave something else ('anonymous')."""
        if self._caller is _UNSET:
            raw = self.call.caller
            # Most callers arrive in E.164 already; phonenumbers costs ~10 µs, the regex ~0.2.
            self._caller = raw if E164_RE.fullmatch(raw) else parse_e164(raw)
        return self._caller

    def caller_region(self) -> str | None:
        if self._region is _UNSET:
            number = self.caller_e164()
            self._region = _region(number) if number else None
        return self._region

    def hangup(self, reason: str) -> None:
        self.notes.append(f"hang up: {reason}")
        self.instructions.append({"verb": "hangup", "reason": reason})


def parse_e164(raw: str) -> str | None:
    if len(raw) > 40:
        return None
    try:
        parsed = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def _region(number: str) -> str | None:
    # Country codes are prefix-free; when one maps to a single region (+33 → FR) that is the
    # answer phonenumbers would give, without its ~20 µs parse. Shared codes (+1, +44) need it.
    for length in (1, 2, 3):
        regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(int(number[1 : 1 + length]))
        if regions is not None:
            if len(regions) == 1:
                return regions[0]
            break
    try:
        return phonenumbers.region_code_for_number(phonenumbers.parse(number, None))
    except phonenumbers.NumberParseException:
        return None


class Node:
    __slots__ = ("id",)

    def __init__(self, node_id: str) -> None:
        self.id = node_id

    def link(self, branches: dict[str, Node]) -> None:
        """Take the branch references once every node of the flow exists."""

    def step(self, run: Run) -> Node | None:
        raise NotImplementedError


class Start(Node):
    __slots__ = ("next",)

    def link(self, branches: dict[str, Node]) -> None:
        self.next = branches["next"]

    def step(self, run: Run) -> Node | None:
        return self.next


class Play(Node):
    __slots__ = ("instruction", "next")

    def __init__(self, node_id: str, config: dict[str, Any]) -> None:
        super().__init__(node_id)
        key = "text" if "text" in config else "url"
        self.instruction = {"verb": "play", key: config[key]}

    def link(self, branches: dict[str, Node]) -> None:
        self.next = branches["next"]

    def step(self, run: Run) -> Node | None:
        # A copy: the caller may serialise or alter the instructions; the compiled flow is shared.
        run.instructions.append(self.instruction.copy())
        return self.next


class ScheduleNode(Node):
    __slots__ = ("branches", "schedule", "zone")

    def __init__(self, node_id: str, schedule: Schedule, zone: ZoneInfo) -> None:
        super().__init__(node_id)
        self.schedule = schedule
        self.zone = zone

    def link(self, branches: dict[str, Node]) -> None:
        # An unconnected holiday branch means "closed on holidays".
        holiday = branches.get(HOLIDAY, branches[CLOSED])
        self.branches = {OPEN: branches[OPEN], CLOSED: branches[CLOSED], HOLIDAY: holiday}

    def step(self, run: Run) -> Node | None:
        return self.branches[self.schedule.state_at(run.call.at, self.zone)]


class Menu(Node):
    __slots__ = ("choices", "invalid", "max_tries", "prompt", "timeout", "timeout_seconds")

    def __init__(self, node_id: str, config: dict[str, Any]) -> None:
        super().__init__(node_id)
        self.prompt = config["prompt"]
        self.timeout_seconds = config.get("timeout_seconds", 5)
        self.max_tries = config.get("max_tries", 3)

    def link(self, branches: dict[str, Node]) -> None:
        self.invalid = branches.pop("invalid")
        self.timeout = branches.pop("timeout")
        self.choices = branches

    def step(self, run: Run) -> Node | None:
        return self.ask(run, tries=1)

    def ask(self, run: Run, *, tries: int) -> None:
        run.instructions.append(
            {
                "verb": "gather",
                "prompt": self.prompt,
                "num_digits": 1,
                "timeout_seconds": self.timeout_seconds,
            }
        )
        run.state = RunState(node=self.id, tries=tries, variables=run.variables)

    def answer(self, run: Run, digits: str | None, *, tries: int) -> Node | None:
        """Continue after the caller answered try number `tries` with `digits` ("" or None: nothing)."""
        if digits:
            chosen = self.choices.get(digits)
            if chosen is not None:
                return chosen
        run.notes.append(
            f"{self.id}: {'invalid digits ' + repr(digits) if digits else 'no input'} (try {tries})"
        )
        if tries < self.max_tries:
            self.ask(run, tries=tries + 1)
            return None
        return self.invalid if digits else self.timeout


class Condition(Node):
    __slots__ = ("if_false", "if_true")

    def link(self, branches: dict[str, Node]) -> None:
        self.if_true = branches["true"]
        self.if_false = branches["false"]

    def step(self, run: Run) -> Node | None:
        return self.if_true if self.test(run) else self.if_false

    def test(self, run: Run) -> bool:
        raise NotImplementedError


class CallerPrefix(Condition):
    __slots__ = ("prefixes",)

    def __init__(self, node_id: str, config: dict[str, Any]) -> None:
        super().__init__(node_id)
        self.prefixes = tuple(config["prefixes"])

    def test(self, run: Run) -> bool:
        number = run.caller_e164()
        return number is not None and number.startswith(self.prefixes)


class CallerCountry(Condition):
    __slots__ = ("countries",)

    def __init__(self, node_id: str, config: dict[str, Any]) -> None:
        super().__init__(node_id)
        self.countries = frozenset(config["countries"])

    def test(self, run: Run) -> bool:
        return run.caller_region() in self.countries


class CallerInList(Condition):
    __slots__ = ("numbers",)

    def __init__(self, node_id: str, config: dict[str, Any]) -> None:
        super().__init__(node_id)
        self.numbers = frozenset(config["numbers"])

    def test(self, run: Run) -> bool:
        return run.caller_e164() in self.numbers


class VariableCompare(Condition):
    __slots__ = ("name", "number", "operator", "value")

    def __init__(self, node_id: str, config: dict[str, Any]) -> None:
        super().__init__(node_id)
        self.name = config["name"]
        self.operator = config["operator"]
        self.value = config.get("value", "")
        self.number = as_number(self.value) if self.operator in ("gt", "lt") else None

    def test(self, run: Run) -> bool:
        actual = run.lookup(self.name)
        operator = self.operator
        if operator == "exists":
            return actual is not None
        if operator == "ne":
            # An unset variable is not equal to anything.
            return actual != self.value
        if actual is None:
            return False
        if operator == "eq":
            return actual == self.value
        if operator == "contains":
            return self.value in actual
        # gt / lt compare numbers only: "10" > "9", and text is neither greater nor less.
        number = as_number(actual) if len(actual) <= 64 else None
        if number is None or self.number is None:
            return False
        return number > self.number if operator == "gt" else number < self.number


class HttpCall(Node):
    __slots__ = ("done", "error", "method", "prefix", "timeout", "url")

    def __init__(self, node_id: str, config: dict[str, Any]) -> None:
        super().__init__(node_id)
        self.method = config["method"]
        self.url = config["url"]
        self.timeout = float(config.get("timeout_seconds", 2.0))
        self.prefix = config["save_as"]

    def link(self, branches: dict[str, Node]) -> None:
        self.done = branches["done"]
        self.error = branches["error"]

    def step(self, run: Run) -> Node | None:
        # Earlier answers under this name must not survive a failed or different answer now.
        stale = [key for key in run.variables if key.startswith(self.prefix + ".")]
        for key in stale:
            del run.variables[key]
        if not run.call.is_http_allowed:
            run.notes.append(
                f"{self.id}: request not sent (a test call without write access contacts nothing); "
                "took the error branch"
            )
            return self.error
        try:
            reply = self._fetch(run)
        except Exception as exc:
            # The injected fetcher may fail in any way; the caller must still be routed.
            run.notes.append(f"{self.id}: request failed: {type(exc).__name__}: {exc}"[:300])
            return self.error
        variables = variables_from_reply(reply, self.prefix)
        if variables is None:
            run.notes.append(f"{self.id}: HTTP {reply.status}, not a JSON object")
            return self.error
        # The state carrying these to the next request has a bound; keep within it.
        room = MAX_STATE_VARIABLES - len(run.variables)
        run.variables.update(list(variables.items())[: max(room, 0)])
        return self.done

    def _fetch(self, run: Run) -> Any:
        call = run.call
        # One budget for resolving and fetching: the switch is holding the caller meanwhile.
        deadline = time.monotonic() + self.timeout
        address = vet_url(
            self.url, allow_private=call.allow_private_http, timeout=self.timeout, resolver=call.resolver
        )
        headers = {
            name: value
            for name, value in (
                ("X-Voiso-Call-Id", call.call_id),
                ("X-Voiso-Caller", call.caller),
                ("X-Voiso-Called", call.called),
            )
            # Whatever the switch sent as a caller must not break (or inject into) the request.
            if _HEADER_VALUE_RE.fullmatch(value)
        }
        body = None
        if self.method == "POST":
            body = {
                "call_id": call.call_id,
                "caller": call.caller,
                "called": call.called,
                "variables": run.variables,
            }
        remaining = max(deadline - time.monotonic(), 0.01)
        request = HttpRequest(self.method, self.url, remaining, headers=headers, json=body, address=address)
        return call.http(request)


class Voicemail(Node):
    __slots__ = ("instruction",)

    def __init__(self, node_id: str, config: dict[str, Any]) -> None:
        super().__init__(node_id)
        self.instruction = {"verb": "voicemail"}
        if config.get("greeting"):
            self.instruction["greeting"] = config["greeting"]

    def step(self, run: Run) -> Node | None:
        run.instructions.append(self.instruction.copy())
        return None


class Hangup(Node):
    __slots__ = ()

    def step(self, run: Run) -> Node | None:
        run.instructions.append({"verb": "hangup"})
        return None
