"""The flow engine: every node type and branch, schedules across DST, menus, routes and fallbacks."""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.flows import (
    CallInput,
    CenterInfo,
    CompiledFlow,
    FlowCompileError,
    InvalidRunState,
    RunResult,
    RunState,
    Target,
)
from routing.flows import engine as engine_module
from tests.routing.flows.graphs import (
    BOT,
    BUSY_BOT,
    GONE,
    LONDON,
    MONDAY_NOON,
    QUEUE,
    USER,
    bot_target,
    build,
    every_type,
    flow,
    node,
    play,
    queue_target,
    route_to,
    targets,
)


def call(
    *, digits: str | None = None, caller: str = "+442079460018", at: datetime = MONDAY_NOON, **kwargs: Any
) -> CallInput:
    return CallInput(call_id="call-1", caller=caller, called="+442079460000", at=at, digits=digits, **kwargs)


def verbs(result: RunResult) -> list[str]:
    return [instruction["verb"] for instruction in result.instructions]


# --- start, play, voicemail, hangup -------------------------------------------------------


def test_plays_come_in_order_and_the_run_stops_at_hangup() -> None:
    graph = flow(
        one=play("two", text="One"),
        two=node("play", {"url": "https://cdn.example.com/two.wav"}, next="bye"),
        bye=node("hangup"),
    )

    result = build(graph).run(call())

    assert result.instructions == [
        {"verb": "play", "text": "One"},
        {"verb": "play", "url": "https://cdn.example.com/two.wav"},
        {"verb": "hangup"},
    ]
    assert result.path == ["start", "one", "two", "bye"]
    assert result.destination is None and result.state is None


def test_voicemail_with_and_without_greeting() -> None:
    with_greeting = build(flow(vm=node("voicemail", {"greeting": "Leave a message"}))).run(call())
    without = build(flow(vm=node("voicemail"))).run(call())

    assert with_greeting.instructions == [{"verb": "voicemail", "greeting": "Leave a message"}]
    assert without.instructions == [{"verb": "voicemail"}]
    assert with_greeting.state is None and with_greeting.destination is None


def test_a_run_does_not_change_the_compiled_flow() -> None:
    compiled = build(flow(p=play("vm", text="Hi"), vm=node("voicemail", {"greeting": "G"})))

    first = compiled.run(call())
    for instruction in first.instructions:
        instruction["text"] = "tampered"

    assert compiled.run(call()).instructions == [
        {"verb": "play", "text": "Hi"},
        {"verb": "voicemail", "greeting": "G"},
    ]


# --- schedule -----------------------------------------------------------------------------


def schedule_flow(
    weekly: dict[str, Any], holidays: list[dict[str, str]] | None = None, *, has_holiday_branch: bool = False
) -> dict[str, Any]:
    config = {"weekly": weekly, "holidays": holidays or []}
    branches = {"open": "is_open", "closed": "is_closed"}
    nodes = {"is_open": play("bye", text="open"), "is_closed": play("bye", text="closed")}
    if has_holiday_branch:
        branches["holiday"] = "is_holiday"
        nodes["is_holiday"] = play("bye", text="holiday")
    return flow(hours=node("schedule", config, **branches), **nodes, bye=node("hangup"))


def state_at(graph: dict[str, Any], at: datetime, timezone: str = "Europe/London") -> str:
    center = CenterInfo(slug="acme", timezone=timezone, allows_external=False)
    result = build(graph, center=center).run(call(at=at))
    return result.instructions[0]["text"]


OFFICE = {day: [["09:00", "17:30"]] for day in ("mon", "tue", "wed", "thu", "fri")}


@pytest.mark.parametrize(
    ("at", "expected"),
    [
        (datetime(2025, 6, 2, 7, 59, tzinfo=UTC), "closed"),  # Mon 08:59 BST
        (datetime(2025, 6, 2, 8, 0, tzinfo=UTC), "open"),  # Mon 09:00 BST: start is inclusive
        (datetime(2025, 6, 2, 16, 29, 59, tzinfo=UTC), "open"),  # Mon 17:29:59 BST
        (datetime(2025, 6, 2, 16, 30, tzinfo=UTC), "closed"),  # Mon 17:30 BST: end is exclusive
        (datetime(2025, 1, 6, 8, 30, tzinfo=UTC), "closed"),  # Mon 08:30 GMT in winter
        (datetime(2025, 1, 6, 9, 0, tzinfo=UTC), "open"),  # Mon 09:00 GMT
        (datetime(2025, 6, 7, 11, 0, tzinfo=UTC), "closed"),  # Saturday: no ranges
        (datetime(2025, 6, 1, 23, 30, tzinfo=UTC), "closed"),  # Sun 23:30 UTC is Mon 00:30 BST
    ],
)
def test_schedule_reads_wall_time_in_the_center_timezone(at: datetime, expected: str) -> None:
    assert state_at(schedule_flow(OFFICE), at) == expected


def test_the_local_weekday_decides_not_the_utc_one() -> None:
    graph = schedule_flow({"mon": [["00:00", "01:00"]]})

    assert state_at(graph, datetime(2025, 6, 1, 23, 30, tzinfo=UTC)) == "open"  # Mon 00:30 BST
    assert state_at(graph, datetime(2025, 6, 2, 0, 30, tzinfo=UTC)) == "closed"  # Mon 01:30 BST


def test_24_00_ends_a_range_at_midnight() -> None:
    graph = schedule_flow({"fri": [["20:00", "24:00"]], "sat": [["00:00", "02:00"]]})

    assert state_at(graph, datetime(2025, 6, 6, 22, 59, tzinfo=UTC)) == "open"  # Fri 23:59 BST
    assert state_at(graph, datetime(2025, 6, 6, 23, 0, tzinfo=UTC)) == "open"  # Sat 00:00 BST
    assert state_at(graph, datetime(2025, 6, 7, 1, 0, tzinfo=UTC)) == "closed"  # Sat 02:00 BST


# London springs forward on 2025-03-30: 01:00 GMT becomes 02:00 BST; 01:xx never happens.
@pytest.mark.parametrize(
    ("utc", "expected"),
    [
        ("00:29", "closed"),  # 00:29 GMT
        ("00:59", "closed"),  # 00:59 GMT, just before the jump
        ("01:00", "open"),  # 02:00 BST: the first existing wall time inside 01:30-03:00
        ("01:59", "open"),  # 02:59 BST
        ("02:00", "closed"),  # 03:00 BST
    ],
)
def test_london_spring_forward(utc: str, expected: str) -> None:
    graph = schedule_flow({"sun": [["01:30", "03:00"]]})
    hour, minute = map(int, utc.split(":"))

    assert state_at(graph, datetime(2025, 3, 30, hour, minute, tzinfo=UTC)) == expected


def test_london_fall_back_opens_the_repeated_hour_twice() -> None:
    # 2025-10-26: 02:00 BST becomes 01:00 GMT, so 01:00-02:00 happens twice.
    graph = schedule_flow({"sun": [["01:00", "02:00"]]})

    assert state_at(graph, datetime(2025, 10, 25, 23, 59, tzinfo=UTC)) == "closed"  # 00:59 BST
    assert state_at(graph, datetime(2025, 10, 26, 0, 30, tzinfo=UTC)) == "open"  # 01:30 BST
    assert state_at(graph, datetime(2025, 10, 26, 1, 30, tzinfo=UTC)) == "open"  # 01:30 GMT
    assert state_at(graph, datetime(2025, 10, 26, 2, 0, tzinfo=UTC)) == "closed"  # 02:00 GMT


def test_new_york_spring_forward_and_fall_back() -> None:
    spring = schedule_flow({"sun": [["01:30", "03:00"]]})
    gap_only = schedule_flow({"sun": [["02:15", "02:45"]]})
    ny = "America/New_York"

    # 2025-03-09: 02:00 EST becomes 03:00 EDT.
    assert state_at(spring, datetime(2025, 3, 9, 6, 29, tzinfo=UTC), ny) == "closed"  # 01:29 EST
    assert state_at(spring, datetime(2025, 3, 9, 6, 30, tzinfo=UTC), ny) == "open"  # 01:30 EST
    assert state_at(spring, datetime(2025, 3, 9, 6, 59, tzinfo=UTC), ny) == "open"  # 01:59 EST
    assert state_at(spring, datetime(2025, 3, 9, 7, 0, tzinfo=UTC), ny) == "closed"  # 03:00 EDT
    # Wall times inside the gap never occur, so a range wholly inside it is closed all day.
    instants = [datetime(2025, 3, 9, 0, 0, tzinfo=UTC) + timedelta(minutes=5 * i) for i in range(12 * 24)]
    assert {state_at(gap_only, at, ny) for at in instants[::6]} == {"closed"}

    fall = schedule_flow({"sun": [["01:00", "02:00"]]})
    # 2025-11-02: 02:00 EDT becomes 01:00 EST.
    assert state_at(fall, datetime(2025, 11, 2, 5, 30, tzinfo=UTC), ny) == "open"  # 01:30 EDT
    assert state_at(fall, datetime(2025, 11, 2, 6, 30, tzinfo=UTC), ny) == "open"  # 01:30 EST
    assert state_at(fall, datetime(2025, 11, 2, 7, 0, tzinfo=UTC), ny) == "closed"  # 02:00 EST


def test_a_holiday_wins_over_opening_hours_on_the_local_date() -> None:
    holidays = [{"date": "2025-12-25", "name": "Christmas"}]
    graph = schedule_flow(
        {"thu": [["00:00", "24:00"]], "wed": [["00:00", "24:00"]]}, holidays, has_holiday_branch=True
    )
    ny = "America/New_York"

    assert state_at(graph, datetime(2025, 12, 25, 12, 0, tzinfo=UTC)) == "holiday"
    # 04:30 UTC on the 25th is still the 24th in New York; 05:30 UTC is the 25th there.
    assert state_at(graph, datetime(2025, 12, 25, 4, 30, tzinfo=UTC), ny) == "open"
    assert state_at(graph, datetime(2025, 12, 25, 5, 30, tzinfo=UTC), ny) == "holiday"


def test_an_unconnected_holiday_branch_means_closed() -> None:
    graph = schedule_flow({"thu": [["00:00", "24:00"]]}, [{"date": "2025-12-25", "name": "Christmas"}])

    assert state_at(graph, datetime(2025, 12, 25, 12, 0, tzinfo=UTC)) == "closed"
    assert state_at(graph, datetime(2025, 12, 18, 12, 0, tzinfo=UTC)) == "open"


# --- menu ---------------------------------------------------------------------------------


def menu_flow(**config: Any) -> CompiledFlow:
    return build(
        flow(
            hello=play("menu", text="Welcome"),
            menu=node(
                "menu",
                {"prompt": "Press 1 for sales", **config},
                **{"1": "sales", "#": "hash", "invalid": "bad", "timeout": "slow"},
            ),
            sales=route_to("queue", QUEUE),
            hash=node("hangup"),
            bad=play("bye", text="invalid"),
            slow=play("bye", text="timeout"),
            bye=node("hangup"),
        )
    )


def answer(compiled: CompiledFlow, state: RunState | None, digits: str | None) -> RunResult:
    # Through JSON, as the state travels between requests.
    assert state is not None
    stored = RunState.from_dict(json.loads(json.dumps(state.as_dict())))
    return compiled.run(call(digits=digits), stored)


def test_a_menu_stops_the_run_with_a_gather_and_a_state() -> None:
    result = menu_flow(timeout_seconds=7).run(call())

    assert result.instructions == [
        {"verb": "play", "text": "Welcome"},
        {"verb": "gather", "prompt": "Press 1 for sales", "num_digits": 1, "timeout_seconds": 7},
    ]
    assert result.path == ["start", "hello", "menu"]
    assert result.state == RunState(node="menu", tries=1, variables={})


def test_digits_continue_at_the_menu() -> None:
    compiled = menu_flow()
    first = compiled.run(call())

    sales = answer(compiled, first.state, "1")
    hashed = answer(compiled, first.state, "#")

    assert sales.path == ["menu", "sales"]
    assert verbs(sales) == ["dial"] and sales.destination["type"] == "queue"
    assert sales.state is None
    assert hashed.path == ["menu", "hash"] and verbs(hashed) == ["hangup"]


@pytest.mark.parametrize(("digits", "branch"), [("7", "bad"), ("12", "bad"), ("", "slow"), (None, "slow")])
def test_menu_replays_until_max_tries_then_takes_the_branch(digits: str | None, branch: str) -> None:
    compiled = menu_flow(max_tries=3)
    state = compiled.run(call()).state

    second = answer(compiled, state, digits)
    third = answer(compiled, second.state, digits)
    last = answer(compiled, third.state, digits)

    assert second.instructions == [
        {"verb": "gather", "prompt": "Press 1 for sales", "num_digits": 1, "timeout_seconds": 5}
    ]
    assert (second.state.tries, third.state.tries) == (2, 3)
    assert last.path == ["menu", branch, "bye"]
    assert last.state is None and verbs(last) == ["play", "hangup"]


def test_the_last_failure_picks_the_branch() -> None:
    compiled = menu_flow(max_tries=2)
    state = compiled.run(call()).state

    after_invalid = answer(compiled, state, "9")
    timed_out = answer(compiled, after_invalid.state, "")

    assert timed_out.path == ["menu", "slow", "bye"]


def test_one_try_takes_the_branch_at_once_and_a_good_answer_still_works_late() -> None:
    single = menu_flow(max_tries=1)
    assert answer(single, single.run(call()).state, "5").path == ["menu", "bad", "bye"]

    compiled = menu_flow(max_tries=3)
    second = answer(compiled, compiled.run(call()).state, "")
    assert answer(compiled, second.state, "1").path == ["menu", "sales"]


def test_a_state_for_a_menu_the_flow_no_longer_has_is_refused() -> None:
    compiled = menu_flow()

    with pytest.raises(InvalidRunState):
        compiled.run(call(digits="1"), RunState(node="old_menu"))
    with pytest.raises(InvalidRunState):
        compiled.run(call(digits="1"), RunState(node="hello"))  # a play, not a menu


@pytest.mark.parametrize(
    "data",
    [
        None,
        [],
        {"node": "menu"},
        {"node": "menu", "tries": 0, "variables": {}},
        {"node": "menu", "tries": True, "variables": {}},
        {"node": "Menu!", "tries": 1, "variables": {}},
        {"node": "menu", "tries": 1, "variables": {"a": 1}},
        {"node": "menu", "tries": 1, "variables": {}, "extra": 1},
    ],
)
def test_a_malformed_stored_state_is_refused(data: Any) -> None:
    with pytest.raises(InvalidRunState):
        RunState.from_dict(data)


# --- conditions ---------------------------------------------------------------------------


def condition_flow(config: dict[str, Any]) -> CompiledFlow:
    return build(
        flow(
            test=node("condition", config, true="yes", false="no"),
            yes=play("bye", text="true"),
            no=play("bye", text="false"),
            bye=node("hangup"),
        )
    )


def outcome(config: dict[str, Any], **call_kwargs: Any) -> str:
    return condition_flow(config).run(call(**call_kwargs)).instructions[0]["text"]


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("+442079460018", "true"),
        ("+44 20 7946 0018", "true"),  # the switch's formatting is normalised first
        ("+353 1 234 5678", "true"),
        ("+12125550199", "false"),
        ("anonymous", "false"),
        ("", "false"),
    ],
)
def test_caller_prefix(caller: str, expected: str) -> None:
    assert outcome({"kind": "caller_prefix", "prefixes": ["+44", "+353"]}, caller=caller) == expected


@pytest.mark.parametrize(
    ("caller", "expected"),
    [
        ("+442079460018", "true"),
        ("+12125550199", "true"),  # US shares +1 with Canada: a full parse tells them apart
        ("+14165550123", "false"),  # Toronto
        ("+33142685300", "false"),
        ("anonymous", "false"),
    ],
)
def test_caller_country(caller: str, expected: str) -> None:
    assert outcome({"kind": "caller_country", "countries": ["GB", "US"]}, caller=caller) == expected


@pytest.mark.parametrize(
    ("caller", "expected"),
    [("+442079460018", "true"), ("+44 20 7946 0018", "true"), ("+442079460019", "false")],
)
def test_caller_in_list(caller: str, expected: str) -> None:
    assert outcome({"kind": "caller_in_list", "numbers": ["+442079460018"]}, caller=caller) == expected


@pytest.mark.parametrize(
    ("operator", "value", "variables", "expected"),
    [
        ("eq", "gold", {"crm.tier": "gold"}, "true"),
        ("eq", "gold", {"crm.tier": "Gold"}, "false"),
        ("eq", "gold", {}, "false"),
        ("ne", "gold", {"crm.tier": "silver"}, "true"),
        ("ne", "gold", {"crm.tier": "gold"}, "false"),
        ("ne", "gold", {}, "true"),  # unset is not equal to anything
        ("contains", "ol", {"crm.tier": "gold"}, "true"),
        ("contains", "x", {"crm.tier": "gold"}, "false"),
        ("contains", "x", {}, "false"),
        ("gt", "9", {"crm.tier": "10"}, "true"),  # numbers, not text ("10" < "9" as text)
        ("gt", "10", {"crm.tier": "10"}, "false"),
        ("lt", "10", {"crm.tier": "9.5"}, "true"),
        ("lt", "-1", {"crm.tier": "-2e0"}, "true"),
        ("gt", "1", {"crm.tier": "gold"}, "false"),  # text is neither greater nor less
        ("lt", "1", {}, "false"),
        ("exists", "", {"crm.tier": ""}, "true"),
        ("exists", "", {}, "false"),
    ],
)
def test_variable_comparisons(operator: str, value: str, variables: dict[str, str], expected: str) -> None:
    compiled = build(
        flow(
            menu=node("menu", {"prompt": "p"}, **{"1": "test", "invalid": "bye", "timeout": "bye"}),
            test=node(
                "condition",
                {"kind": "variable", "name": "crm.tier", "operator": operator, "value": value},
                true="yes",
                false="no",
            ),
            yes=play("bye", text="true"),
            no=play("bye", text="false"),
            bye=node("hangup"),
        )
    )

    result = compiled.run(call(digits="1"), RunState(node="menu", variables=variables))

    assert result.instructions[0]["text"] == expected


def test_built_in_call_variables() -> None:
    config = {"kind": "variable", "name": "call.called", "operator": "eq", "value": "+442079460000"}
    assert outcome(config) == "true"
    config = {"kind": "variable", "name": "call.caller", "operator": "contains", "value": "7946"}
    assert outcome(config) == "true"


# --- routes -------------------------------------------------------------------------------


def route_result(spec: dict[str, Any], *, center: CenterInfo = LONDON, **call_kwargs: Any) -> RunResult:
    graph = flow(go=spec, busy_msg=play("bye", text="busy"), bye=node("hangup"))
    if "busy" not in spec["next"]:
        graph = flow(go=spec)
    return build(graph, center=center).run(call(**call_kwargs))


def test_route_to_a_queue() -> None:
    result = route_result(route_to("queue", QUEUE))

    assert result.instructions == [
        {
            "verb": "dial",
            "sip_uri": "sip:4323@acme.voiso.com",
            "headers": {"X-Voiso-Call-Id": "call-1", "X-Voiso-Target": "queue", "X-Voiso-Target-Id": QUEUE},
        }
    ]
    assert result.destination == {
        "type": "queue",
        "extension": "4323",
        "name": "Sales",
        "sip_uri": "sip:4323@acme.voiso.com",
    }
    assert result.path == ["start", "go"] and result.state is None


def test_route_to_a_user_with_a_caller_id_override() -> None:
    result = route_result(route_to("user", USER, caller_id="+442079460000"))

    [dial] = result.instructions
    assert dial["sip_uri"] == "sip:1001@acme.voiso.com" and dial["caller_id"] == "+442079460000"
    assert result.destination == {
        "type": "user",
        "extension": "1001",
        "name": "Ann Agent",
        "sip_uri": "sip:1001@acme.voiso.com",
    }


def test_route_to_an_available_virtual_agent_dials_the_bot() -> None:
    asked: list[str] = []

    def is_available(virtual_agent_id: str) -> bool:
        asked.append(virtual_agent_id)
        return True

    result = route_result(route_to("virtual_agent", BOT), is_available=is_available)

    assert asked == [BOT]
    assert result.instructions[0]["sip_uri"] == "sip:sales@bots.example.com"
    assert result.instructions[0]["headers"]["X-Voiso-Target"] == "virtual_agent"
    assert result.destination["type"] == "virtual_agent" and result.destination["name"] == "Sales bot"


def test_route_to_an_external_number() -> None:
    result = route_result(route_to("external", "+12125550199"))

    assert result.instructions == [
        {
            "verb": "dial",
            "sip_uri": "sip:+12125550199@acme.voiso.com;user=phone",
            "headers": {"X-Voiso-Call-Id": "call-1", "X-Voiso-Target": "external"},
        }
    ]
    assert result.destination == {
        "type": "external",
        "number": "+12125550199",
        "sip_uri": "sip:+12125550199@acme.voiso.com;user=phone",
    }


def test_an_external_route_where_the_center_forbids_it_hangs_up() -> None:
    closed = CenterInfo(slug="acme", timezone="Europe/London", allows_external=False)

    result = route_result(route_to("external", "+12125550199"), center=closed)

    assert result.instructions == [{"verb": "hangup", "reason": "external_not_allowed"}]
    assert result.destination is None


@pytest.mark.parametrize(
    ("bot", "is_available"),
    [
        (bot_target(handoff=queue_target()), False),
        (bot_target(handoff=queue_target(), is_enabled=False), True),
    ],
    ids=["at capacity", "disabled"],
)
def test_a_busy_or_disabled_bot_takes_the_busy_branch(bot: Target, is_available: bool) -> None:
    graph = flow(
        go=route_to("virtual_agent", BOT, busy="busy_msg"),
        busy_msg=play("bye", text="busy"),
        bye=node("hangup"),
    )
    compiled = build(graph, targets=targets(bot, queue_target()))

    result = compiled.run(call(is_available=lambda ref: is_available))

    assert result.path == ["start", "go", "busy_msg", "bye"]
    assert result.destination is None
    assert verbs(result) == ["play", "hangup"]


def test_without_a_busy_branch_the_bots_default_handoff_is_dialled() -> None:
    compiled = build(
        flow(go=route_to("virtual_agent", BOT)), targets=targets(bot_target(handoff=queue_target()))
    )

    result = compiled.run(call(is_available=lambda ref: False))

    assert result.instructions[0]["sip_uri"] == "sip:4323@acme.voiso.com"
    assert result.destination["type"] == "queue"
    assert any("default handoff" in note for note in result.notes)


def test_without_busy_branch_or_handoff_the_call_is_hung_up() -> None:
    compiled = build(flow(go=route_to("virtual_agent", BOT)), targets=targets(bot_target()))

    result = compiled.run(call(is_available=lambda ref: False))

    assert result.instructions == [{"verb": "hangup", "reason": "target_unavailable"}]


def test_a_busy_default_handoff_bot_is_not_dialled() -> None:
    other = bot_target(ref=BUSY_BOT)
    bot = bot_target(handoff=other)
    compiled = build(flow(go=route_to("virtual_agent", BOT)), targets=targets(bot, other))

    result = compiled.run(call(is_available=lambda ref: False))

    assert result.instructions == [{"verb": "hangup", "reason": "target_unavailable"}]


def test_an_external_default_handoff_obeys_the_center_policy() -> None:
    external = Target(
        "external",
        "+12125550199",
        number="+12125550199",
        sip_uri="sip:+12125550199@acme.voiso.com;user=phone",
    )
    bot = bot_target(handoff=external)
    closed = CenterInfo(slug="acme", timezone="Europe/London", allows_external=False)

    allowed = build(flow(go=route_to("virtual_agent", BOT)), targets=targets(bot)).run(
        call(is_available=lambda r: False)
    )
    refused = build(flow(go=route_to("virtual_agent", BOT)), targets=targets(bot), center=closed).run(
        call(is_available=lambda r: False)
    )

    assert allowed.destination["number"] == "+12125550199"
    assert refused.instructions == [{"verb": "hangup", "reason": "target_unavailable"}]


def test_a_target_deleted_since_publishing_hangs_up_instead_of_failing() -> None:
    result = build(flow(go=route_to("queue", GONE))).run(call())

    assert result.instructions == [{"verb": "hangup", "reason": "target_missing"}]


def test_uuid_spelling_does_not_matter() -> None:
    result = build(flow(go=route_to("queue", QUEUE.upper()))).run(call())

    assert result.destination["type"] == "queue"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1001", {"type": "user", "extension": "1001"}),
        ("4323", {"type": "queue", "extension": "4323"}),
        ("+12125550199", {"type": "external", "number": "+12125550199"}),
        ("+1 212 555 0199", {"type": "external", "number": "+12125550199"}),
        ("9999", None),
        ("+999", None),
        ("sip:evil@example.com", None),
        ("", None),
    ],
)
def test_route_to_a_variable(value: str, expected: dict[str, str] | None) -> None:
    compiled = build(
        flow(
            menu=node("menu", {"prompt": "p"}, **{"1": "go", "invalid": "bye", "timeout": "bye"}),
            go=route_to("variable", "crm.agent"),
            bye=node("hangup"),
        )
    )

    result = compiled.run(call(digits="1"), RunState(node="menu", variables={"crm.agent": value}))

    if expected is None:
        assert result.instructions == [{"verb": "hangup", "reason": "unknown_target"}]
    else:
        assert {key: result.destination[key] for key in expected} == expected
        assert verbs(result) == ["dial"]


def test_an_unset_route_variable_hangs_up() -> None:
    result = build(flow(go=route_to("variable", "crm.agent"))).run(call())

    assert result.instructions == [{"verb": "hangup", "reason": "unknown_target"}]


# --- compile and guards -------------------------------------------------------------------


def test_compiling_an_invalid_graph_raises_with_its_problems() -> None:
    with pytest.raises(FlowCompileError) as raised:
        build(flow(p=play("nowhere")))

    assert [(problem.node, problem.code) for problem in raised.value.problems] == [("p", "missing_node")]


def test_compiling_for_an_unknown_timezone_raises() -> None:
    with pytest.raises(FlowCompileError):
        build(
            flow(h=node("hangup")),
            center=CenterInfo(slug="acme", timezone="Mars/Olympus", allows_external=False),
        )


def test_the_step_limit_stops_a_loop_validation_would_have_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_module, "validate", lambda graph, targets: [])

    result = build(flow(a=play("a", text="again"))).run(call())

    assert len(result.path) == engine_module.MAX_STEPS
    assert result.instructions[-1] == {"verb": "hangup", "reason": "step_limit"}


def test_a_naive_call_time_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        call(at=datetime(2025, 6, 2, 12, 0))


def test_the_engine_imports_no_django() -> None:
    root = Path(__file__).resolve().parents[3]
    code = "import sys, routing.flows; sys.exit(any(m.split('.')[0] == 'django' for m in sys.modules))"

    completed = subprocess.run([sys.executable, "-c", code], cwd=root, check=False)

    assert completed.returncode == 0


@settings(max_examples=300, deadline=None)
@given(
    caller=st.text(max_size=30)
    | st.sampled_from(["+442079460018", "+12125550199", "+1", "+", "00442079460018"]),
    digits=st.none() | st.text(max_size=3),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 366 * 3),
    tries=st.integers(min_value=1, max_value=3),
)
def test_any_call_to_a_valid_flow_ends_in_an_instruction(
    caller: str, digits: str | None, minutes: int, tries: int
) -> None:
    compiled = _every_type_flow()
    at = datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=minutes)
    network = {"http": _offline, "resolver": lambda host, port, timeout: ["93.184.216.34"]}

    first = compiled.run(call(caller=caller, at=at, **network))
    results = [first]
    if first.state is not None:
        results.append(
            compiled.run(call(caller=caller, at=at, digits=digits, **network), RunState("menu", tries))
        )

    for result in results:
        assert result.instructions and result.instructions[-1]["verb"] in {
            "gather",
            "dial",
            "voicemail",
            "hangup",
        }
        assert (result.state is not None) == (result.instructions[-1]["verb"] == "gather")
        json.dumps(result.instructions)


def _offline(request: Any) -> Any:
    raise OSError("offline")


@functools.cache
def _every_type_flow() -> CompiledFlow:
    return build(every_type())
