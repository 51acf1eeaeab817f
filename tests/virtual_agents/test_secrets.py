"""Provider credentials are encrypted at rest, rotatable, and never shown anywhere."""

from __future__ import annotations

import logging
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from virtual_agents.models import Provider, ProviderIntegration
from voiso_byob.crypto import decrypt, encrypt, mask

SECRET = "sk_live_0123456789abcdefSECRET"


def raw_column(integration: ProviderIntegration) -> str:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT credentials FROM virtual_agents_providerintegration WHERE id = %s",
            [integration.pk.hex if connection.vendor == "sqlite" else integration.pk],
        )
        return cursor.fetchone()[0]


@pytest.fixture
def integration(acme) -> ProviderIntegration:
    return ProviderIntegration.objects.create(
        contact_center=acme, provider=Provider.VAPI, label="Vapi", credentials={"api_key": SECRET}
    )


def test_credentials_are_ciphertext_in_the_database(integration: ProviderIntegration) -> None:
    stored = raw_column(integration)
    assert SECRET not in stored and "api_key" not in stored
    integration.refresh_from_db()
    assert integration.credentials == {"api_key": SECRET}


def test_rotation_re_encrypts_under_the_newest_key(settings, integration: ProviderIntegration) -> None:
    old_key = settings.FIELD_ENCRYPTION_KEYS[0]
    old_token = raw_column(integration)
    new_key = Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]

    # Data written under the old key is still readable with both keys configured.
    integration.refresh_from_db()
    assert integration.credentials == {"api_key": SECRET}

    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "virtual_agents.ProviderIntegration: 1 row(s) re-encrypted" in out.getvalue()
    new_token = raw_column(integration)
    assert new_token != old_token
    assert Fernet(new_key.encode()).decrypt(new_token.encode())  # readable with the new key alone

    # The old key can now be dropped.
    settings.FIELD_ENCRYPTION_KEYS = [new_key]
    integration.refresh_from_db()
    assert integration.credentials == {"api_key": SECRET}


def test_a_secret_under_an_unknown_key_is_a_clear_error_without_the_token(settings) -> None:
    token = encrypt("hello")
    settings.FIELD_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(ImproperlyConfigured) as caught:
        decrypt(token)
    assert token not in str(caught.value)


def test_production_refuses_to_run_without_keys(settings) -> None:
    settings.FIELD_ENCRYPTION_KEYS = []
    settings.DEBUG = False
    with pytest.raises(ImproperlyConfigured, match="FIELD_ENCRYPTION_KEYS"):
        encrypt("x")
    settings.DEBUG = True
    assert decrypt(encrypt("x")) == "x"


def test_mask_shows_only_a_tail() -> None:
    assert mask(SECRET) == "…CRET"
    assert mask("short") == "…"


def test_dumpdata_carries_ciphertext_only(integration: ProviderIntegration, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    out = StringIO()
    call_command("dumpdata", "virtual_agents.providerintegration", stdout=out)
    assert SECRET not in out.getvalue()
    assert SECRET not in caplog.text
