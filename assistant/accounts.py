"""Members' own accounts: change a password, or reset a forgotten one by email.

Django's auth views do the work (tokens, hashing, the session kept signed in after a
change); this module adds two limits: password reset requests are rate limited per
address (IP) and per email address, so the form can't be used to flood a mailbox, and
the change form checks the old password behind the sign-in throttle (assistant.signin),
so a session left open can't be used to guess it.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordChangeForm, PasswordResetForm
from django.core.exceptions import ValidationError

from .quotas import Limit, QuotaExceeded, client_ip, quota_consume
from .signin import SigninThrottled, signin_attempt, signin_forgive, signin_succeeded


def password_reset_throttle(*, email: str, ip: str) -> None:
    """Count one reset request for `email` from `ip`, or raise QuotaExceeded (counting none).

    Every request counts, whether or not an account has that address, so the answer
    never tells whether one does.
    """
    quota_consume(
        scope="password-reset",
        limits=[
            Limit(f"ip:{ip}", settings.PASSWORD_RESET_PER_IP),
            Limit(f"email:{email.strip().lower()}", settings.PASSWORD_RESET_PER_ADDRESS),
        ],
        message="Too many password reset requests.",
        window_seconds=settings.PASSWORD_RESET_WINDOW_SECONDS,
    )


class ThrottledPasswordResetForm(PasswordResetForm):
    """Django's reset form; past the limits it asks to wait instead of sending mail."""

    def __init__(self, *args, request=None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.request = request

    def clean_email(self) -> str:
        email = self.cleaned_data["email"]
        if self.request is not None:
            try:
                password_reset_throttle(email=email, ip=client_ip(self.request))
            except QuotaExceeded as exc:
                minutes = max(1, math.ceil(exc.retry_after / 60))
                raise ValidationError(
                    f"Too many password reset requests from here or for this address. "
                    f"Please try again in {minutes} minutes.",
                    code="throttled",
                ) from exc
        return email


class PasswordResetRequestView(auth_views.PasswordResetView):
    form_class = ThrottledPasswordResetForm

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "request": self.request}


class ThrottledPasswordChangeForm(PasswordChangeForm):
    """Django's change form; a wrong old password counts as a failed sign-in."""

    def __init__(self, user, *args, request=None, **kwargs) -> None:
        super().__init__(user, *args, **kwargs)
        self.request = request

    def clean_old_password(self) -> str:
        if self.request is None:
            return super().clean_old_password()
        username, ip = self.user.get_username(), client_ip(self.request)
        try:
            signin_attempt(username=username, ip=ip)
        except SigninThrottled as exc:
            raise ValidationError(str(exc), code="throttled") from exc
        old = super().clean_old_password()  # ValidationError when it is wrong
        signin_succeeded(username=username, ip=ip)
        return old


class PasswordChangeView(auth_views.PasswordChangeView):
    form_class = ThrottledPasswordChangeForm

    def get_form_kwargs(self) -> dict:
        return {**super().get_form_kwargs(), "request": self.request}


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    def form_valid(self, form):
        response = super().form_valid(form)
        signin_forgive(username=form.user.get_username())
        return response
