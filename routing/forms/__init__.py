"""Routing forms: queues, phone numbers, flows, and one form per flow node type."""

from __future__ import annotations

from routing.forms.menus import MenuForm
from routing.forms.nodes import (
    ConditionForm,
    HangupForm,
    HttpRequestForm,
    NodeForm,
    PlayForm,
    ScheduleNodeForm,
    StartForm,
    VoicemailForm,
)
from routing.forms.routes import RouteForm

# The form that edits each node type of the graph (routing/flows/schema.py).
NODE_FORMS: dict[str, type[NodeForm]] = {
    form.type: form
    for form in (
        StartForm,
        ScheduleNodeForm,
        MenuForm,
        PlayForm,
        ConditionForm,
        HttpRequestForm,
        RouteForm,
        VoicemailForm,
        HangupForm,
    )
}
