"""Flow pages around the builder: the list, create, settings, version history, restore, delete."""

from __future__ import annotations

import copy
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.db.models import F, Prefetch, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from routing import services
from routing.forms.flows import FlowForm, FlowSettingsForm
from routing.models import Flow, FlowVersion, FlowVersionState, PhoneNumber
from routing.views.diagram import auto_layout
from voiso_byob.access import member_required, require_membership
from voiso_byob.errors import DomainError
from voiso_byob.forms import run_service
from voiso_byob.views import confirm_delete, paginate, render_list


def get_flow_for_user(request: HttpRequest, pk: UUID, *, write: bool = False) -> Flow:
    membership = require_membership(request, write=write)
    return get_object_or_404(
        Flow.objects.for_center(membership.contact_center).select_related(
            "contact_center", "after_hours_flow"
        ),
        pk=pk,
    )


def get_version_for_user(request: HttpRequest, pk: UUID, number: int, *, write: bool = False) -> FlowVersion:
    flow = get_flow_for_user(request, pk, write=write)
    version = get_object_or_404(flow.versions.select_related("created_by"), number=number)
    version.flow = flow  # the scoped flow, with its contact center already loaded
    return version


def starter_graph() -> dict[str, Any]:
    """The services' starter graph, laid out with the builder's box sizes so nothing is cramped."""
    nodes = copy.deepcopy(services.STARTER_GRAPH["nodes"])
    return {"nodes": nodes, "layout": {node: {"x": x, "y": y} for node, (x, y) in auto_layout(nodes).items()}}


@member_required
def flow_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    flows = (
        Flow.objects.for_center(membership.contact_center)
        .annotate(published_number=F("published_version__number"))
        .prefetch_related(
            Prefetch(
                "versions",
                queryset=FlowVersion.objects.filter(state=FlowVersionState.DRAFT).defer("graph"),
                to_attr="drafts",
            ),
            Prefetch("phone_numbers", queryset=PhoneNumber.objects.only("id", "number", "flow_id")),
        )
        .order_by("name")
    )
    query = request.GET.get("q", "").strip()
    if query:
        flows = flows.filter(Q(name__icontains=query) | Q(phone_numbers__number__contains=query)).distinct()
    return render_list(request, "routing/flow_list.html", {"page": paginate(request, flows), "q": query})


@member_required
@require_http_methods(["GET", "POST"])
def flow_create(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, write=True)
    form = FlowForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        flow = run_service(
            form,
            lambda: services.create_flow(
                center=membership.contact_center,
                by=request.user,
                name=form.cleaned_data["name"],
                graph=starter_graph(),
            ),
        )
        if flow is not None:
            messages.success(request, f"Flow {flow.name} created. Add nodes, test it, then publish it.")
            return redirect("routing:flow_detail", pk=flow.pk)
    return render(
        request,
        "routing/flow_form.html",
        {"form": form, "creating": True},
        status=400 if form.errors else 200,
    )


@member_required
@require_http_methods(["GET", "POST"])
def flow_settings(request: HttpRequest, pk: UUID) -> HttpResponse:
    flow = get_flow_for_user(request, pk, write=True)
    initial = {
        "name": flow.name,
        "after_hours_flow": flow.after_hours_flow,
        **FlowSettingsForm.initial_schedule(flow.business_hours),
    }
    form = FlowSettingsForm(request.POST or None, initial=initial, flow=flow)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        updated = run_service(
            form,
            lambda: services.update_flow(
                flow=flow,
                by=request.user,
                name=data["name"],
                business_hours=form.schedule(),
                after_hours_flow=data["after_hours_flow"],
            ),
        )
        if updated is not None:
            messages.success(request, f"Settings of {updated.name} saved.")
            return redirect("routing:flow_detail", pk=flow.pk)
        flow.refresh_from_db()
    return render(
        request, "routing/flow_form.html", {"form": form, "flow": flow}, status=400 if form.errors else 200
    )


@member_required
@require_http_methods(["GET", "POST"])
def flow_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    flow = get_flow_for_user(request, pk, write=True)
    return confirm_delete(
        request,
        what=f"flow {flow.name}",
        delete=lambda: services.delete_flow(flow=flow, by=request.user),
        done=f"Flow {flow.name} deleted with its versions.",
        success_url="routing:flow_list",
        cancel="routing:flow_list",
    )


@member_required
def flow_versions(request: HttpRequest, pk: UUID) -> HttpResponse:
    flow = get_flow_for_user(request, pk)
    # A list of versions reads their state, never their graphs (up to 64 KB each).
    versions = flow.versions.select_related("created_by").defer("graph").order_by("-number")
    return render(request, "routing/flowversion_list.html", {"flow": flow, "versions": versions})


@require_POST
@member_required
def flow_restore(request: HttpRequest, pk: UUID, number: int) -> HttpResponse:
    version = get_version_for_user(request, pk, number, write=True)
    try:
        draft = services.restore_version(version=version, by=request.user)
    except DomainError as exc:
        messages.error(request, exc.message)
        return redirect("routing:flow_version", pk=pk, number=number)
    messages.success(
        request, f"Version {version.number} restored as draft v{draft.number}; publish it to use it."
    )
    return redirect("routing:flow_detail", pk=pk)
