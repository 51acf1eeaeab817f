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
    user = request.user
    if not user.is_authenticated:
        return None
    memberships = Membership.objects.filter(user=user).select_related("contact_center", "extension")
    wanted = request.session.get(SESSION_CENTER_KEY)
    if wanted:
        chosen = memberships.filter(contact_center_id=wanted).first()
        if chosen is not None:
            return chosen
    return memberships.order_by("contact_center__name").first()


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
        return view(request, *args, **kwargs)

    return wrapper


def center_of(request: HttpRequest) -> ContactCenter:
    return require_membership(request, read=False).contact_center
