"""A center's dialer policy, made on first use."""

from __future__ import annotations

from campaigns.models import (
    DialerPolicy,
)
from voiso_byob.models import ContactCenter


def dialer_policy(center: ContactCenter) -> DialerPolicy:
    policy, _ = DialerPolicy.objects.get_or_create(contact_center=center)
    return policy
