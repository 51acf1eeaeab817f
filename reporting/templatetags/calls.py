"""Display of call figures in the calls pages."""

from __future__ import annotations

from django import template

register = template.Library()


@register.filter
def duration(seconds: float | None) -> str:
    """1:05 for 65 s, 1:00:05 past an hour; an em dash when unknown (a bounding event is missing)."""
    if seconds is None:
        return "—"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


@register.filter
def offset(seconds: float | None) -> str:
    """+12.3 s from the call's start, for the event timeline."""
    if seconds is None:
        return ""
    sign = "-" if seconds < 0 else "+"
    return f"{sign}{abs(seconds):.1f} s"
