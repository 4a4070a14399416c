"""Sign-in throttling: password guessing stops within a few attempts, the owner gets in.

Failures are counted per address and per account over LOGIN_WINDOW_SECONDS:

- an address with LOGIN_FAILURES_PER_IP failures (against any accounts) waits;
- an account with LOGIN_FAILURES_PER_ACCOUNT failures waits, but only for addresses it
  has never signed in from: its owner, at an address that worked before, still gets in;
- even at such an address, that many failures from it make it wait too.

Waiting ends with the window (minutes, not an account lock an attacker can keep up).
Every way in checks it, because it runs in the authentication backend.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.forms import AuthenticationForm
from django.core.exceptions import PermissionDenied, ValidationError

from .quotas import (
    KEEP_DAYS,
    client_ip,
    usage_add,
    usage_clear,
    usage_count,
    usage_seen,
    usage_undo,
)


class SigninThrottled(PermissionDenied):
    def __init__(self, wait_minutes: int) -> None:
        super().__init__(
            f"Too many failed sign-ins. Please try again in {wait_minutes} minutes, or "
            "from a device you have signed in from before."
        )


def _keys(username: str, ip: str) -> tuple[str, str, str]:
    account = username.strip().lower()
    return f"ip:{ip}", f"account:{account}", f"account:{account}|ip:{ip}"


def signin_check(*, username: str, ip: str, pending: int = 0) -> None:
    """Raise SigninThrottled when this attempt must wait (before the password is checked).

    `pending` is 1 once the attempt itself has been counted (see signin_attempt).
    """
    window = settings.LOGIN_WINDOW_SECONDS
    by_ip, by_account, by_pair = _keys(username, ip)

    def over(key: str, limit: int) -> bool:
        return usage_count(scope="signin-failed", key=key, window_seconds=window) - pending >= limit

    account_limit = settings.LOGIN_FAILURES_PER_ACCOUNT
    if (
        over(by_ip, settings.LOGIN_FAILURES_PER_IP)
        or over(by_pair, account_limit)
        or (
            over(by_account, account_limit)
            and not usage_seen(scope="signin-ok", key=by_pair, days=KEEP_DAYS)
        )
    ):
        raise SigninThrottled(max(1, 2 * window // 60))


def signin_attempt(*, username: str, ip: str) -> None:
    """Count an attempt as a failure before its password is checked, then check the limits.

    Counting first makes parallel guesses queue on the counters: each sees the ones
    before it, so a burst can't slip more than the limit past the check.
    """
    for key in _keys(username, ip):
        usage_add(scope="signin-failed", key=key, window_seconds=settings.LOGIN_WINDOW_SECONDS)
    signin_check(username=username, ip=ip, pending=1)


def signin_succeeded(*, username: str, ip: str) -> None:
    """The attempt was the right password: it was no failure, and the address is known."""
    by_ip, by_account, by_pair = _keys(username, ip)
    window = settings.LOGIN_WINDOW_SECONDS
    for key in (by_ip, by_account):
        usage_undo(scope="signin-failed", key=key, window_seconds=window)
    usage_clear(scope="signin-failed", key=by_pair)
    usage_add(scope="signin-ok", key=by_pair, window_seconds=24 * 3600)


def signin_forgive(*, username: str) -> None:
    """The owner proved who they are (a reset link from their mailbox): failures against
    the account stop counting, so they get in from a new device; each address's stay."""
    usage_clear(scope="signin-failed", key=_keys(username, "")[1])


class ThrottledFormMixin:
    """Sign-in forms say why an attempt waits, instead of "wrong password"."""

    def clean(self):
        username = self.cleaned_data.get("username")  # type: ignore[attr-defined]
        request = self.request  # type: ignore[attr-defined]
        if username and request is not None:
            try:
                signin_check(username=username, ip=client_ip(request))
            except SigninThrottled as exc:
                raise ValidationError(str(exc), code="throttled") from exc
        return super().clean()  # type: ignore[misc]


class SigninForm(ThrottledFormMixin, AuthenticationForm):
    pass


class AdminSigninForm(ThrottledFormMixin, AdminAuthenticationForm):
    pass


class ThrottledModelBackend(ModelBackend):
    """Django's username/password check, behind the throttle above."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None or not username:
            return super().authenticate(request, username, password, **kwargs)
        ip = client_ip(request)
        signin_check(username=username, ip=ip)  # PermissionDenied: Django stops here
        signin_attempt(username=username, ip=ip)
        user = super().authenticate(request, username, password, **kwargs)
        if user is not None:
            signin_succeeded(username=username, ip=ip)
        return user
