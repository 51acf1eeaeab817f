"""Sign-in throttling: per account and per address, a clear answer, logged, and a cool-off."""

from __future__ import annotations

import logging
import time

import pytest
import time_machine
from django.test import Client

from tests.conftest import Persona
from tests.factories import PASSWORD
from voiso_byob.models import User

LOGIN = "/accounts/login/"
ADMIN_LOGIN = "/admin/login/"


def sign_in(client: Client, email: str, password: str, address: str = "203.0.113.7"):
    return client.post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=address)


def test_fifty_wrong_passwords_in_twenty_seconds_are_not_all_tried(admin: Persona, caplog) -> None:
    email = admin.user.email
    client = Client()
    caplog.set_level(logging.WARNING, logger="voiso_byob.login")
    answers = []
    with time_machine.travel(time.time(), tick=False) as clock:
        for _ in range(50):
            answers.append(sign_in(client, email, "wrong-password"))
            clock.shift(0.4)  # 50 attempts in 20 s
        assert [a.status_code for a in answers[:4]] == [200] * 4
        assert all(b"correct email and password" in a.content for a in answers[:4])
        # The 5th failure locks the account; the 45 after it are refused unchecked.
        assert [a.status_code for a in answers[4:]] == [429] * 46
        assert b"Too many failed sign-ins for this account" in answers[-1].content
        assert int(answers[-1]["Retry-After"]) > 0
        # The rightful password is refused too while the lock holds, and nobody was signed in.
        assert sign_in(client, email, PASSWORD).status_code == 429
        assert "_auth_user_id" not in client.session
        assert [r.getMessage() for r in caplog.records if "locked" in r.getMessage()]

        # After the cool-off the owner signs in.
        clock.shift(15 * 60 + 1)
        response = sign_in(client, email, PASSWORD)
        assert response.status_code == 302 and client.session["_auth_user_id"] == str(admin.user.pk)


def test_the_lock_is_per_account(admin: Persona, supervisor: Persona) -> None:
    for _ in range(5):
        sign_in(Client(), admin.user.email, "wrong")
    assert sign_in(Client(), admin.user.email, PASSWORD).status_code == 429
    assert sign_in(Client(), supervisor.user.email, PASSWORD, address="198.51.100.9").status_code == 302


def test_a_success_forgets_the_accounts_failures(admin: Persona) -> None:
    for _ in range(4):
        sign_in(Client(), admin.user.email, "wrong")
    assert sign_in(Client(), admin.user.email, PASSWORD).status_code == 302
    for _ in range(4):
        assert sign_in(Client(), admin.user.email, "wrong").status_code == 200
    assert sign_in(Client(), admin.user.email, PASSWORD).status_code == 302


def test_unknown_addresses_are_locked_like_real_ones(db) -> None:
    answers = [sign_in(Client(), "nobody@nowhere.example", "wrong").status_code for _ in range(6)]
    assert answers == [200, 200, 200, 200, 429, 429]


def test_one_address_guessing_across_accounts_is_locked(admin: Persona, supervisor: Persona) -> None:
    attacker = "192.0.2.66"
    answers = [
        sign_in(Client(), f"guess{i}@acme.example", "wrong", address=attacker).status_code for i in range(31)
    ]
    assert answers[:29] == [200] * 29 and answers[29:] == [429, 429]
    locked = sign_in(Client(), supervisor.user.email, PASSWORD, address=attacker)
    assert locked.status_code == 429 and b"from your network" in locked.content
    # The same account from elsewhere is not affected.
    assert sign_in(Client(), supervisor.user.email, PASSWORD, address="198.51.100.9").status_code == 302


def test_django_admin_sign_in_is_throttled_too(db) -> None:
    User.objects.create_superuser("staff@acme.example", PASSWORD)
    client = Client()
    for _ in range(5):
        client.post(
            ADMIN_LOGIN, {"username": "staff@acme.example", "password": "wrong"}, REMOTE_ADDR="10.1.1.1"
        )
    response = client.post(
        ADMIN_LOGIN, {"username": "staff@acme.example", "password": PASSWORD}, REMOTE_ADDR="10.1.1.1"
    )
    assert response.status_code == 200 and b"Too many failed sign-ins" in response.content
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("limit", [2])
def test_limits_come_from_settings(settings, admin: Persona, limit: int) -> None:
    settings.LOGIN_FAILURES_PER_ACCOUNT = limit
    answers = [sign_in(Client(), admin.user.email, "wrong").status_code for _ in range(3)]
    assert answers == [200, 429, 429]


@pytest.fixture
def cache_down(monkeypatch) -> None:
    """The shared cache refuses every call, as Redis does while stopped; the fallback starts empty."""
    from django.core.cache import cache

    from voiso_byob import login_throttle

    def down(*args: object, **kwargs: object) -> None:
        raise ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    for method in ("get_many", "add", "incr", "set", "delete"):
        monkeypatch.setattr(cache, method, down)
    login_throttle._fallback.clear()
    yield
    login_throttle._fallback.clear()


def test_with_the_cache_down_the_owner_still_signs_in(admin: Persona, cache_down) -> None:
    for _ in range(4):  # under the account's limit
        assert sign_in(Client(), admin.user.email, "wrong").status_code == 200
    response = sign_in(Client(), admin.user.email, PASSWORD)
    assert response.status_code == 302  # passwords are still checked, and the owner gets in


def test_with_the_cache_down_failures_are_still_counted_by_the_worker(admin: Persona, cache_down) -> None:
    # Taking Redis down must not open the door to unlimited guessing: each worker keeps counting.
    answers = [sign_in(Client(), admin.user.email, "wrong").status_code for _ in range(6)]
    assert answers == [200] * 4 + [429] * 2
    assert sign_in(Client(), admin.user.email, PASSWORD).status_code == 429
