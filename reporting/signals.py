"""Membership and account changes reach the user's open live sockets, which check again.

Signals rather than calls in each service, so changes made in Django admin count too. The
message goes after the commit: the socket must read the new role, not the old one.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from reporting.live import access_changed
from voiso_byob.models import Membership, User

# Writes of these fields alone change no access (and happen on every login).
_BOOKKEEPING = {"last_login"}


def _membership_changed(sender: Any, instance: Membership, **kwargs: Any) -> None:
    if kwargs.get("created"):  # a new membership takes nothing away
        return
    user_id = instance.user_id
    transaction.on_commit(lambda: access_changed(user_id))


def _user_changed(sender: Any, instance: User, update_fields: Any = None, **kwargs: Any) -> None:
    if kwargs.get("created") or (update_fields and set(update_fields) <= _BOOKKEEPING):
        return
    user_id = instance.pk
    transaction.on_commit(lambda: access_changed(user_id))


def connect() -> None:
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="live-access-membership-save")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="live-access-membership-delete")
    post_save.connect(_user_changed, sender=User, dispatch_uid="live-access-user-save")
    post_delete.connect(_user_changed, sender=User, dispatch_uid="live-access-user-delete")
