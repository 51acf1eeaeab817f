"""Small factories over the real services, so test data obeys the same rules as production."""

from __future__ import annotations

import itertools

from routing.models import Queue
from routing.services import create_queue
from voiso_byob.models import ApiKey, ContactCenter, Extension, Membership, Role
from voiso_byob.services import add_member, create_api_key, create_contact_center

PASSWORD = "correct-horse-battery-42"
_seq = itertools.count(1)


def make_center(slug: str | None = None, **kwargs: object) -> ContactCenter:
    slug = slug or f"center{next(_seq)}"
    return create_contact_center(
        slug=slug,
        name=kwargs.pop("name", slug.title()),  # type: ignore[arg-type]
        admin_email=kwargs.pop("admin_email", f"admin@{slug}.example"),  # type: ignore[arg-type]
        admin_password=PASSWORD,
        by="tests",
        **kwargs,  # type: ignore[arg-type]
    )


def make_member(
    center: ContactCenter,
    role: str = Role.AGENT,
    *,
    email: str | None = None,
    extension: str | None = None,
    password: str | None = PASSWORD,
) -> Membership:
    """password=None adds an existing account (a person already in another center)."""
    return add_member(
        center=center,
        email=email or f"user{next(_seq)}@{center.slug}.example",
        role=role,
        extension=extension,
        password=password,
        by="tests",
    )


def make_queue(
    center: ContactCenter, name: str | None = None, extension: str | None = None, **kwargs: object
) -> Queue:
    n = next(_seq)
    if extension is None:
        # A free one: the counter is shared by the whole run, and after a few hundred queues it
        # would land on a fixture's own extension (Sales has 4323).
        taken = set(Extension.objects.filter(contact_center=center).values_list("digits", flat=True))
        while (
            extension := f"{4000 + n}"[-center.extension_length :].rjust(center.extension_length, "4")
        ) in taken:
            n = next(_seq)
    return create_queue(
        center=center,
        by="tests",
        name=name or f"Queue {n}",
        extension=extension,
        **kwargs,  # type: ignore[arg-type]
    )


def make_api_key(center: ContactCenter, scope: str) -> tuple[ApiKey, str]:
    return create_api_key(center=center, name=f"{scope} key", scope=scope, by="tests")
