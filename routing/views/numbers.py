"""Phone number pages: list, add, edit (label and flow), delete."""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.db.models import F, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_http_methods

from routing import services
from routing.forms.numbers import PhoneNumberForm
from routing.models import PhoneNumber
from voiso_byob.access import member_required, require_membership
from voiso_byob.forms import run_service
from voiso_byob.views import confirm_delete, paginate, render_list


def get_phone_number_for_user(request: HttpRequest, pk: UUID, *, write: bool = False) -> PhoneNumber:
    membership = require_membership(request, write=write)
    return get_object_or_404(
        PhoneNumber.objects.for_center(membership.contact_center).select_related("flow"), pk=pk
    )


@member_required
def number_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    numbers = (
        PhoneNumber.objects.for_center(membership.contact_center)
        .select_related("flow")
        .annotate(published_number=F("flow__published_version__number"))
    )
    query = request.GET.get("q", "").strip()
    if query:
        digits = query.replace(" ", "")
        numbers = numbers.filter(
            Q(number__contains=digits) | Q(label__icontains=query) | Q(flow__name__icontains=query)
        )
    return render_list(
        request, "routing/phonenumber_list.html", {"page": paginate(request, numbers), "q": query}
    )


@member_required
@require_http_methods(["GET", "POST"])
def number_create(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, write=True)
    center = membership.contact_center
    initial = {"flow": request.GET.get("flow")} if request.GET.get("flow") else None
    form = PhoneNumberForm(request.POST or None, center=center, initial=initial)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        phone = run_service(
            form,
            lambda: services.create_phone_number(
                center=center, by=request.user, number=data["number"], label=data["label"], flow=data["flow"]
            ),
        )
        if phone is not None:
            messages.success(request, f"Number {phone.number} added.")
            return redirect("routing:number_list")
    return render(
        request,
        "routing/phonenumber_form.html",
        {"form": form, "creating": True},
        status=400 if form.errors else 200,
    )


@member_required
@require_http_methods(["GET", "POST"])
def number_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    phone = get_phone_number_for_user(request, pk, write=True)
    form = PhoneNumberForm(
        request.POST or None,
        center=phone.contact_center,
        is_new=False,
        initial={"label": phone.label, "flow": phone.flow},
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        updated = run_service(
            form,
            lambda: services.update_phone_number(
                phone=phone, by=request.user, label=data["label"], flow=data["flow"]
            ),
        )
        if updated is not None:
            where = f"runs {updated.flow.name}" if updated.flow else "runs no flow"
            messages.success(request, f"Number {updated.number} saved; it {where}.")
            return redirect("routing:number_list")
    return render(
        request,
        "routing/phonenumber_form.html",
        {"form": form, "phone": phone},
        status=400 if form.errors else 200,
    )


@member_required
@require_http_methods(["GET", "POST"])
def number_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    phone = get_phone_number_for_user(request, pk, write=True)
    return confirm_delete(
        request,
        what=f"number {phone.number}",
        delete=lambda: services.delete_phone_number(phone=phone, by=request.user),
        done=f"Number {phone.number} deleted; calls to it are no longer routed.",
        success_url="routing:number_list",
        cancel="routing:number_list",
    )
