"""Who may do what, in one place.

Administrators configure; supervisors read configuration, reports and the live
feed; agents see only their profile; staff use Django admin. Tenant scoping is
done by the per-object helpers in each app, which query through the current
contact center, so another center's object is a 404, never a 403.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import TYPE_CHECKING, Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import urlencode
from django_htmx.http import HttpResponseClientRedirect

from voiso_byob.models import Membership

if TYPE_CHECKING:
    from voiso_byob.models import ContactCenter

SESSION_CENTER_KEY = "current_center_id"


def current_membership(request: HttpRequest) -> Membership | None:
    """The signed-in user's membership in the contact center they are working in.

    Cached on the request: pages ask several times, the API hot path never does.
    """
    if not hasattr(request, "_current_membership"):
        request._current_membership = _load_membership(request)  # type: ignore[attr-defined]
    return request._current_membership  # type: ignore[attr-defined]


def _load_membership(request: HttpRequest) -> Membership | None:
    """The membership in the center this session is pinned to; None when it is pinned nowhere.

    A session is pinned at sign-in (pin_center_at_login) when the person has one membership, else
    by their choice (the switch page). It never moves by itself: being added to another center,
    or losing the pinned one, leaves the person to choose. Only a session that was never pinned
    (signed in before pinning existed) is pinned on its first request, and only to a sole membership.
    """
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.filter(user=user).select_related("contact_center", "extension")
    wanted = request.session.get(SESSION_CENTER_KEY)
    if wanted:
        return memberships.filter(contact_center_id=wanted).first()
    sole = list(memberships[:2])
    if len(sole) != 1:
        return None
    request.session[SESSION_CENTER_KEY] = str(sole[0].contact_center_id)
    return sole[0]


def pin_center_at_login(sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
    """user_logged_in: pin the session to the person's only center; with several they choose."""
    centers = list(Membership.objects.filter(user=user).values_list("contact_center_id", flat=True)[:2])
    request.session.pop(SESSION_CENTER_KEY, None)
    if len(centers) == 1:
        request.session[SESSION_CENTER_KEY] = str(centers[0])


def has_unchosen_center(request: HttpRequest) -> bool:
    """Signed in, pinned to no center of theirs, and member of some: they must choose one."""
    return (
        request.user.is_authenticated
        and current_membership(request) is None
        and Membership.objects.filter(user=request.user).exists()
    )


def require_membership(request: HttpRequest, *, write: bool = False, read: bool = True) -> Membership:
    """The current membership if its role allows the access asked for, else PermissionDenied.

    write=True: administrators only. read=True (default): administrators and supervisors.
    read=False, write=False: any member (profile pages).
    """
    membership = current_membership(request)
    if membership is None:
        raise PermissionDenied("You are not a member of any contact center.")
    if write and not membership.can_configure:
        raise PermissionDenied("Only administrators can change configuration.")
    if read and not membership.can_read_configuration:
        raise PermissionDenied("Your role has no access to this page.")
    return membership


def member_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Login required; anonymous users go to the login page (htmx gets a full redirect)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not request.user.is_authenticated:
            htmx = getattr(request, "htmx", None)
            if htmx:
                # Back to the page the user was on, not to the fragment htmx asked for.
                here = htmx.current_url_abs_path or request.get_full_path()
                return HttpResponseClientRedirect(redirect_to_login(here).url)
            return redirect_to_login(request.get_full_path())
        if has_unchosen_center(request) and request.resolver_match.url_name != "switch_center":
            url = f"{reverse('switch_center')}?{urlencode({'next': request.get_full_path()})}"
            return HttpResponseClientRedirect(url) if getattr(request, "htmx", None) else redirect(url)
        return view(request, *args, **kwargs)

    return wrapper


def center_of(request: HttpRequest) -> ContactCenter:
    return require_membership(request, read=False).contact_center
