"""Members' own accounts: change a password, or reset a forgotten one by email.

Django's auth views do the work (tokens, hashing, the session kept signed in after a
change); this module adds one thing: password reset requests are rate limited per
address (IP) and per email address, so the form can't be used to flood a mailbox.
Sign-in throttling stays in assistant.signin.
"""

from __future__ import annotations

import math

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ValidationError

from .quotas import Limit, QuotaExceeded, client_ip, quota_consume


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
