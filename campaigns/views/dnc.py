"""The do-not-call lists: the center's, and each campaign's. One template, both lists.

Files here are small (up to 10,000 numbers) and imported in the request; lead files are not.
"""

from __future__ import annotations

from uuid import UUID

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_POST

from campaigns import services
from campaigns.forms import DoNotCallForm, DoNotCallImportForm
from campaigns.lead_imports import MAX_DNC_ROWS, import_do_not_call
from campaigns.models import Campaign, DoNotCall
from campaigns.views.campaigns import get_campaign_for_user
from voiso_byob.access import member_required, require_membership
from voiso_byob.forms import run_service
from voiso_byob.views import paginate, render_list

TEMPLATE = "campaigns/donotcall_list.html"
INVALID_SHOWN = 20


def _list_url(campaign: Campaign | None) -> tuple[str, list[object]]:
    if campaign is None:
        return "campaigns:dnc_list", []
    return "campaigns:campaign_dnc_list", [campaign.pk]


def _page(
    request: HttpRequest,
    campaign: Campaign | None,
    *,
    add_form: DoNotCallForm | None = None,
    import_form: DoNotCallImportForm | None = None,
    status: int = 200,
) -> HttpResponse:
    membership = require_membership(request)
    center = membership.contact_center
    entries = DoNotCall.objects.filter(contact_center=center, campaign=campaign).select_related("added_by")
    query = request.GET.get("q", "").strip()
    if query:
        entries = entries.filter(phone__icontains=query)
    context = {
        "campaign": campaign,
        "page": paginate(request, entries.order_by("phone")),
        "q": query,
        "add_form": add_form or DoNotCallForm(),
        "import_form": import_form or DoNotCallImportForm(),
        "max_rows": MAX_DNC_ROWS,
        "campaigns": Campaign.objects.for_center(center).order_by("name").only("pk", "name"),
    }
    response = render_list(request, TEMPLATE, context)
    response.status_code = status
    return response


def _campaign(request: HttpRequest, pk: UUID | None, *, write: bool = False) -> Campaign | None:
    require_membership(request, write=write)
    return get_campaign_for_user(request, pk, write=write) if pk is not None else None


@member_required
def dnc_list(request: HttpRequest, pk: UUID | None = None) -> HttpResponse:
    return _page(request, _campaign(request, pk))


@require_POST
@member_required
def dnc_add(request: HttpRequest, pk: UUID | None = None) -> HttpResponse:
    campaign = _campaign(request, pk, write=True)
    center = require_membership(request, write=True).contact_center
    form = DoNotCallForm(request.POST)
    if form.is_valid():
        entry = run_service(
            form,
            lambda: services.add_do_not_call(
                center=center,
                campaign=campaign,
                phone=form.cleaned_data["phone"],
                reason=form.cleaned_data["reason"],
                by=request.user,
            ),
        )
        if entry is not None:
            messages.success(request, f"{entry.phone} will not be called.")
            name, args = _list_url(campaign)
            return redirect(name, *args)
    return _page(request, campaign, add_form=form, status=400)


@require_POST
@member_required
def dnc_import(request: HttpRequest, pk: UUID | None = None) -> HttpResponse:
    campaign = _campaign(request, pk, write=True)
    center = require_membership(request, write=True).contact_center
    form = DoNotCallImportForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        upload.seek(0)
        result = run_service(
            form,
            lambda: import_do_not_call(center=center, campaign=campaign, upload=upload.file, by=request.user),
        )
        if result is not None:
            messages.success(
                request,
                f"{result.added} numbers added; {result.already_listed} were already on the list.",
            )
            if result.invalid:
                shown = ", ".join(
                    f"row {row} ({number or 'empty'})" for row, number in result.invalid[:INVALID_SHOWN]
                )
                more = len(result.invalid) - INVALID_SHOWN
                messages.error(
                    request,
                    f"{len(result.invalid)} rows are not phone numbers: {shown}"
                    + (f" and {more} more." if more > 0 else "."),
                )
            name, args = _list_url(campaign)
            return redirect(name, *args)
    return _page(request, campaign, import_form=form, status=400)


@require_POST
@member_required
def dnc_remove(request: HttpRequest, entry_pk: UUID) -> HttpResponse:
    membership = require_membership(request, write=True)
    entry = get_object_or_404(
        DoNotCall.objects.filter(contact_center=membership.contact_center).select_related("campaign"),
        pk=entry_pk,
    )
    campaign = entry.campaign
    services.remove_do_not_call(entry=entry, by=request.user)
    messages.success(request, f"{entry.phone} removed from the do-not-call list.")
    name, args = _list_url(campaign)
    return redirect(name, *args)
