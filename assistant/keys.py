"""API keys: made in the admin, shown once, stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from ingest.models import KnowledgeBase

from .models import ApiKey

PREFIX = "dk_"


def _hash(token: str) -> str:
    # Keys are 256-bit random, so a fast hash is enough: there is nothing to brute-force.
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def api_key_create(
    *, name: str, knowledge_bases: Iterable[KnowledgeBase], can_write: bool = False, created_by=None
) -> tuple[ApiKey, str]:
    """A new key and its secret token; the token is not stored and cannot be shown again."""
    prefix = secrets.token_hex(4)
    token = f"{PREFIX}{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey.objects.create(
        name=name, prefix=prefix, hashed=_hash(token), can_write=can_write, created_by=created_by
    )
    key.knowledge_bases.set(knowledge_bases)
    return key, token


def api_key_authenticate(*, token: str) -> ApiKey | None:
    """The live key for a presented token, or None."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    key = ApiKey.objects.filter(hashed=_hash(token), revoked=False).first()
    if key is None:
        return None
    now = timezone.now()
    if key.last_used_at is None or now - key.last_used_at > timedelta(minutes=1):
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
    return key


def api_key_from_header(*, authorization: str) -> ApiKey | None:
    """The live key an ``Authorization: Bearer dk_...`` header names, or None."""
    scheme, _, token = authorization.partition(" ")
    return api_key_authenticate(token=token.strip()) if scheme.lower() == "bearer" else None
