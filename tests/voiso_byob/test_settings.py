"""The settings module starts (or refuses to) according to the environment."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FERNET = "NxYoPCWmlS2EuVI3ioKy7tXeG3_sQoOKoF5W5xzPIWc="


def run_django(args: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if k
        not in {
            "SECRET_KEY",
            "DEBUG",
            "SECURE_SSL_REDIRECT",
            "SECURE_COOKIES",
            "ALLOWED_HOSTS",
            "STATIC_NO_MANIFEST",
            "REDIS_URL",
            "DATABASE_URL",
            "FIELD_ENCRYPTION_KEYS",
        }
    }
    clean.update(env)
    clean["DJANGO_SETTINGS_MODULE"] = "voiso_byob.settings"
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )


def settings_value(expr: str, **env: str) -> str:
    code = f"from django.conf import settings; print({expr})"
    result = run_django(["shell", "--no-imports", "-c", code], **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_refuses_to_start_without_secret_key_in_production_mode() -> None:
    result = run_django(["check"], DEBUG="false")
    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_debug_mode_has_a_development_secret_key() -> None:
    assert settings_value("bool(settings.SECRET_KEY)", DEBUG="true") == "True"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("false", "False"),
        ("False", "False"),
        ("0", "False"),
        ("no", "False"),
        ("off", "False"),
        ("", "False"),
        ("true", "True"),
        ("1", "True"),
        ("on", "True"),
    ],
)
def test_debug_boolean_parsing(raw: str, expected: str) -> None:
    assert settings_value("settings.DEBUG", DEBUG=raw, SECRET_KEY="x" * 50) == expected


def test_database_and_channel_layer_come_from_the_environment() -> None:
    out = settings_value(
        "settings.DATABASES['default']['ENGINE'], settings.CHANNEL_LAYERS['default']['BACKEND']",
        DEBUG="true",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/whatever",
        REDIS_URL="redis://127.0.0.1:6379/3",
    )
    assert "postgresql" in out and "RedisChannelLayer" in out
    out = settings_value(
        "settings.DATABASES['default']['ENGINE'], settings.CHANNEL_LAYERS['default']['BACKEND']", DEBUG="true"
    )
    assert "sqlite3" in out and "InMemoryChannelLayer" in out


def test_sip_domain_suffix_default_and_override() -> None:
    assert settings_value("settings.SIP_DOMAIN_SUFFIX", DEBUG="true") == "voiso.com"
    assert (
        settings_value("settings.SIP_DOMAIN_SUFFIX", DEBUG="true", SIP_DOMAIN_SUFFIX="Example.NET")
        == "example.net"
    )


def test_check_deploy_passes_with_production_settings() -> None:
    result = run_django(
        ["check", "--deploy", "--fail-level", "WARNING"],
        DEBUG="false",
        SECRET_KEY="prod-" + "k3y" * 20 + "-not-a-real-one-but-long-and-random-enough",
        ALLOWED_HOSTS="portal.example.com",
        FIELD_ENCRYPTION_KEYS=FERNET,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("entry", ["voiso_byob.wsgi", "voiso_byob.asgi"])
def test_server_entry_points_load_every_view_and_freeze_the_heap(entry: str) -> None:
    """voiso_byob.heap: what the application loaded is out of the collector's sight in each server."""
    code = (
        "import gc, sys; before = gc.get_freeze_count(); "
        f"import {entry}; "
        "print(before, gc.get_freeze_count(), 'reporting.api' in sys.modules, 'routing.views' in sys.modules,"
        " gc.get_threshold()[0])"
    )
    result = run_django(["shell", "--no-imports", "-c", code], DEBUG="true")
    assert result.returncode == 0, result.stderr
    before, after, *loaded, young = result.stdout.split()
    assert int(before) == 0 and int(after) > 50_000  # Django, the models and the views
    assert loaded == ["True", "True"]  # views are imported before the freeze, not on the first request
    assert int(young) == 10_000  # young collections less often


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"DEBUG": "true"}, "django.core.mail.backends.console.EmailBackend None"),
        # Production never prints invitation links (they carry tokens) into the logs.
        ({"SECRET_KEY": "x" * 50}, "django.core.mail.backends.smtp.EmailBackend localhost"),
        (
            {"SECRET_KEY": "x" * 50, "EMAIL_URL": "smtp+tls://u:p@smtp.example.com:587"},
            "django.core.mail.backends.smtp.EmailBackend smtp.example.com",
        ),
    ],
    ids=["debug", "production", "email-url"],
)
def test_email_goes_where_the_environment_says(env: dict[str, str], expected: str) -> None:
    clean_env = {"EMAIL_URL": "", **env} if "EMAIL_URL" not in env else env
    assert (
        settings_value("settings.EMAIL_BACKEND, getattr(settings, 'EMAIL_HOST', None)", **clean_env)
        == expected
    )


def test_api_rate_limits_come_from_the_environment_per_scope() -> None:
    value = settings_value(
        "sorted(settings.API_RATE_LIMITS.items())", DEBUG="true", API_RATE_LIMITS="telephony=500:900,read=5"
    )
    # A scope not named keeps its default; BURST defaults to twice the rate.
    assert value == "[('admin', (50.0, 100)), ('read', (5.0, 10)), ('telephony', (500.0, 900))]"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("reads=5", "unknown scope"),
        ("read=fast", "could not convert"),
        ("read=-1", "0 or more"),
        ("read=5:0", "at least 1"),
    ],
)
def test_a_bad_api_rate_limit_stops_the_process(text: str, reason: str) -> None:
    result = run_django(["check"], DEBUG="true", API_RATE_LIMITS=text)
    assert result.returncode != 0
    assert f"API_RATE_LIMITS: {text}" in result.stderr
    assert reason in result.stderr
