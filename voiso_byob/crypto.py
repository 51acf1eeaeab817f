"""Secrets at rest: Fernet tokens under keys from FIELD_ENCRYPTION_KEYS (newest first).

MultiFernet decrypts with any listed key and encrypts with the first, so a key is
rotated by putting a new one in front and running `manage.py rotate_encryption_keys`.
Encrypted columns cannot be filtered on; they are never logged or serialized.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


def _keys() -> list[bytes]:
    keys = [key.strip().encode() for key in settings.FIELD_ENCRYPTION_KEYS if key.strip()]
    if keys:
        return keys
    if settings.DEBUG:
        # Development only: a key derived from the dev SECRET_KEY, so `make run` needs no setup.
        return [base64.urlsafe_b64encode(hashlib.sha256(settings.SECRET_KEY.encode()).digest())]
    raise ImproperlyConfigured(
        "FIELD_ENCRYPTION_KEYS must be set (comma-separated Fernet keys, newest first)."
    )


def fernet() -> MultiFernet:
    try:
        return MultiFernet([Fernet(key) for key in _keys()])
    except ValueError as exc:
        raise ImproperlyConfigured(f"FIELD_ENCRYPTION_KEYS holds an invalid Fernet key: {exc}") from None


def encrypt(plaintext: str) -> str:
    return fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        # Never echo the token: it is the secret's ciphertext.
        raise ImproperlyConfigured(
            "A stored secret cannot be decrypted with any key in FIELD_ENCRYPTION_KEYS."
        ) from None


def mask(secret: str) -> str:
    """A hint an administrator can recognise a secret by, e.g. '…a1f9'."""
    return f"…{secret[-4:]}" if len(secret) >= 12 else "…"


class EncryptedJSONField(models.TextField):
    """A JSON object stored as one Fernet token."""

    description = "JSON encrypted at rest"

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return {}
        return json.loads(decrypt(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str:
        return encrypt(json.dumps(value or {}, sort_keys=True))

    def value_to_string(self, obj: models.Model) -> str:
        # Serialization (dumpdata) carries ciphertext, never the secret.
        return self.get_prep_value(self.value_from_object(obj))
