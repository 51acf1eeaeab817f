"""Call flows without Django: the graph format and its validation, and the engine that runs them.

The Django side stores graphs (`FlowVersion.graph`), answers `TargetIndex` and builds the
`Target`s from the database; everything here is pure Python and reads no database.
"""

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
from routing.flows.fetch import HttpReply, HttpRequest
from routing.flows.schedule import Schedule, parse_schedule
from routing.flows.schema import Problem, TargetIndex, validate, validate_schedule

__all__ = [
    "CallInput",
    "CenterInfo",
    "CompiledFlow",
    "FlowCompileError",
    "HttpReply",
    "HttpRequest",
    "InvalidRunState",
    "Problem",
    "RunResult",
    "RunState",
    "Schedule",
    "Target",
    "TargetIndex",
    "compile_flow",
    "parse_schedule",
    "validate",
    "validate_schedule",
]
