"""Re-encrypt every stored secret under the newest key in FIELD_ENCRYPTION_KEYS."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction

from voiso_byob.crypto import EncryptedJSONField


class Command(BaseCommand):
    help = (
        "Re-encrypt all secrets with the first key of FIELD_ENCRYPTION_KEYS. Put the new key first, keep "
        "the old ones after it, run this, then drop the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        total = 0
        for model in apps.get_models():
            fields = [f.name for f in model._meta.concrete_fields if isinstance(f, EncryptedJSONField)]
            if not fields:
                continue
            count = 0
            with transaction.atomic():
                # Reading decrypts with whichever key matches; saving encrypts with the newest.
                for obj in model._default_manager.select_for_update().only("pk", *fields).iterator():
                    obj.save(update_fields=fields)
                    count += 1
            total += count
            self.stdout.write(f"{model._meta.label}: {count} row(s) re-encrypted")
        self.stdout.write(f"Done: {total} row(s).")
