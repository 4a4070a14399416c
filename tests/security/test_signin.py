"""Sign-in: guessing stops within 10 attempts per account; the owner still gets in."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"
OWNER_IP, ATTACKER_IP, NEW_IP = "192.0.2.10", "198.51.100.66", "203.0.113.5"


@pytest.fixture
def ada():
    return get_user_model().objects.create_user("ada", password=PASSWORD, is_staff=True)


def sign_in(ip: str, password: str, username: str = "ada", path: str = "/accounts/login/"):
    client = Client(REMOTE_ADDR=ip)
    return client.post(path, {"username": username, "password": password})


def signed_in(response) -> bool:
    return response.status_code == 302


def test_guessing_stops_within_ten_attempts_and_the_owner_still_signs_in(ada):
    """Before: 30 wrong passwords and then the right one worked."""
    assert signed_in(sign_in(OWNER_IP, PASSWORD))  # the owner's usual address
    guesses = [sign_in(ATTACKER_IP, f"guess-{n}") for n in range(10)]
    assert not any(signed_in(r) for r in guesses)
    right = sign_in(ATTACKER_IP, PASSWORD)  # even the right password no longer works there
    assert not signed_in(right) and b"Too many failed sign-ins" in right.content
    assert not signed_in(sign_in(NEW_IP, PASSWORD))  # nor from addresses it never used
    assert signed_in(sign_in(OWNER_IP, PASSWORD))  # but the owner gets in from theirs


def test_the_admin_sign_in_is_throttled_the_same_way(ada):
    for n in range(10):
        sign_in(ATTACKER_IP, f"guess-{n}", path="/admin/login/")
    right = sign_in(ATTACKER_IP, PASSWORD, path="/admin/login/")
    assert not signed_in(right) and b"Too many failed sign-ins" in right.content


def test_one_address_guessing_many_accounts_is_stopped(ada, settings):
    settings.LOGIN_FAILURES_PER_IP = 5
    for n in range(5):
        sign_in(ATTACKER_IP, "x", username=f"user{n}")
    assert not signed_in(sign_in(ATTACKER_IP, PASSWORD))  # ada's right password, that address
    assert signed_in(sign_in(NEW_IP, PASSWORD))  # ada elsewhere is unaffected


def test_the_wait_ends_with_the_window(ada, settings, monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    for n in range(10):
        sign_in(ATTACKER_IP, f"guess-{n}")
    later = timezone.now() + timedelta(seconds=2 * settings.LOGIN_WINDOW_SECONDS + 1)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert signed_in(sign_in(NEW_IP, PASSWORD))


@pytest.mark.parametrize("weak", ["1", "password", "12345678", "abc"])
def test_weak_passwords_are_refused(ada, weak):
    """Before: AUTH_PASSWORD_VALIDATORS was empty and the password "1" was accepted."""
    with pytest.raises(ValidationError):
        validate_password(weak, user=ada)
    validate_password(PASSWORD, user=ada)


def test_old_counts_are_pruned_and_recent_ones_kept():
    from datetime import timedelta

    from django.utils import timezone

    from assistant.models import Usage
    from assistant.quotas import usage_prune

    now = timezone.now()
    Usage.objects.create(scope="chat", key="ip:a", window_start=now - timedelta(days=91), count=1)
    Usage.objects.create(scope="chat", key="ip:b", window_start=now - timedelta(days=1), count=1)
    assert usage_prune() == 1
    assert list(Usage.objects.values_list("key", flat=True)) == ["ip:b"]


class CountingHasher:
    """A password hasher (Django's pluggable API) that notes the failure count it sees."""

    algorithm = "counting"
    seen: list[int] = []

    def verify(self, password: str, encoded: str) -> bool:
        from assistant.quotas import usage_count

        CountingHasher.seen.append(
            usage_count(scope="signin-failed", key="account:carol", window_seconds=900)
        )
        return encoded == f"counting$${password}"

    def encode(self, password: str, salt: str) -> str:
        return f"counting$${password}"

    def salt(self) -> str:
        return ""

    def must_update(self, encoded: str) -> bool:
        return False

    def harden_runtime(self, password: str, encoded: str) -> None:
        pass


def test_an_attempt_is_counted_before_its_password_is_checked(settings):
    """Parallel guesses queue on the counter: each is counted before the (slow) password
    check, so a burst in flight can't all pass a check made before any was recorded."""
    settings.PASSWORD_HASHERS = [f"{__name__}.CountingHasher"]
    get_user_model().objects.create(username="carol", password="counting$$right")
    CountingHasher.seen = []
    for n in range(3):
        sign_in(ATTACKER_IP, f"wrong-{n}", username="carol")
    assert CountingHasher.seen == [1, 2, 3]  # during the check, the attempt already counts
    assert signed_in(sign_in(OWNER_IP, "right", username="carol"))
