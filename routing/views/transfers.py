"""The external-transfer settings page: whether and where bots and flows may hand calls to phone numbers."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from routing.forms.transfers import ExternalTransfersForm
from voiso_byob import services
from voiso_byob.access import member_required, require_membership
from voiso_byob.forms import run_service


@member_required
@require_http_methods(["GET", "POST"])
def external_transfers(request: HttpRequest) -> HttpResponse:
    """Administrators change it; supervisors see it read-only; agents are refused."""
    membership = require_membership(request, write=request.method == "POST")
    center = membership.contact_center
    form = ExternalTransfersForm(
        request.POST or None, center=center, is_read_only=not membership.can_configure
    )
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        saved = run_service(
            form,
            lambda: services.update_external_transfers(
                center=center,
                by=request.user,
                is_allowed=data["is_allowed"],
                allowed_destinations=data["allowed_destinations"],
                denied_number_types=data["denied_number_types"],
                is_only_bot_targets=data["is_only_bot_targets"],
            ),
        )
        if saved is not None:
            messages.success(request, "External transfer settings saved; calls follow them from now on.")
            return redirect("routing:external_transfers")
    return render(
        request,
        "routing/contactcenter_transfers.html",
        {"form": form},
        status=400 if form.errors else 200,
    )
