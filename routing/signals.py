"""Saves and deletes that change a telephony answer bump the telephony generation.

Signals rather than calls in each service, so changes made in Django admin count too. The
`.update()` writes that matter call `bump_routing_revision`, which bumps it as well.
"""

from __future__ import annotations

from typing import Any

from django.db.models.signals import post_delete, post_save

from routing.models import Flow, PhoneNumber, Queue
from virtual_agents.models import VirtualAgent
from voiso_byob.cache import bump_telephony_generation
from voiso_byob.models import ApiKey, ContactCenter, Extension, Membership, User

# Writes of these fields alone change no answer (and happen on every login / key use).
_BOOKKEEPING = {"last_login", "last_used_at", "last_verified_at", "last_error"}


def _changed(sender: Any, update_fields: Any = None, **kwargs: Any) -> None:
    if update_fields and set(update_fields) <= _BOOKKEEPING:
        return
    bump_telephony_generation()


def _deleted(sender: Any, **kwargs: Any) -> None:
    bump_telephony_generation()


def connect() -> None:
    for model in (ApiKey, ContactCenter, Extension, Membership, User, PhoneNumber, Flow, Queue, VirtualAgent):
        uid = f"telephony-generation-{model.__name__}"
        post_save.connect(_changed, sender=model, dispatch_uid=f"{uid}-save")
        post_delete.connect(_deleted, sender=model, dispatch_uid=f"{uid}-delete")
