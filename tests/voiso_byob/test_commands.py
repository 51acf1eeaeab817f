from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from routing.models import Queue
from voiso_byob.models import (
    ApiKey,
    AuditEvent,
    ContactCenter,
    Extension,
    Membership,
    Role,
    User,
    hash_api_key,
)


def run(*args: str) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
def test_create_contact_center() -> None:
    out = run(
        "create_contact_center",
        "initech",
        "--name",
        "Initech",
        "--admin-email",
        "Boss@Initech.example",
        "--admin-password",
        "tps-reports-2026",
        "--enable-byob",
    )
    center = ContactCenter.objects.get(slug="initech")
    assert center.byob_enabled and center.name == "Initech"
    assert "initech.voiso.com" in out
    admin = Membership.objects.get(contact_center=center)
    assert admin.role == Role.ADMINISTRATOR
    assert admin.user.email == "boss@initech.example"
    assert admin.user.check_password("tps-reports-2026")
    assert AuditEvent.objects.filter(contact_center=center, action="contact_center.created").exists()


@pytest.mark.django_db
@pytest.mark.parametrize("slug", ["Not A Label", "-bad", "a.b", "x" * 64])
def test_create_contact_center_refuses_bad_slugs(slug: str) -> None:
    with pytest.raises(CommandError):
        run(
            "create_contact_center",
            slug,
            "--name",
            "X",
            "--admin-email",
            "a@x.example",
            "--admin-password",
            "pw-long-1234",
        )
    assert not ContactCenter.objects.exists()


@pytest.mark.django_db
def test_create_contact_center_refuses_duplicate_slug() -> None:
    run(
        "create_contact_center",
        "dup",
        "--name",
        "X",
        "--admin-email",
        "a@x.example",
        "--admin-password",
        "pw-long-1234",
    )
    with pytest.raises(CommandError, match="slug_taken"):
        run(
            "create_contact_center",
            "dup",
            "--name",
            "Y",
            "--admin-email",
            "b@x.example",
            "--admin-password",
            "pw-long-1234",
        )
    assert ContactCenter.objects.count() == 1


@pytest.mark.django_db
def test_create_api_key_prints_only_the_key(acme) -> None:
    out = run("create_api_key", "acme", "--name", "Kamailio", "--scope", "telephony")
    raw = out.strip()
    assert "\n" not in raw and raw.startswith("vbk_")
    key = ApiKey.objects.get(name="Kamailio")
    assert key.scope == "telephony" and key.contact_center == acme
    assert key.hashed_key == hash_api_key(raw) and raw not in key.hashed_key


@pytest.mark.django_db
def test_create_api_key_unknown_center() -> None:
    with pytest.raises(CommandError, match="No contact center"):
        run("create_api_key", "nope", "--name", "x", "--scope", "read")


@pytest.mark.django_db
def test_seed_demo_is_idempotent() -> None:
    run("seed_demo")
    counts = lambda: (  # noqa: E731
        ContactCenter.objects.count(),
        User.objects.count(),
        Membership.objects.count(),
        Extension.objects.count(),
        Queue.objects.count(),
        AuditEvent.objects.count(),
    )
    first = counts()
    run("seed_demo")
    assert counts() == first
    center = ContactCenter.objects.get(slug="acme")
    assert center.byob_enabled
    admin = User.objects.get(email="admin@acme.example")
    supervisor = User.objects.get(email="supervisor@acme.example")
    assert admin.check_password("demo-pass-1234") and supervisor.check_password("demo-pass-1234")
    assert Membership.objects.get(user=supervisor).role == Role.SUPERVISOR
    sales = Queue.objects.get(contact_center=center, name="Sales")
    assert sales.extension.digits == "4323" and sales.members.count() == 2
