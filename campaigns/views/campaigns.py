"""Campaign pages: the list, create and edit, the detail page with its live progress, lead files.

The detail page is one template, `campaigns/campaign_detail.html`, with two partials htmx asks
for by their element id: `progress` (polled while the campaign dials or a file imports) and
`leads` (the filtered, paged table).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from django.contrib import messages
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.cache import patch_vary_headers
from django.views.decorators.http import require_http_methods, require_POST

from campaigns import services
from campaigns.forms import CampaignForm, LeadFilterForm, LeadImportForm, calling_hours_formset
from campaigns.lead_imports import rejects_csv, start_lead_import
from campaigns.models import (
    RETRYABLE_OUTCOMES,
    Campaign,
    CampaignStatus,
    LeadImport,
    LeadImportStatus,
)
from campaigns.progress import campaign_progress
from voiso_byob.access import member_required, require_membership
from voiso_byob.errors import DomainError
from voiso_byob.forms import run_service
from voiso_byob.views import paginate, render_list

TEMPLATE = "campaigns/campaign_detail.html"
RECENT_ATTEMPTS = 20
RECENT_IMPORTS = 3
# Seconds between the detail page's refreshes while something moves.
POLL_SECONDS = 3
# The leads table's page costs a count over the campaign's leads: refreshed less often.
LEADS_POLL_SECONDS = 10
_TRANSITIONS = {
    "start": services.start_campaign,
    "pause": services.pause_campaign,
    "stop": services.stop_campaign,
}
# Which buttons a status offers (the service still decides: another tab may have moved it).
_ACTIONS = {
    CampaignStatus.DRAFT: ("start",),
    CampaignStatus.ACTIVE: ("pause", "stop"),
    CampaignStatus.AUTO_PAUSED: ("pause", "stop"),
    CampaignStatus.PAUSED: ("start", "stop"),
}


def get_campaign_for_user(request: HttpRequest, pk: UUID, *, write: bool = False) -> Campaign:
    membership = require_membership(request, write=write)
    campaigns = Campaign.objects.for_center(membership.contact_center).select_related(
        "contact_center", "handoff_queue"
    )
    return get_object_or_404(campaigns, pk=pk)


@member_required
def campaign_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    center = membership.contact_center
    campaigns = (
        Campaign.objects.for_center(center).select_related("handoff_queue").order_by("priority", "name")
    )
    query = request.GET.get("q", "").strip()
    if query:
        campaigns = campaigns.filter(name__icontains=query)
    page = paginate(request, campaigns)
    page.object_list = list(page.object_list)
    # The page's progress in two grouped queries, not a few per campaign.
    progress = campaign_progress(page.object_list, center=center)
    for campaign in page.object_list:
        campaign.progress = progress[campaign.pk]
    return render_list(request, "campaigns/campaign_list.html", {"page": page, "q": query})


def _form_page(
    request: HttpRequest, form: CampaignForm, hours: Any, *, campaign: Campaign | None = None
) -> HttpResponse:
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "campaigns/campaign_form.html",
        {"form": form, "hours": hours, "campaign": campaign, "creating": campaign is None},
        status=status,
    )


@member_required
@require_http_methods(["GET", "POST"])
def campaign_create(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, write=True)
    center = membership.contact_center
    form = CampaignForm(request.POST or None, center=center)
    hours = calling_hours_formset(
        request.POST or None,
        ranges=[{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "20:00"}],
    )
    if request.method == "POST" and form.is_valid() and hours.is_valid():
        campaign = run_service(
            form,
            lambda: services.create_campaign(
                center=center, by=request.user, calling_hours=hours.ranges(), **form.service_kwargs()
            ),
        )
        if campaign is not None:
            messages.success(request, f"Campaign {campaign.name} created. Import its leads, then start it.")
            return redirect("campaigns:campaign_detail", campaign.pk)
    return _form_page(request, form, hours)


@member_required
@require_http_methods(["GET", "POST"])
def campaign_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    campaign = get_campaign_for_user(request, pk, write=True)
    form = CampaignForm(
        request.POST or None, initial=CampaignForm.initial_for(campaign), center=campaign.contact_center
    )
    hours = calling_hours_formset(request.POST or None, ranges=campaign.calling_hours)
    if request.method == "POST" and form.is_valid() and hours.is_valid():
        updated = run_service(
            form,
            lambda: services.update_campaign(
                campaign=campaign, by=request.user, calling_hours=hours.ranges(), **form.service_kwargs()
            ),
        )
        if updated is not None:
            messages.success(request, f"Campaign {updated.name} saved.")
            return redirect("campaigns:campaign_detail", updated.pk)
        campaign.refresh_from_db()
    return _form_page(request, form, hours, campaign=campaign)


# --- the detail page -----------------------------------------------------------------------


def _leads(request: HttpRequest, campaign: Campaign) -> tuple[LeadFilterForm, Any]:
    form = LeadFilterForm(request.GET or None)
    leads = campaign.leads.order_by("priority", "created", "pk")
    if form.is_valid():
        if form.cleaned_data["status"]:
            leads = leads.filter(status=form.cleaned_data["status"])
        query = form.cleaned_data["q"].strip()
        if query:
            leads = leads.filter(Q(phone__icontains=query) | Q(name__icontains=query))
    return form, paginate(request, leads)


def _page(
    request: HttpRequest,
    campaign: Campaign,
    *,
    import_form: LeadImportForm | None = None,
    error: str = "",
    status: int = 200,
) -> HttpResponse:
    membership = require_membership(request)
    imports = list(campaign.lead_imports.select_related("created_by")[:RECENT_IMPORTS])
    is_importing = any(
        item.status in (LeadImportStatus.PENDING, LeadImportStatus.RUNNING) for item in imports
    )
    filter_form, page = _leads(request, campaign)
    context = {
        "campaign": campaign,
        "progress": campaign_progress([campaign], center=campaign.contact_center)[campaign.pk],
        "imports": imports,
        "is_polling": is_importing or campaign.status in (CampaignStatus.ACTIVE, CampaignStatus.AUTO_PAUSED),
        "poll_seconds": POLL_SECONDS,
        "leads_poll_seconds": LEADS_POLL_SECONDS,
        "actions": _ACTIONS.get(campaign.status, ()) if membership.can_configure else (),
        "is_open": campaign.status not in (CampaignStatus.STOPPED, CampaignStatus.COMPLETED),
        "import_form": import_form or LeadImportForm(),
        "filter_form": filter_form,
        "page": page,
        "attempts": campaign.attempts.select_related("virtual_agent", "lead")[:RECENT_ATTEMPTS],
        "error": error,
        "hours": campaign.calling_hours,
        "retry": {outcome: campaign.retry_delay_minutes(outcome) for outcome in RETRYABLE_OUTCOMES},
        "virtual_agents": list(campaign.virtual_agents.order_by("name")),
        "caller_ids": list(campaign.caller_ids.values_list("number", flat=True)),
    }
    template = TEMPLATE
    if request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request:
        partial = request.htmx.target if request.htmx.target in ("progress", "leads") else "leads"
        template = f"{TEMPLATE}#{partial}"
    response = render(request, template, context, status=status)
    patch_vary_headers(response, ["HX-Request", "HX-Target"])
    return response


@member_required
def campaign_detail(request: HttpRequest, pk: UUID) -> HttpResponse:
    return _page(request, get_campaign_for_user(request, pk))


@require_POST
@member_required
def campaign_transition(request: HttpRequest, pk: UUID, action: str) -> HttpResponse:
    """Start, pause or stop; a move the status does not allow shows the service's 409 message."""
    transition = _TRANSITIONS.get(action)
    if transition is None:
        raise Http404("No such action.")
    campaign = get_campaign_for_user(request, pk, write=True)
    try:
        campaign = transition(campaign=campaign, by=request.user)
    except DomainError as exc:
        return _page(request, campaign, error=exc.message, status=exc.status_code)
    messages.success(request, f"Campaign {campaign.name} is {campaign.get_status_display().lower()}.")
    return redirect("campaigns:campaign_detail", campaign.pk)


@require_POST
@member_required
def lead_import_create(request: HttpRequest, pk: UUID) -> HttpResponse:
    campaign = get_campaign_for_user(request, pk, write=True)
    form = LeadImportForm(request.POST, request.FILES)
    if form.is_valid():
        upload = form.cleaned_data["file"]
        upload.seek(0)
        try:
            lead_import = start_lead_import(
                campaign=campaign, upload=upload.file, filename=upload.name or "", by=request.user
            )
        except DomainError as exc:
            if exc.field != "file":  # the campaign closed meanwhile: its form is gone from the page
                return _page(request, campaign, error=exc.message, status=exc.status_code)
            form.add_error("file", exc.message)
        else:
            messages.success(
                request, f"{lead_import.rows:,} rows of {lead_import.filename} are being imported."
            )
            return redirect("campaigns:campaign_detail", campaign.pk)
    return _page(request, campaign, import_form=form, status=400)


@member_required
def lead_import_rejects(request: HttpRequest, pk: UUID, import_pk: UUID) -> HttpResponse:
    """The rejected rows of one import as CSV, streamed (a million-row file may reject them all)."""
    campaign = get_campaign_for_user(request, pk)
    lead_import = get_object_or_404(LeadImport.objects.filter(campaign=campaign), pk=import_pk)
    response = StreamingHttpResponse(rejects_csv(lead_import), content_type="text/csv; charset=utf-8")
    filename = f"rejected-{lead_import.created:%Y%m%d-%H%M%S}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
