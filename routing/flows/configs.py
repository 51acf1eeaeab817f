"""Per-type config checks for the flow validator; see the format in ``schema.py``.

Each checker takes (node id, config, target index) and returns the problems of that config.
"""

from __future__ import annotations

from typing import Any

from routing.flows.checks import (
    ConfigCheck,
    Problem,
    TargetIndex,
    number_fault,
    prefix_fault,
    region_fault,
    show,
)
from routing.flows.schedule import DAYS, parse_date, parse_time

MAX_DAY_RANGES = 48
MAX_HOLIDAYS = 400
TARGET_KINDS = ("virtual_agent", "queue", "user")


def validate_schedule(config: Any, *, node: str | None = None, prefix: str = "") -> list[Problem]:
    """Problems with a schedule config (a schedule node's, or a flow's business hours)."""
    check = ConfigCheck(node, config, prefix=prefix)
    if not check.is_object():
        return check.problems
    check.no_unknown({"weekly", "holidays"})
    weekly = config.get("weekly", {})
    if not isinstance(weekly, dict):
        check.fail("weekly", "invalid", "Opening hours are an object of days (mon … sun).")
    else:
        for day, ranges in weekly.items():
            _check_day(check, day, ranges)
    _check_holidays(check, config.get("holidays", []))
    return check.problems


# --- per-type config ---------------------------------------------------------------------


def _check_day(check: ConfigCheck, day: Any, ranges: Any) -> None:
    field = f"weekly.{day}"
    if day not in DAYS:
        check.fail(field, "unknown_field", f"Unknown day {show(day)}; use {', '.join(DAYS)}.")
        return
    if not isinstance(ranges, list) or len(ranges) > MAX_DAY_RANGES:
        check.fail(
            field, "invalid", f'A day is a list of at most {MAX_DAY_RANGES} ["HH:MM", "HH:MM"] ranges.'
        )
        return
    for index, pair in enumerate(ranges):
        _check_range(check, f"{field}[{index}]", pair)


def _check_range(check: ConfigCheck, field: str, pair: Any) -> None:
    if not (isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair)):
        check.fail(field, "invalid_time", 'A range is ["HH:MM", "HH:MM"], e.g. ["09:00", "17:30"].')
        return
    start, end = parse_time(pair[0]), parse_time(pair[1], is_end=True)
    if start is None or end is None:
        bad = pair[0] if start is None else pair[1]
        check.fail(field, "invalid_time", f"{show(bad)} is not a time (HH:MM, 00:00 to 24:00).")
    elif start == end:
        check.fail(field, "invalid_time", f"{pair[0]}-{pair[1]} is an empty range.")
    elif start > end:
        check.fail(
            field,
            "invalid_time",
            f"{pair[0]}-{pair[1]} does not move forward; a range across midnight is two ranges "
            f"({pair[0]}-24:00 today, 00:00-{pair[1]} the next day).",
        )


def _check_holidays(check: ConfigCheck, holidays: Any) -> None:
    if not isinstance(holidays, list) or len(holidays) > MAX_HOLIDAYS:
        check.fail(
            "holidays", "invalid", f'Holidays are a list of at most {MAX_HOLIDAYS} {{"date", "name"}}.'
        )
        return
    for index, holiday in enumerate(holidays):
        field = f"holidays[{index}]"
        if not isinstance(holiday, dict) or set(holiday) != {"date", "name"}:
            check.fail(field, "invalid", 'A holiday is {"date": "YYYY-MM-DD", "name": "..."}.')
            continue
        date_text, name = holiday["date"], holiday["name"]
        if not isinstance(date_text, str) or parse_date(date_text) is None:
            check.fail(f"{field}.date", "invalid_date", f"{show(date_text)} is not a date (YYYY-MM-DD).")
        if not isinstance(name, str) or not 1 <= len(name) <= 100:
            check.fail(f"{field}.name", "invalid", "A holiday's name is 1 to 100 characters.")


def _empty(node: str, config: Any, targets: TargetIndex) -> list[Problem]:
    check = ConfigCheck(node, config, prefix="config.")
    if check.is_object():
        check.no_unknown(set())
    return check.problems


def _schedule(node: str, config: Any, targets: TargetIndex) -> list[Problem]:
    return validate_schedule(config, node=node, prefix="config.")


def _menu(node: str, config: Any, targets: TargetIndex) -> list[Problem]:
    check = ConfigCheck(node, config, prefix="config.")
    if check.is_object():
        check.no_unknown({"prompt", "timeout_seconds", "max_tries"})
        check.text("prompt", max_length=500)
        check.number("timeout_seconds", 1, 30, is_integer=True, is_required=False)
        check.number("max_tries", 1, 5, is_integer=True, is_required=False)
    return check.problems


def _play(node: str, config: Any, targets: TargetIndex) -> list[Problem]:
    check = ConfigCheck(node, config, prefix="config.")
    if not check.is_object():
        return check.problems
    check.no_unknown({"text", "url"})
    if ("text" in config) == ("url" in config):
        check.fail(None, "required", "A play node has either a text or a URL (not both).")
    elif "text" in config:
        check.text("text", max_length=1000)
    else:
        check.url("url")
    return check.problems


def _voicemail(node: str, config: Any, targets: TargetIndex) -> list[Problem]:
    check = ConfigCheck(node, config, prefix="config.")
    if check.is_object():
        check.no_unknown({"greeting"})
        check.text("greeting", max_length=500, is_required=False)
    return check.problems


def _http_request(node: str, config: Any, targets: TargetIndex) -> list[Problem]:
    check = ConfigCheck(node, config, prefix="config.")
    if not check.is_object():
        return check.problems
    check.no_unknown({"method", "url", "timeout_seconds", "save_as"})
    check.choice("method", ("GET", "POST"))
    check.url("url")
    check.number("timeout_seconds", 0.1, 2.0, is_required=False)
    save_as = check.identifier("save_as")
    if save_as == "call":
        check.fail(
            "save_as", "reserved", '"call" holds the built-in call.caller and call.called; pick another name.'
        )
    return check.problems


def _condition(node: str, config: Any, targets: TargetIndex) -> list[Problem]:
    check = ConfigCheck(node, config, prefix="config.")
    if not check.is_object():
        return check.problems
    kind = check.choice("kind", ("caller_prefix", "caller_country", "caller_in_list", "variable"))
    if kind == "caller_prefix":
        check.no_unknown({"kind", "prefixes"})
        check.items("prefixes", prefix_fault, max_items=100)
    elif kind == "caller_country":
        check.no_unknown({"kind", "countries"})
        check.items("countries", region_fault, max_items=250)
    elif kind == "caller_in_list":
        check.no_unknown({"kind", "numbers"})
        check.items("numbers", number_fault, max_items=500)
    elif kind == "variable":
        check.no_unknown({"kind", "name", "operator", "value"})
        check.variable("name")
        operator = check.choice("operator", ("eq", "ne", "contains", "gt", "lt", "exists"))
        if operator in ("gt", "lt"):
            check.numeric_text("value")
        elif operator is not None and operator != "exists":
            check.text("value", max_length=256, min_length=0)
    return check.problems


def _route(node: str, config: Any, targets: TargetIndex) -> list[Problem]:
    check = ConfigCheck(node, config, prefix="config.")
    if not check.is_object():
        return check.problems
    check.no_unknown({"target", "caller_id"})
    if "caller_id" in config:
        check.e164("caller_id")
    target = config.get("target")
    sub = ConfigCheck(node, target, prefix="config.target.", name="The target")
    if "target" not in config:
        check.fail("target", "required", "Choose where the call goes.")
    elif sub.is_object():
        kind = sub.choice("type", (*TARGET_KINDS, "external", "variable"))
        if kind in TARGET_KINDS:
            sub.no_unknown({"type", "id"})
            ref = sub.uuid("id")
            if ref is not None and not targets.has(kind, ref):
                label = kind.replace("_", " ")
                sub.fail("id", "unknown_target", f"That {label} does not exist in this contact center.")
        elif kind == "external":
            sub.no_unknown({"type", "number"})
            sub.e164("number")
        elif kind == "variable":
            sub.no_unknown({"type", "name"})
            sub.variable("name")
    return check.problems + sub.problems


CONFIG_CHECKS = {
    "start": _empty,
    "schedule": _schedule,
    "menu": _menu,
    "play": _play,
    "condition": _condition,
    "http_request": _http_request,
    "route": _route,
    "voicemail": _voicemail,
    "hangup": _empty,
}
