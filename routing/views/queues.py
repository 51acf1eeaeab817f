"""Queue pages: list, create, edit, delete."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from routing import services
from routing.forms.queues import QueueForm
from routing.models import Queue
from voiso_byob.access import member_required, require_membership
from voiso_byob.forms import run_service
from voiso_byob.views import confirm_delete, paginate, render_list


def get_queue_for_user(request: HttpRequest, pk: UUID, *, write: bool = False) -> Queue:
    membership = require_membership(request, write=write)
    return get_object_or_404(Queue.objects.for_center(membership.contact_center).with_details(), pk=pk)


@member_required
def queue_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    queues = (
        Queue.objects.for_center(membership.contact_center)
        .select_related("extension", "failover_queue")
        .annotate(member_count=Count("members"))
        .order_by("name")
    )
    query = request.GET.get("q", "").strip()
    if query:
        queues = queues.filter(Q(name__icontains=query) | Q(extension__digits__startswith=query))
    return render_list(
        request,
        "routing/queue_list.html",
        {"page": paginate(request, queues), "q": query, "center": membership.contact_center},
    )


def _service_kwargs(form: QueueForm) -> dict[str, object]:
    data = form.cleaned_data
    return {
        "name": data["name"],
        "extension": data["extension"],
        "strategy": data["strategy"],
        "members": data["members"],
        "virtual_agent_members": data.get("virtual_agent_members", []),
        "max_wait_seconds": data["max_wait_seconds"],
        "service_level_seconds": data["service_level_seconds"],
        "failover_action": data["failover_action"],
        "failover_queue": data["failover_queue"],
        "failover_number": data["failover_number"],
    }


@member_required
@require_http_methods(["GET", "POST"])
def queue_create(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, write=True)
    center = membership.contact_center
    form = QueueForm(request.POST or None, center=center)
    if request.method == "POST" and form.is_valid():
        queue = run_service(
            form, lambda: services.create_queue(center=center, by=request.user, **_service_kwargs(form))
        )
        if queue is not None:
            messages.success(request, f"Queue {queue.name} created with extension {queue.extension.digits}.")
            return redirect("routing:queue_list")
    return render(request, "routing/queue_form.html", {"form": form, "creating": True})


@member_required
@require_http_methods(["GET", "POST"])
def queue_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    queue = get_queue_for_user(request, pk, write=True)
    initial = {
        "name": queue.name,
        "extension": queue.extension.digits,
        "strategy": queue.strategy,
        "members": list(queue.members.all()),
        "virtual_agent_members": list(queue.virtual_agent_members.all()),
        "max_wait_seconds": queue.max_wait_seconds,
        "service_level_seconds": queue.service_level_seconds,
        "failover_action": queue.failover_action,
        "failover_queue": queue.failover_queue,
        "failover_number": queue.failover_number,
    }
    form = QueueForm(request.POST or None, initial=initial, center=queue.contact_center, queue=queue)
    if request.method == "POST" and form.is_valid():
        updated = run_service(
            form, lambda: services.update_queue(queue=queue, by=request.user, **_service_kwargs(form))
        )
        if updated is not None:
            messages.success(request, f"Queue {updated.name} saved.")
            return redirect("routing:queue_list")
        # The service may have changed the instance before refusing; show what is saved.
        queue.refresh_from_db()
    return render(request, "routing/queue_form.html", {"form": form, "queue": queue})


@member_required
@require_http_methods(["GET", "POST"])
def queue_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    queue = get_queue_for_user(request, pk, write=True)
    return confirm_delete(
        request,
        what=f"queue {queue.name}",
        delete=lambda: services.delete_queue(queue=queue, by=request.user),
        done=f"Queue {queue.name} deleted; extension {queue.extension.digits} is free.",
        success_url="routing:queue_list",
        cancel="routing:queue_list",
    )
