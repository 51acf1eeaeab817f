"""Portal pages of the core: switcher, members, API keys, audit log, profile (the dashboard is
reporting.dashboard_views: it reads the reports, and the core imports no app)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.core.paginator import Page, Paginator
from django.db.models import Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.cache import patch_vary_headers
from django.utils.http import url_has_allowed_host_and_scheme, urlencode
from django.views.decorators.http import require_http_methods, require_POST

from voiso_byob import services
from voiso_byob.access import SESSION_CENTER_KEY, member_required, require_membership
from voiso_byob.errors import DomainError
from voiso_byob.forms import (
    ApiKeyForm,
    InvitationSignupForm,
    MemberEditForm,
    MemberInviteForm,
    ProfileForm,
    ThrottledAuthenticationForm,
    run_service,
)
from voiso_byob.models import ApiKey, AuditEvent, Invitation, Membership, User
from voiso_byob.sip import handoff_uri

PAGE_SIZE = 25
INVITATIONS_SHOWN = 50


def paginate(request: HttpRequest, queryset: QuerySet[Any]) -> Page:
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def render_list(request: HttpRequest, template: str, context: dict[str, Any]) -> HttpResponse:
    """Full page, or just its `list` partial when htmx swaps the table (search, paging).

    One URL answers both, so caches must key on HX-Request: the list pushes its URL into
    the history, and Back must not show a bare table. For the same reason a history
    restore (htmx refetching a page it no longer has cached) gets the whole page.
    """
    if request.htmx and not request.htmx.boosted and not request.htmx.history_restore_request:
        template = f"{template}#list"
    response = render(request, template, context)
    patch_vary_headers(response, ["HX-Request"])
    return response


def confirm_delete(
    request: HttpRequest,
    *,
    what: str,
    delete: Callable[[], object],
    done: str,
    success_url: str,
    cancel: str,
) -> HttpResponse:
    """GET: the confirmation page. POST: call `delete` (a service); its DomainError is shown there."""
    error = None
    if request.method == "POST":
        try:
            delete()
        except DomainError as exc:
            error = exc.message
        else:
            messages.success(request, done)
            return redirect(success_url)
    return render(
        request,
        "voiso_byob/confirm_delete.html",
        {"what": what, "error": error, "cancel": cancel},
        status=400 if error else 200,
    )


# --- access helpers (tenant scoping + role, one per object type) --------------------------


def get_member_for_user(request: HttpRequest, pk: UUID, *, write: bool = False) -> Membership:
    membership = require_membership(request, write=write)
    return get_object_or_404(
        Membership.objects.for_center(membership.contact_center).select_related("user", "extension"),
        pk=pk,
    )


def get_invitation_for_user(request: HttpRequest, pk: UUID, *, write: bool = False) -> Invitation:
    membership = require_membership(request, write=write)
    return get_object_or_404(Invitation.objects.for_center(membership.contact_center).open(), pk=pk)


def get_api_key_for_user(request: HttpRequest, pk: UUID, *, write: bool = False) -> ApiKey:
    membership = require_membership(request, write=write)
    return get_object_or_404(ApiKey.objects.for_center(membership.contact_center), pk=pk)


# --- pages -------------------------------------------------------------------------------


@member_required
@require_http_methods(["GET", "POST"])
def profile(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, read=False)
    center = membership.contact_center
    form = ProfileForm(request.POST or None, initial={"full_name": request.user.full_name})
    if request.method == "POST" and form.is_valid():
        saved = run_service(
            form,
            lambda: services.update_own_profile(
                user=request.user, center=center, full_name=form.cleaned_data["full_name"]
            ),
        )
        if saved is not None:
            messages.success(request, "Your profile is saved.")
            return redirect("profile")
    uri = handoff_uri(membership.extension.digits, center.slug) if membership.extension else None
    return render(
        request,
        "voiso_byob/profile.html",
        {"center": center, "handoff_uri": uri, "form": form},
        status=400 if form.errors else 200,
    )


@require_http_methods(["GET", "POST"])
@member_required
def switch_center(request: HttpRequest) -> HttpResponse:
    """The only way a session changes center: the person picks one (GET lists theirs)."""
    memberships = (
        Membership.objects.filter(user=request.user)
        .select_related("contact_center")
        .order_by("contact_center__name")
    )
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = ""
    if request.method == "GET":
        context = {"choices": memberships, "next": next_url}
        return render(request, "voiso_byob/membership_choose.html", context)
    target = memberships.filter(contact_center__slug=request.POST.get("center", "")).first()
    if target is None:
        messages.error(request, "You are not a member of that contact center.")
        return redirect("switch_center")
    request.session[SESSION_CENTER_KEY] = str(target.contact_center_id)
    messages.success(request, f"Now working in {target.contact_center.name}.")
    return redirect(next_url or "dashboard")


# --- members -----------------------------------------------------------------------------


@member_required
def member_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    members = (
        Membership.objects.for_center(membership.contact_center)
        .select_related("user", "extension")
        .order_by("user__email")
    )
    query = request.GET.get("q", "").strip()
    if query:
        members = members.filter(
            Q(user__email__icontains=query)
            | Q(user__full_name__icontains=query)
            | Q(extension__digits__startswith=query)
        )
    # Bounded: the page shows the first ones by e-mail; the API pages through all of them.
    invitations = list(
        Invitation.objects.for_center(membership.contact_center)
        .open()
        .select_related("invited_by")[: INVITATIONS_SHOWN + 1]
    )
    return render_list(
        request,
        "voiso_byob/membership_list.html",
        {
            "page": paginate(request, members),
            "q": query,
            "center": membership.contact_center,
            "invitations": invitations[:INVITATIONS_SHOWN],
            "has_more_invitations": len(invitations) > INVITATIONS_SHOWN,
        },
    )


@member_required
@require_http_methods(["GET", "POST"])
def member_create(request: HttpRequest) -> HttpResponse:
    """Adding someone is inviting them: the page answers the same whether the address has an account."""
    membership = require_membership(request, write=True)
    form = MemberInviteForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        sent = run_service(
            form,
            lambda: services.invite_member(
                center=membership.contact_center,
                email=form.cleaned_data["email"],
                role=form.cleaned_data["role"],
                by=request.user,
                portal_url=services.portal_url_for(request),
            ),
        )
        if sent is not None:
            invitation, _ = sent
            messages.success(request, _invitation_sent(invitation))
            return redirect("member_list")
    return render(request, "voiso_byob/membership_form.html", {"form": form, "creating": True})


def _invitation_sent(invitation: Invitation) -> str:
    return (
        f"Invitation sent to {invitation.email} as {invitation.get_role_display()}. They join when "
        f"they accept it (the link works for {settings.INVITATION_DAYS} days)."
    )


@require_POST
@member_required
def invitation_resend(request: HttpRequest, pk: UUID) -> HttpResponse:
    invitation = get_invitation_for_user(request, pk, write=True)
    try:
        invitation = services.resend_invitation(
            invitation=invitation, by=request.user, portal_url=services.portal_url_for(request)
        )
    except DomainError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, _invitation_sent(invitation))
    return redirect("member_list")


@require_POST
@member_required
def invitation_revoke(request: HttpRequest, pk: UUID) -> HttpResponse:
    invitation = get_invitation_for_user(request, pk, write=True)
    services.revoke_invitation(invitation=invitation, by=request.user)
    messages.success(request, f"Invitation of {invitation.email} revoked; its link no longer works.")
    return redirect("member_list")


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    """The e-mailed link. An address with an account: sign in as it, then accept. Without one: name
    yourself and choose a password, which creates the account and the membership together. A
    different signed-in account is refused; a session in another center stays there."""
    invitation = Invitation.objects.by_token(token).select_related("contact_center", "invited_by").first()
    if invitation is None:
        return _invitation_page(request, "closed", status=404, reason="This invitation link is not valid.")
    refusal = services.invitation_refusal(invitation)
    if refusal is not None:
        if refusal.code == "invitation_accepted" and request.user == invitation.accepted_by:
            messages.info(request, f"You already joined {invitation.contact_center.name}.")
            return redirect("switch_center")
        return _invitation_page(request, "closed", status=refusal.status_code, reason=refusal.message)
    page = {"invitation": invitation, "center": invitation.contact_center}
    if request.user.is_authenticated and request.user.email != invitation.email:
        return _invitation_page(request, "wrong_account", status=403, **page)
    has_account = User.objects.filter(email=invitation.email).exists()
    if not has_account:
        form = InvitationSignupForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            joined = run_service(
                form,
                lambda: services.create_account_from_invitation(
                    invitation=invitation,
                    full_name=form.cleaned_data["full_name"],
                    password=form.cleaned_data["password"],
                ),
            )
            if joined is not None:
                login(request, joined.user, backend=settings.AUTHENTICATION_BACKENDS[0])
                messages.success(request, f"Welcome to {joined.contact_center.name}.")
                return redirect("dashboard")
        status = 400 if form.errors else 200
        return _invitation_page(request, "signup", status=status, form=form, **page)
    if not request.user.is_authenticated:
        sign_in = f"{reverse('login')}?{urlencode({'next': request.path})}"
        return _invitation_page(request, "sign_in", sign_in=sign_in, **page)
    if request.method == "POST":
        try:
            joined = services.accept_invitation(invitation=invitation, user=request.user)
        except DomainError as exc:
            return _invitation_page(request, "closed", status=exc.status_code, reason=exc.message)
        # The session stays in the center it is working in (issue 15): the person switches.
        messages.success(request, f"You joined {joined.contact_center.name}. Choose it here to work in it.")
        return redirect("switch_center")
    return _invitation_page(request, "accept", **page)


def _invitation_page(request: HttpRequest, step: str, *, status: int = 200, **context: Any) -> HttpResponse:
    response = render(request, "voiso_byob/invitation_accept.html", {"step": step, **context}, status=status)
    # The token is in the URL: keep it out of caches and of other sites' Referer headers. Not
    # "no-referrer": the page's own forms would then post with `Origin: null`, which CSRF refuses.
    response["Cache-Control"] = "no-store"
    response["Referrer-Policy"] = "same-origin"
    return response


@member_required
@require_http_methods(["GET", "POST"])
def member_edit(request: HttpRequest, pk: UUID) -> HttpResponse:
    member = get_member_for_user(request, pk, write=True)
    initial = {
        "full_name": member.user.full_name,
        "role": member.role,
        "extension": member.extension.digits if member.extension else "",
    }
    form = MemberEditForm(request.POST or None, initial=initial, center=member.contact_center)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        updated = run_service(
            form,
            lambda: services.update_member(
                membership=member,
                role=data["role"],
                extension=data["extension"],
                full_name=data["full_name"],
                by=request.user,
            ),
        )
        if updated is not None:
            messages.success(request, f"{member.user.email} updated.")
            if updated.user_id == request.user.pk and not updated.can_read_configuration:
                # They demoted themselves: the members list is no longer theirs to see.
                return redirect("dashboard")
            return redirect("member_list")
    return render(request, "voiso_byob/membership_form.html", {"form": form, "member": member})


@member_required
@require_http_methods(["GET", "POST"])
def member_delete(request: HttpRequest, pk: UUID) -> HttpResponse:
    member = get_member_for_user(request, pk, write=True)
    return confirm_delete(
        request,
        what=f"member {member.user.email}",
        delete=lambda: services.remove_member(membership=member, by=request.user),
        done=f"{member.user.email} removed from the contact center.",
        # Someone who left the center has no members list there any more.
        success_url="dashboard" if member.user_id == request.user.pk else "member_list",
        cancel="member_list",
    )


# --- API keys ----------------------------------------------------------------------------


@member_required
def api_key_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    keys = ApiKey.objects.for_center(membership.contact_center).select_related("created_by")
    return render_list(request, "voiso_byob/apikey_list.html", {"page": paginate(request, keys)})


@member_required
@require_http_methods(["GET", "POST"])
def api_key_create(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request, write=True)
    form = ApiKeyForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        result = run_service(
            form,
            lambda: services.create_api_key(
                center=membership.contact_center,
                name=form.cleaned_data["name"],
                scope=form.cleaned_data["scope"],
                by=request.user,
            ),
        )
        if result is not None:
            key, raw = result
            # Shown once, in this response only; never stored, never shown again.
            response = render(request, "voiso_byob/apikey_created.html", {"key": key, "raw_key": raw})
            response["Cache-Control"] = "no-store"
            return response
    return render(request, "voiso_byob/apikey_form.html", {"form": form})


@require_POST
@member_required
def api_key_revoke(request: HttpRequest, pk: UUID) -> HttpResponse:
    key = get_api_key_for_user(request, pk, write=True)
    services.revoke_api_key(key=key, by=request.user)
    messages.success(request, f"API key {key.name} revoked.")
    return redirect("api_key_list")


# --- audit log ---------------------------------------------------------------------------


@member_required
def audit_list(request: HttpRequest) -> HttpResponse:
    membership = require_membership(request)
    events = AuditEvent.objects.for_center(membership.contact_center)
    action = request.GET.get("action", "").strip()
    if action:
        events = events.filter(action__startswith=action)
    page = paginate(request, events)
    # Queue events recorded before the audit snapshot named people stored membership ids: show
    # those as the member's email (ids of people since removed stay as they are).
    values = set().union(*(event.changed_values() for event in page.object_list))
    ids = [value for value in values if _is_uuid(value)]
    names = {
        str(pk): email
        for pk, email in Membership.objects.filter(
            contact_center=membership.contact_center, pk__in=ids
        ).values_list("pk", "user__email")
    }
    for event in page.object_list:
        event.lines = event.change_lines(names)
    return render_list(request, "voiso_byob/auditevent_list.html", {"page": page, "action": action})


def _is_uuid(value: str) -> bool:
    try:
        UUID(value)
    except ValueError:
        return False
    return True


class LoginView(auth_views.LoginView):
    """Django's sign-in page, answering 429 while the sign-in throttle holds (see login_throttle)."""

    form_class = ThrottledAuthenticationForm
    redirect_authenticated_user = True

    def form_invalid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.lock is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.lock.retry_after)
        return response
