"""Flow graph validation: every rule, each problem pinned to the node (and field) at fault."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from routing.flows import Problem, validate, validate_schedule
from routing.flows.schema import BRANCHES, MAX_NODES
from tests.routing.flows.graphs import (
    BOT,
    DELETE,
    GONE,
    QUEUE,
    Known,
    changed,
    every_type,
    flow,
    node,
    play,
    route_to,
)


def pins(problems: list[Problem]) -> set[tuple[str | None, str | None, str]]:
    return {(problem.node, problem.field, problem.code) for problem in problems}


def test_a_graph_using_every_node_type_is_valid() -> None:
    graph = every_type()
    index = Known()

    assert validate(graph, targets=index) == []
    assert {spec["type"] for spec in graph["nodes"].values()} == set(BRANCHES)
    # Every fixed internal target was checked against the contact center.
    assert sorted(index.asked) == [
        ("queue", QUEUE),
        ("user", "44444444-4444-4444-8444-444444444444"),
        ("virtual_agent", BOT),
    ]


# Cut the menu off and everything after it is unreachable.
BELOW_MENU = {
    (name, None, "unreachable")
    for name in ("menu", "uk", "lookup", "vip", "country", "bot", "queue", "user", "ext", "tier", "by_var")
}

# (case id, path in every_type() to change, new value, the exact problems expected)
NODE_CASES: list[tuple[str, str, Any, set[tuple[str | None, str | None, str]]]] = [
    # node shape
    ("unknown type", "nodes.queue.type", "transfer", {("queue", "type", "unknown_type")}),
    ("type not text", "nodes.queue.type", ["route"], {("queue", "type", "unknown_type")}),
    ("node not an object", "nodes.queue", "route", {("queue", None, "invalid_node")}),
    ("unknown node field", "nodes.queue.colour", "red", {("queue", "colour", "unknown_field")}),
    ("label too long", "nodes.queue.label", "x" * 101, {("queue", "label", "invalid")}),
    ("label not text", "nodes.queue.label", 7, {("queue", "label", "invalid")}),
    ("config not an object", "nodes.menu.config", [], {("menu", "config", "invalid")}),
    ("next not an object", "nodes.hangup.next", ["x"], {("hangup", "next", "invalid")}),
    # branches
    ("start not connected", "nodes.start.next.next", None, {("start", "next.next", "missing_branch")}),
    (
        "schedule open missing",
        "nodes.hours.next",
        {"closed": "closed", "holiday": "welcome"},
        {("hours", "next.open", "missing_branch")},
    ),
    (
        "schedule closed missing",
        "nodes.hours.next.closed",
        DELETE,
        {("hours", "next.closed", "missing_branch")},
    ),
    ("menu invalid missing", "nodes.menu.next.invalid", DELETE, {("menu", "next.invalid", "missing_branch")}),
    ("menu timeout missing", "nodes.menu.next.timeout", None, {("menu", "next.timeout", "missing_branch")}),
    (
        "play next missing",
        "nodes.welcome.next",
        {},
        {("welcome", "next.next", "missing_branch"), *BELOW_MENU},
    ),
    (
        "condition true missing",
        "nodes.country.next.true",
        DELETE,
        {("country", "next.true", "missing_branch")},
    ),
    ("condition false missing", "nodes.tier.next.false", DELETE, {("tier", "next.false", "missing_branch")}),
    (
        "http done missing",
        "nodes.lookup.next.done",
        DELETE,
        {
            ("lookup", "next.done", "missing_branch"),
            ("tier", None, "unreachable"),
            ("by_var", None, "unreachable"),
        },
    ),
    ("http error missing", "nodes.lookup.next.error", None, {("lookup", "next.error", "missing_branch")}),
    (
        "unknown branch on hangup",
        "nodes.hangup.next",
        {"next": "queue"},
        {("hangup", "next.next", "unknown_branch")},
    ),
    (
        "unknown branch on route",
        "nodes.queue.next",
        {"next": "hangup"},
        {("queue", "next.next", "unknown_branch")},
    ),
    ("unknown menu key", "nodes.menu.next.12", "queue", {("menu", "next.12", "unknown_branch")}),
    ("branch to no node", "nodes.uk.next.false", "robot", {("uk", "next.false", "missing_node")}),
    ("branch not text", "nodes.uk.next.false", 3, {("uk", "next.false", "missing_node")}),
    ("optional busy unset", "nodes.bot.next.busy", None, set()),
    # schedule config
    (
        "time malformed",
        "nodes.hours.config.weekly.mon",
        [["9:00", "17:30"]],
        {("hours", "config.weekly.mon[0]", "invalid_time")},
    ),
    (
        "hour 25",
        "nodes.hours.config.weekly.mon",
        [["09:00", "25:00"]],
        {("hours", "config.weekly.mon[0]", "invalid_time")},
    ),
    (
        "24:00 as a start",
        "nodes.hours.config.weekly.mon",
        [["24:00", "24:00"]],
        {("hours", "config.weekly.mon[0]", "invalid_time")},
    ),
    (
        "across midnight",
        "nodes.hours.config.weekly.mon",
        [["22:00", "06:00"]],
        {("hours", "config.weekly.mon[0]", "invalid_time")},
    ),
    (
        "empty range",
        "nodes.hours.config.weekly.mon",
        [["10:00", "10:00"]],
        {("hours", "config.weekly.mon[0]", "invalid_time")},
    ),
    (
        "range not a pair",
        "nodes.hours.config.weekly.mon",
        [["10:00"]],
        {("hours", "config.weekly.mon[0]", "invalid_time")},
    ),
    (
        "unknown day",
        "nodes.hours.config.weekly.monday",
        [],
        {("hours", "config.weekly.monday", "unknown_field")},
    ),
    (
        "day not a list",
        "nodes.hours.config.weekly.sun",
        "closed",
        {("hours", "config.weekly.sun", "invalid")},
    ),
    (
        "holiday bad date",
        "nodes.hours.config.holidays",
        [{"date": "2025-02-30", "name": "x"}],
        {("hours", "config.holidays[0].date", "invalid_date")},
    ),
    (
        "holiday no name",
        "nodes.hours.config.holidays",
        [{"date": "2025-12-25"}],
        {("hours", "config.holidays[0]", "invalid")},
    ),
    (
        "holiday empty name",
        "nodes.hours.config.holidays",
        [{"date": "2025-12-25", "name": ""}],
        {("hours", "config.holidays[0].name", "invalid")},
    ),
    (
        "unknown schedule field",
        "nodes.hours.config.timezone",
        "UTC",
        {("hours", "config.timezone", "unknown_field")},
    ),
    # menu config
    ("prompt missing", "nodes.menu.config.prompt", DELETE, {("menu", "config.prompt", "required")}),
    ("prompt empty", "nodes.menu.config.prompt", "", {("menu", "config.prompt", "invalid")}),
    ("prompt too long", "nodes.menu.config.prompt", "x" * 501, {("menu", "config.prompt", "invalid")}),
    (
        "timeout 0",
        "nodes.menu.config.timeout_seconds",
        0,
        {("menu", "config.timeout_seconds", "out_of_range")},
    ),
    (
        "timeout 31",
        "nodes.menu.config.timeout_seconds",
        31,
        {("menu", "config.timeout_seconds", "out_of_range")},
    ),
    (
        "timeout fractional",
        "nodes.menu.config.timeout_seconds",
        2.5,
        {("menu", "config.timeout_seconds", "out_of_range")},
    ),
    (
        "timeout boolean",
        "nodes.menu.config.timeout_seconds",
        True,
        {("menu", "config.timeout_seconds", "out_of_range")},
    ),
    ("max tries 6", "nodes.menu.config.max_tries", 6, {("menu", "config.max_tries", "out_of_range")}),
    ("menu defaults", "nodes.menu.config", {"prompt": "Press 1"}, set()),
    (
        "no digit connected",
        "nodes.menu.next",
        {"invalid": "hangup", "timeout": "closed"},
        {("menu", "next", "missing_branch"), *(BELOW_MENU - {("menu", None, "unreachable")})},
    ),
    # play config
    ("play text and url", "nodes.welcome.config.text", "Hi", {("welcome", "config", "required")}),
    ("play neither", "nodes.welcome.config", {}, {("welcome", "config", "required")}),
    (
        "play ftp url",
        "nodes.welcome.config.url",
        "ftp://cdn.example.com/a.wav",
        {("welcome", "config.url", "invalid_url")},
    ),
    (
        "play url with space",
        "nodes.welcome.config.url",
        "https://cdn.example.com/a b.wav",
        {("welcome", "config.url", "invalid_url")},
    ),
    (
        "play url bad port",
        "nodes.welcome.config.url",
        "https://cdn.example.com:99999/a",
        {("welcome", "config.url", "invalid_url")},
    ),
    # condition config
    ("unknown kind", "nodes.uk.config.kind", "caller_mood", {("uk", "config.kind", "invalid_choice")}),
    ("prefix without plus", "nodes.uk.config.prefixes", ["44"], {("uk", "config.prefixes[0]", "invalid")}),
    ("no prefixes", "nodes.uk.config.prefixes", [], {("uk", "config.prefixes", "invalid")}),
    (
        "unknown country",
        "nodes.country.config.countries",
        ["GB", "XX"],
        {("country", "config.countries[1]", "invalid")},
    ),
    (
        "lower-case country",
        "nodes.country.config.countries",
        ["gb"],
        {("country", "config.countries[0]", "invalid")},
    ),
    (
        "formatted list number",
        "nodes.vip.config.numbers",
        ["+44 20 7946 0018"],
        {("vip", "config.numbers[0]", "invalid_number")},
    ),
    (
        "field of another kind",
        "nodes.vip.config.prefixes",
        ["+44"],
        {("vip", "config.prefixes", "unknown_field")},
    ),
    (
        "bad operator",
        "nodes.tier.config.operator",
        "matches",
        {("tier", "config.operator", "invalid_choice")},
    ),
    (
        "gt needs a number",
        "nodes.tier.config",
        {"kind": "variable", "name": "crm.score", "operator": "gt", "value": "high"},
        {("tier", "config.value", "invalid")},
    ),
    (
        "exists needs no value",
        "nodes.tier.config",
        {"kind": "variable", "name": "crm.tier", "operator": "exists"},
        set(),
    ),
    ("bad variable name", "nodes.tier.config.name", "CRM Tier", {("tier", "config.name", "invalid")}),
    # http_request config
    ("method PUT", "nodes.lookup.config.method", "PUT", {("lookup", "config.method", "invalid_choice")}),
    ("file url", "nodes.lookup.config.url", "file:///etc/passwd", {("lookup", "config.url", "invalid_url")}),
    (
        "timeout above 2 s",
        "nodes.lookup.config.timeout_seconds",
        2.5,
        {("lookup", "config.timeout_seconds", "out_of_range")},
    ),
    (
        "timeout below 0.1 s",
        "nodes.lookup.config.timeout_seconds",
        0.05,
        {("lookup", "config.timeout_seconds", "out_of_range")},
    ),
    ("save_as reserved", "nodes.lookup.config.save_as", "call", {("lookup", "config.save_as", "reserved")}),
    (
        "save_as malformed",
        "nodes.lookup.config.save_as",
        "crm.data",
        {("lookup", "config.save_as", "invalid")},
    ),
    # route config
    ("target gone", "nodes.queue.config.target.id", GONE, {("queue", "config.target.id", "unknown_target")}),
    (
        "target of another kind",
        "nodes.user.config.target.id",
        QUEUE,
        {("user", "config.target.id", "unknown_target")},
    ),
    (
        "target id not a uuid",
        "nodes.queue.config.target.id",
        "sales",
        {("queue", "config.target.id", "invalid")},
    ),
    (
        "target type unknown",
        "nodes.queue.config.target.type",
        "ivr",
        {("queue", "config.target.type", "invalid_choice")},
    ),
    ("target missing", "nodes.queue.config", {}, {("queue", "config.target", "required")}),
    ("target not an object", "nodes.queue.config.target", "queue", {("queue", "config.target", "invalid")}),
    (
        "external not E.164",
        "nodes.ext.config.target.number",
        "+1 212 555 0199",
        {("ext", "config.target.number", "invalid_number")},
    ),
    (
        "external impossible",
        "nodes.ext.config.target.number",
        "+999",
        {("ext", "config.target.number", "invalid_number")},
    ),
    (
        "caller id invalid",
        "nodes.bot.config.caller_id",
        "anonymous",
        {("bot", "config.caller_id", "invalid_number")},
    ),
    (
        "variable target bad name",
        "nodes.by_var.config.target.name",
        "1st",
        {("by_var", "config.target.name", "invalid")},
    ),
    # voicemail, hangup, start config
    (
        "greeting too long",
        "nodes.closed.config.greeting",
        "x" * 501,
        {("closed", "config.greeting", "invalid")},
    ),
    (
        "hangup with config",
        "nodes.hangup.config.reason",
        "bye",
        {("hangup", "config.reason", "unknown_field")},
    ),
]


@pytest.mark.parametrize(
    ("path", "value", "expected"), [case[1:] for case in NODE_CASES], ids=[case[0] for case in NODE_CASES]
)
def test_each_node_rule_is_pinned_to_its_node_and_field(path: str, value: Any, expected: set) -> None:
    assert pins(validate(changed(every_type(), path, value), targets=Known())) == expected


def test_a_number_in_the_wrong_form_is_shown_in_e164() -> None:
    graph = changed(every_type(), "nodes.ext.config.target.number", "+1 (212) 555-0199")

    [problem] = validate(graph, targets=Known())

    assert problem.message == "Write +1 (212) 555-0199 as +12125550199 (E.164, no spaces)."


def test_a_range_across_midnight_says_how_to_split_it() -> None:
    graph = changed(every_type(), "nodes.hours.config.weekly.fri", [["22:00", "02:00"]])

    [problem] = validate(graph, targets=Known())

    assert "22:00-24:00" in problem.message and "00:00-02:00" in problem.message


GRAPH_CASES: list[tuple[str, Any, set[tuple[str | None, str | None, str]]]] = [
    ("not an object", ["nodes"], {(None, None, "invalid_graph")}),
    ("no nodes key", {"layout": {}}, {(None, None, "invalid_graph")}),
    ("nodes not an object", {"nodes": []}, {(None, None, "invalid_graph")}),
    ("no nodes", {"nodes": {}}, {(None, "nodes", "missing_start")}),
    (
        "unknown top-level key",
        {"nodes": {"s": node("start", next="h"), "h": node("hangup")}, "x": 1},
        {(None, "x", "unknown_field")},
    ),
    ("not plain JSON", {"nodes": {"h": node("hangup", {"at": object()})}}, {(None, None, "invalid_graph")}),
    ("no start", {"nodes": {"h": node("hangup")}}, {(None, None, "missing_start")}),
    (
        "two starts",
        {"nodes": {"a": node("start", next="h"), "b": node("start", next="h"), "h": node("hangup")}},
        {("b", "type", "multiple_starts")},
    ),
    (
        "bad node id",
        {"nodes": {"s": node("start", next="h"), "h": node("hangup"), "Bad-Id": node("hangup")}},
        {(None, "nodes", "invalid_node_id")},
    ),
    ("unreachable", flow(a=node("hangup"), b=node("hangup")), {("b", None, "unreachable")}),
    ("self loop", flow(a=play("a")), {("a", None, "loop_without_input")}),
    (
        "loop through a condition",
        flow(
            a=play("b"),
            b=node("condition", {"kind": "caller_prefix", "prefixes": ["+44"]}, true="a", false="h"),
            h=node("hangup"),
        ),
        {("a", None, "loop_without_input"), ("b", None, "loop_without_input")},
    ),
    (
        "loop through an http request",
        flow(
            a=node(
                "http_request",
                {"method": "GET", "url": "https://x.example.com/", "save_as": "x"},
                done="h",
                error="a",
            ),
            h=node("hangup"),
        ),
        {("a", None, "loop_without_input")},
    ),
    (
        "loop through a menu is fine",
        flow(
            m=node("menu", {"prompt": "Again?"}, **{"1": "p", "invalid": "h", "timeout": "h"}),
            p=play("m"),
            h=node("hangup"),
        ),
        set(),
    ),
    ("layout not an object", {**flow(h=node("hangup")), "layout": []}, {(None, "layout", "invalid_layout")}),
    (
        "layout point not integers",
        {**flow(h=node("hangup")), "layout": {"h": {"x": 1.5, "y": 0}}},
        {("h", "layout", "invalid_layout")},
    ),
    ("layout may be left out", {"nodes": flow(h=node("hangup"))["nodes"]}, set()),
]


@pytest.mark.parametrize(
    ("graph", "expected"), [case[1:] for case in GRAPH_CASES], ids=[case[0] for case in GRAPH_CASES]
)
def test_each_graph_rule(graph: Any, expected: set) -> None:
    assert pins(validate(graph, targets=Known())) == expected


def test_a_loop_message_names_the_cycle() -> None:
    graph = flow(
        a=play("b"),
        b=node("condition", {"kind": "caller_prefix", "prefixes": ["+44"]}, true="a", false="h"),
        h=node("hangup"),
    )

    messages = {problem.node: problem.message for problem in validate(graph, targets=Known())}

    assert "(a → b → a)" in messages["a"]
    assert "(b → a → b)" in messages["b"]


def chain(length: int) -> dict[str, Any]:
    """start → p1 → … → hangup: `length` nodes in all."""
    nodes = {"start": node("start", next="p1")}
    nodes |= {f"p{i}": play(f"p{i + 1}") for i in range(1, length - 1)}
    nodes[f"p{length - 1}"] = node("hangup")
    return {"nodes": nodes}


def test_node_limit() -> None:
    assert validate(chain(MAX_NODES), targets=Known()) == []
    assert pins(validate(chain(MAX_NODES + 1), targets=Known())) == {(None, "nodes", "too_many_nodes")}


def test_size_limit_is_checked_before_anything_else() -> None:
    graph = flow(p=play("h", text="x" * 1000), h=node("hangup"))
    graph["layout"] = {f"n{i}": {"x": i, "y": i} for i in range(3000)}
    assert len(json.dumps(graph)) > 64 * 1024

    assert pins(validate(graph, targets=Known())) == {(None, None, "too_large")}


def test_targets_are_asked_only_about_well_formed_ids() -> None:
    index = Known()
    graph = changed(every_type(), "nodes.queue.config.target.id", "not-a-uuid")

    validate(graph, targets=index)

    assert all(len(ref) == 36 for _, ref in index.asked)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({}, set()),
        ({"weekly": {"mon": [["09:00", "17:00"]]}}, set()),
        ({"weekly": {"mon": [["09:00", "24:00"]], "sun": [["00:00", "01:00"]]}, "holidays": []}, set()),
        ({"weekly": []}, {(None, "weekly", "invalid")}),
        ({"weekly": {"mon": [["17:00", "09:00"]]}}, {(None, "weekly.mon[0]", "invalid_time")}),
        ({"holidays": {}}, {(None, "holidays", "invalid")}),
        ({"open": True}, {(None, "open", "unknown_field")}),
        ("9-5", {(None, None, "invalid")}),
    ],
)
def test_validate_schedule_for_business_hours(config: Any, expected: set) -> None:
    assert pins(validate_schedule(config)) == expected


# --- never raises -----------------------------------------------------------------------

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


# Plausible-looking graphs reach the per-field checks that uniform noise never gets to: each
# field is mostly a near-miss of a real value, sometimes any JSON at all.
def near(*values: Any) -> st.SearchStrategy[Any]:
    return st.one_of(st.sampled_from(values), st.sampled_from(values), json_values)


times = st.sampled_from(["09:00", "17:30", "24:00", "00:00", "25:00", "9:00", "12:60", ""])
node_ids = st.sampled_from(["start", "a", "b", "menu", "h", "Bad", ""])
branch_names = st.sampled_from(
    [
        "next",
        "open",
        "closed",
        "holiday",
        "1",
        "*",
        "invalid",
        "timeout",
        "true",
        "false",
        "done",
        "error",
        "busy",
        "x",
    ]
)
configs = st.fixed_dictionaries(
    {},
    optional={
        "prompt": near("Press 1", "", "x" * 600),
        "text": near("Hello", ""),
        "url": near("https://x.example.com/a", "ftp://x", "http://[::1", "http://a:99999", "https://a b"),
        "kind": near("caller_prefix", "caller_country", "caller_in_list", "variable", "other"),
        "prefixes": st.lists(near("+44", "44", "+"), max_size=3),
        "countries": st.lists(near("GB", "gb", "XX"), max_size=3),
        "numbers": st.lists(near("+442079460018", "+1", "+44 20 7946 0018"), max_size=3),
        "operator": near("eq", "gt", "lt", "exists", "contains", "like"),
        "name": near("crm.tier", "call.caller", "Bad Name", "x."),
        "value": near("gold", "10", "1e999", ""),
        "target": st.fixed_dictionaries(
            {"type": near("queue", "external", "variable", "user", "virtual_agent", "ivr")},
            optional={
                "id": near("33333333-3333-4333-8333-333333333333", "not-a-uuid"),
                "number": near("+12125550199", "+999", "12125550199"),
                "name": near("crm.agent", "1x"),
            },
        ),
        "caller_id": near("+442079460000", "anonymous"),
        "weekly": st.dictionaries(
            st.sampled_from(["mon", "sun", "xyz"]),
            st.lists(st.lists(times, max_size=3), max_size=3),
            max_size=3,
        ),
        "holidays": st.lists(
            st.fixed_dictionaries(
                {"date": near("2025-12-25", "2025-02-30", "25/12"), "name": near("Xmas", "")}
            ),
            max_size=2,
        ),
        "timeout_seconds": near(1, 0.5, 30, 31, True, float("nan"), float("inf")),
        "max_tries": near(1, 5, 6, 2.0),
        "method": near("GET", "POST", "PUT"),
        "save_as": near("crm", "call", "Bad"),
        "greeting": near("Hi", ""),
    },
)
plausible_nodes = st.fixed_dictionaries(
    {"type": near(*sorted(BRANCHES))},
    optional={
        "config": configs,
        "next": st.dictionaries(branch_names, st.one_of(node_ids, st.none(), json_values), max_size=4),
        "label": near("Main menu", "x" * 200),
    },
)
plausible_graphs = st.fixed_dictionaries(
    {"nodes": st.dictionaries(node_ids, plausible_nodes, min_size=1, max_size=8)},
    optional={"layout": json_values},
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(graph=st.one_of(json_values, plausible_graphs, plausible_graphs))
def test_validate_never_raises(graph: Any) -> None:
    problems = validate(graph, targets=Known())

    assert all(isinstance(problem, Problem) for problem in problems)
    assert all(problem.node is None or isinstance(problem.node, str) for problem in problems)


@settings(max_examples=200, deadline=None)
@given(config=json_values | configs)
def test_validate_schedule_never_raises(config: Any) -> None:
    assert isinstance(validate_schedule(config), list)


def test_unhashable_garbage_where_names_are_expected() -> None:
    # Lists and objects where strings belong: a dict or set lookup on them would raise TypeError.
    graph = {"nodes": {"s": {"type": ["start"], "next": {"next": ["h"]}}, "h": {"type": {"a": 1}}}}

    assert pins(validate(graph, targets=Known())) == {
        ("s", "type", "unknown_type"),
        ("h", "type", "unknown_type"),
        (None, None, "missing_start"),
    }


def test_an_empty_contact_center_has_no_targets() -> None:
    index = Known(pairs={})
    graph = flow(r=route_to("virtual_agent", BOT))

    assert pins(validate(graph, targets=index)) == {("r", "config.target.id", "unknown_target")}
    assert index.asked == [("virtual_agent", BOT)]
