"""The engine's inputs and outputs: plain data the Django side builds and reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from routing.flows.checks import NODE_ID_RE, Problem
from routing.flows.fetch import HttpFetch, Resolver, httpx_fetch, resolve

MAX_STATE_VARIABLES = 200


class FlowCompileError(ValueError):
    """The graph cannot run: it has problems (a published version never should)."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = problems[0].message if problems else "invalid flow"
        super().__init__(f"The flow has {len(problems)} problem(s): {first}")


class InvalidRunState(ValueError):
    """A stored RunState that does not fit this flow (garbage, or a menu removed by a publish)."""


@dataclass(frozen=True, slots=True)
class Target:
    """Somewhere a route can send a call, resolved by the Django side at compile time."""

    kind: str  # virtual_agent | queue | user | external
    ref: str  # the object's UUID; the number for an external target
    name: str = ""
    sip_uri: str | None = None
    extension: str | None = None
    number: str | None = None
    virtual_agent_id: str | None = None
    default_handoff: Target | None = None
    is_enabled: bool = True

    def as_destination(self) -> dict[str, Any]:
        """The same shape as the REFER API's destination."""
        destination: dict[str, Any] = {"type": self.kind}
        for key in ("extension", "number", "name", "sip_uri"):
            value = getattr(self, key)
            if value:
                destination[key] = value
        return destination


def _no_refusal(number: str) -> str | None:
    return None


@dataclass(frozen=True, slots=True)
class CenterInfo:
    slug: str
    timezone: str
    allows_external: bool
    # The center's SIP domain (`ContactCenter.sip_domain`); external numbers are dialled on it
    # so the proxy applies the same policy as for a REFER. Empty: `{slug}.voiso.com`.
    sip_domain: str = ""
    # The center's toll-fraud guard on external numbers (ContactCenter.external_refusal): why a
    # number is refused, or None. Flows dial numbers from HTTP replies too, so it runs per call.
    external_refusal: Callable[[str], str | None] = _no_refusal

    @property
    def domain(self) -> str:
        return self.sip_domain or f"{self.slug}.voiso.com"


def _always_available(virtual_agent_id: str) -> bool:
    return True


@dataclass(frozen=True, slots=True)
class CallInput:
    call_id: str
    caller: str  # E.164, or whatever the switch saw ("anonymous", a national number)
    called: str
    at: datetime  # aware; schedules read it in the center's timezone
    digits: str | None = None  # the answer to the menu the stored state stopped at; "" = no input
    is_available: Callable[[str], bool] = _always_available  # virtual agent id → has capacity
    http: HttpFetch = httpx_fetch
    allow_private_http: bool = False
    resolver: Resolver = resolve
    # False for a dry run by someone who may only read: an http_request node then neither resolves
    # nor sends anything, notes that, and follows its error branch.
    is_http_allowed: bool = True

    def __post_init__(self) -> None:
        if self.at.tzinfo is None or self.at.utcoffset() is None:
            raise ValueError("CallInput.at must be an aware datetime")


@dataclass(frozen=True, slots=True)
class RunState:
    """Where a call waits: the menu it stopped at, which try that was, and its variables."""

    node: str
    tries: int = 1
    variables: Mapping[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"node": self.node, "tries": self.tries, "variables": dict(self.variables)}

    @classmethod
    def from_dict(cls, data: Any) -> RunState:
        """Back from `as_dict` (e.g. out of a cache); InvalidRunState for anything else."""
        if not isinstance(data, dict) or set(data) != {"node", "tries", "variables"}:
            raise InvalidRunState("not a run state")
        node, tries, variables = data["node"], data["tries"], data["variables"]
        if not isinstance(node, str) or not NODE_ID_RE.fullmatch(node):
            raise InvalidRunState("bad node id")
        if type(tries) is not int or not 1 <= tries <= 5:
            raise InvalidRunState("bad tries")
        is_text_map = isinstance(variables, dict) and all(
            isinstance(key, str) and isinstance(value, str) for key, value in variables.items()
        )
        if not is_text_map or len(variables) > MAX_STATE_VARIABLES:
            raise InvalidRunState("bad variables")
        return cls(node=node, tries=tries, variables=variables)


@dataclass(slots=True)
class RunResult:
    instructions: list[dict[str, Any]]
    path: list[str]  # node ids visited by this run, in order
    destination: dict[str, Any] | None  # set when the run ends in a dial
    state: RunState | None  # set when the run waits at a menu; store it per call_id
    notes: list[str] = field(default_factory=list)  # why a fallback was taken, for the test-call panel
