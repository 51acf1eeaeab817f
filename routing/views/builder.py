"""The flow builder: the diagram of a version, node forms that save the draft, publish, test calls.

Every page here is one template, `routing/flow_detail.html`; its `workspace` partial (the
diagram, the problems, the side panel and the test-call panel) is what htmx swaps after an
edit, and the `diagram` partial alone answers a drag. Without JavaScript the same URLs
answer with whole pages and redirects.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import push_url

from routing import services
from routing.forms import NODE_FORMS, NodeForm
from routing.forms.flows import AddNodeForm, TestCallForm
from routing.forms.routes import TARGET_KIND_LABELS, route_target_choices
from routing.models import Flow, FlowVersion, FlowVersionState
from routing.route import SimulationStep, simulate_flow
from routing.views import diagram
from routing.views import graph as graphs
from routing.views.flows import get_flow_for_user, get_version_for_user
from voiso_byob.access import current_membership, member_required
from voiso_byob.errors import DomainError

TEMPLATE = "routing/flow_detail.html"


# --- the graph being edited ----------------------------------------------------------------


def _versions(flow: Flow) -> tuple[FlowVersion | None, FlowVersion | None]:
    """The draft and the published version, in one query."""
    draft = published = None
    for version in flow.versions.filter(
        state__in=[FlowVersionState.DRAFT, FlowVersionState.PUBLISHED]
    ).select_related("created_by"):
        if version.state == FlowVersionState.DRAFT:
            draft = version
        else:
            published = version
    return draft, published


def _working_graph(flow: Flow) -> dict[str, Any]:
    """A copy of what an edit starts from: the draft, else the published version."""
    draft, published = _versions(flow)
    current = draft or published
    graph = copy.deepcopy(current.graph) if current is not None else {}
    if not isinstance(graph, dict):
        graph = {}
    if not isinstance(graph.get("nodes"), dict):
        graph["nodes"] = {}
    return graph


def _node_or_404(graph: dict[str, Any], node_id: str) -> dict[str, Any]:
    node = graph["nodes"].get(node_id)
    if not isinstance(node, dict):
        raise Http404("No such node in this flow.")
    return node


def _freeze_layout(graph: dict[str, Any]) -> dict[str, dict[str, int]]:
    """Store where every node is drawn now, so one change does not rearrange the others."""
    layout = {node_id: {"x": x, "y": y} for node_id, (x, y) in diagram.positions(graph).items()}
    graph["layout"] = layout
    return layout


# --- rendering -----------------------------------------------------------------------------


def _at_default(flow: Flow) -> str:
    return timezone.now().astimezone(ZoneInfo(flow.contact_center.timezone)).strftime("%Y-%m-%dT%H:%M")


def _steps(steps: list[SimulationStep]) -> list[dict[str, Any]]:
    return [
        {
            "number": index,
            "digits": step.digits,
            "path": step.path,
            "notes": step.notes,
            "destination": step.destination,
            "destination_label": TARGET_KIND_LABELS.get(step.destination["type"], step.destination["type"])
            if step.destination
            else "",
            "instructions": [json.dumps(item, ensure_ascii=False) for item in step.instructions],
        }
        for index, step in enumerate(steps, start=1)
    ]


def _test_path(steps: list[SimulationStep]) -> list[str]:
    """The nodes the whole test call passed, in order (a menu ends one step and starts the next)."""
    path: list[str] = []
    for step in steps:
        for node_id in step.path:
            if not path or path[-1] != node_id:
                path.append(node_id)
    return path


def _page(
    request: HttpRequest,
    flow: Flow,
    *,
    version: FlowVersion | None = None,
    panel: str = "overview",
    selected: str | None = None,
    node_form: NodeForm | None = None,
    add_form: AddNodeForm | None = None,
    test_form: TestCallForm | None = None,
    simulation: list[SimulationStep] | None = None,
    notice: str = "",
    error: str = "",
    partial: str = "workspace",
    status: int = 200,
) -> HttpResponse:
    """The builder page (or its partial for htmx) showing `version`, else the working copy."""
    membership = current_membership(request)
    assert membership is not None  # the access helper ran first
    center = flow.contact_center
    draft, published = _versions(flow)
    is_working = version is None or (draft or published) == version
    shown = (draft or published) if version is None else version
    graph = shown.graph if shown is not None else {}
    # Checked live, not as saved: a queue a draft routes to may have been deleted since.
    problems = services.flow_problems(center, graph) if shown is not None else []
    _, names = route_target_choices(center)
    path = _test_path(simulation) if simulation else []
    drawing = diagram.build(graph, problems=problems, names=names, path=path, selected=selected)
    if test_form is None:
        test_form = TestCallForm(
            initial={"at": _at_default(flow), "version": shown.number if shown else 1}, center=center
        )
    context = {
        "flow": flow,
        "center": center,
        "draft": draft,
        "published": published,
        "shown": shown,
        "is_working": is_working,
        "can_edit": membership.can_configure and is_working,
        "diagram": drawing,
        "problems": problems,
        "panel": panel,
        "selected": selected,
        "node_form": node_form,
        "add_form": add_form,
        "test_form": test_form,
        "steps": _steps(simulation) if simulation else None,
        "notice": notice,
        "error": error,
        "node_problems": [p for p in problems if selected and p["node"] == selected],
        "numbers": list(flow.phone_numbers.values_list("number", flat=True)),
        "hours": graphs.schedule_summary(flow.business_hours) if flow.business_hours else "always open",
    }
    template = TEMPLATE
    if request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request:
        template = f"{TEMPLATE}#{partial}"
    return render(request, template, context, status=status)


def _node_form(
    request: HttpRequest, flow: Flow, graph: dict[str, Any], node_id: str, *, data: Any = None
) -> NodeForm | None:
    node = _node_or_404(graph, node_id)
    form_class = NODE_FORMS.get(str(node.get("type")))
    if form_class is None:
        return None
    form = form_class(data, node=node, targets=graphs.node_choices(graph), center=flow.contact_center)
    membership = current_membership(request)
    if membership is None or not membership.can_configure:
        form.disable()
    return form


def _saved(
    request: HttpRequest, flow: Flow, draft: FlowVersion | None, *, node_id: str | None, what: str
) -> HttpResponse:
    """After an edit: the workspace again for htmx (the node still open), else a redirect."""
    assert draft is not None  # set when the edit block ended
    count = len(draft.problems)
    notice = f"{what} Draft v{draft.number} saved" + (
        f" with {count} problem{'s' if count != 1 else ''}." if count else "; it is ready to publish."
    )
    url = (
        reverse("routing:flow_node", args=[flow.pk, node_id])
        if node_id
        else reverse("routing:flow_detail", args=[flow.pk])
    )
    if not request.htmx:
        messages.success(request, notice)
        return redirect(url)
    if node_id is None:
        response = _page(request, flow, notice=notice)
    else:
        graph = _working_graph(flow)
        form = _node_form(request, flow, graph, node_id)
        response = _page(request, flow, panel="node", selected=node_id, node_form=form, notice=notice)
    return push_url(response, url)


@dataclass
class _Edit:
    graph: dict[str, Any]
    draft: FlowVersion | None = None


@contextmanager
def _editing(request: HttpRequest, flow: Flow) -> Iterator[_Edit]:
    """The working graph to change in the block; saved as the draft when the block ends.

    Read, change and save happen under the flow's row lock: two administrators editing one
    flow at once would otherwise each save their own copy and silently undo the other's edit.
    """
    with transaction.atomic():
        Flow.objects.select_for_update().get(pk=flow.pk)
        edit = _Edit(_working_graph(flow))
        yield edit
        edit.draft = services.save_draft(flow=flow, by=request.user, graph=edit.graph)


# --- pages ---------------------------------------------------------------------------------


@member_required
def flow_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    flow = get_flow_for_user(request, pk)
    return _page(request, flow)


@member_required
def flow_version(request: HttpRequest, pk: UUID, number: int) -> HttpResponse:
    """Any version, read-only, with its diagram; a test call runs this version."""
    version = get_version_for_user(request, pk, number)
    return _page(request, version.flow, version=version)


@member_required
@require_http_methods(["GET", "POST"])
def node_edit(request: HttpRequest, pk: UUID, node_id: str) -> HttpResponse:
    """GET: the node's form (read-only for supervisors). POST: save it into the draft."""
    flow = get_flow_for_user(request, pk, write=request.method == "POST")
    graph = _working_graph(flow)
    form = _node_form(request, flow, graph, node_id, data=request.POST or None)
    if request.method == "POST" and form is not None and form.is_valid():
        with _editing(request, flow) as edit:
            _node_or_404(edit.graph, node_id)  # deleted by someone else meanwhile
            edit.graph["nodes"][node_id] = form.node()
        return _saved(request, flow, edit.draft, node_id=node_id, what=f"Node {node_id} saved.")
    is_refused = request.method == "POST" and not request.htmx
    return _page(
        request, flow, panel="node", selected=node_id, node_form=form, status=400 if is_refused else 200
    )


@member_required
@require_http_methods(["GET", "POST"])
def node_add(request: HttpRequest, pk: UUID) -> HttpResponse:
    flow = get_flow_for_user(request, pk, write=True)
    graph = _working_graph(flow)
    has_start = any(node.get("type") == "start" for node in graphs.nodes_of(graph).values())
    form = AddNodeForm(request.POST or None, slots=graphs.branch_slots(graph), has_start=has_start)
    if request.method == "POST" and form.is_valid():
        kind, label = form.cleaned_data["type"], form.cleaned_data["label"].strip()
        source, _, branch = form.cleaned_data["connect_from"].partition(".")
        with _editing(request, flow) as edit:
            nodes = edit.graph["nodes"]
            node_id = graphs.new_node_id(edit.graph, kind)
            layout = _freeze_layout(edit.graph)
            x, y = diagram.free_spot(edit.graph, below=source or None)
            nodes[node_id] = {"type": kind, **({"label": label} if label else {}), "config": {}, "next": {}}
            layout[node_id] = {"x": x, "y": y}
            if isinstance(nodes.get(source), dict):
                branches = nodes[source].get("next")
                nodes[source]["next"] = {**(branches if isinstance(branches, dict) else {}), branch: node_id}
        return _saved(request, flow, edit.draft, node_id=node_id, what=f"Node {node_id} added.")
    status = 400 if form.errors and not request.htmx else 200
    return _page(request, flow, panel="add", add_form=form, status=status)


@require_POST
@member_required
def node_delete(request: HttpRequest, pk: UUID, node_id: str) -> HttpResponse:
    flow = get_flow_for_user(request, pk, write=True)
    with _editing(request, flow) as edit:
        _node_or_404(edit.graph, node_id)
        graphs.remove_node(edit.graph, node_id)
    return _saved(request, flow, edit.draft, node_id=None, what=f"Node {node_id} deleted.")


@require_POST
@member_required
def node_move(request: HttpRequest, pk: UUID, node_id: str) -> HttpResponse:
    """A node dragged on the diagram; answers with the diagram alone, the open form untouched."""
    flow = get_flow_for_user(request, pk, write=True)
    try:
        x = min(max(int(request.POST["x"]), 0), diagram.MAX_COORDINATE)
        y = min(max(int(request.POST["y"]), 0), diagram.MAX_COORDINATE)
    except (KeyError, ValueError):
        return HttpResponse("x and y are whole numbers of pixels.", status=400)
    with _editing(request, flow) as edit:
        _node_or_404(edit.graph, node_id)
        _freeze_layout(edit.graph)[node_id] = {"x": x, "y": y}
    if not request.htmx:
        return redirect("routing:flow_detail", pk=flow.pk)
    selected = request.POST.get("selected") or None
    return _page(request, flow, selected=selected, partial="diagram")


@require_POST
@member_required
def flow_arrange(request: HttpRequest, pk: UUID) -> HttpResponse:
    """Forget every stored position: the diagram is laid out by depth from the start again."""
    flow = get_flow_for_user(request, pk, write=True)
    with _editing(request, flow) as edit:
        edit.graph.pop("layout", None)
    return _saved(request, flow, edit.draft, node_id=None, what="Nodes arranged.")


@require_POST
@member_required
def flow_publish(request: HttpRequest, pk: UUID) -> HttpResponse:
    flow = get_flow_for_user(request, pk, write=True)
    try:
        version = services.publish_flow(flow=flow, by=request.user)
    except DomainError as exc:
        return _page(request, flow, error=exc.message, status=200 if request.htmx else 400)
    flow.refresh_from_db()
    notice = f"Version {version.number} is published; calls to this flow's numbers now follow it."
    if not request.htmx:
        messages.success(request, notice)
        return redirect("routing:flow_detail", pk=flow.pk)
    return push_url(_page(request, flow, notice=notice), reverse("routing:flow_detail", args=[flow.pk]))


@require_POST
@member_required
def flow_test_call(request: HttpRequest, pk: UUID) -> HttpResponse:
    """A dry run of one version: the path it takes and what the switch would be told. Writes nothing,
    so supervisors may run it too; theirs sends no http_request node's request (see simulate_flow)."""
    flow = get_flow_for_user(request, pk)
    form = TestCallForm(request.POST, center=flow.contact_center)
    number = form.data.get("version")
    version = get_object_or_404(flow.versions, number=number) if str(number or "").isdigit() else None
    if not form.is_valid() or version is None:
        return _page(request, flow, version=version, test_form=form, status=200 if request.htmx else 400)
    data = form.cleaned_data
    try:
        steps = simulate_flow(
            flow=flow,
            version=version,
            caller=data["caller"],
            at=data["at"],
            digits=data["digits"],
            is_http_allowed=current_membership(request).can_configure,
        )
    except DomainError as exc:
        return _page(request, flow, version=version, test_form=form, error=exc.message, status=200)
    return _page(request, flow, version=version, test_form=form, simulation=steps)
