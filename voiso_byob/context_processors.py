from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from voiso_byob.access import current_membership
from voiso_byob.models import Membership


def portal(request: HttpRequest) -> dict[str, Any]:
    """Current membership and the centers to switch to, for the base layout's navigation."""
    if not getattr(request, "user", None) or not request.user.is_authenticated:
        return {}
    membership = current_membership(request)
    others = (
        Membership.objects.filter(user=request.user)
        .exclude(pk=membership.pk if membership else None)
        .select_related("contact_center")
        .order_by("contact_center__name")
        if membership
        else Membership.objects.none()
    )
    return {"membership": membership, "other_memberships": others}
