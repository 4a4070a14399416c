"""Counting what a caller may do per time window, shared by every web process.

The counts live in the database (one row per scope, key and window), so several web
processes behind one proxy agree; with QUOTA_REDIS_URL, question quotas live in Redis
instead (one key per scope, key and window, expiring with it), which spares the
database a write per question. Windows are fixed: a day (UTC) for questions, a few
minutes for sign-in failures. A limit of 0 means "no limit".
"""

from __future__ import annotations

import ipaddress
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from .models import Usage

logger = logging.getLogger("docent.chat")

DAY = 24 * 3600


@dataclass(frozen=True)
class Limit:
    """At most `limit` uses per `window_seconds` for `key` (e.g. ``ip:203.0.113.9``)."""

    key: str
    limit: int


class QuotaExceeded(Exception):
    """A limit is reached; `retry_after` is the seconds until its window ends."""

    status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def _window(seconds: int) -> tuple[datetime, int]:
    """(start of the current window, seconds until it ends); windows align to UTC midnight."""
    now = timezone.now().astimezone(UTC)
    midnight = datetime.combine(now.date(), datetime.min.time(), tzinfo=UTC)
    elapsed = int((now - midnight).total_seconds())
    start = midnight + timedelta(seconds=elapsed - elapsed % seconds)
    return start, int((start + timedelta(seconds=seconds) - now).total_seconds()) + 1


def quota_consume(
    *, scope: str, limits: Sequence[Limit], message: str, window_seconds: int = DAY
) -> None:
    """Count one use against every limit, or none of them and raise QuotaExceeded."""
    start, retry_after = _window(window_seconds)
    limits = [limit for limit in limits if limit.limit]
    if time.monotonic() - _pruned_at > _PRUNE_EVERY:  # old windows, now and then
        usage_prune()
    if settings.QUOTA_REDIS_URL:
        try:
            allowed = _redis_consume(scope, limits, start, window_seconds)
        except Exception as exc:  # redis.RedisError: Redis is down; the database still counts
            logger.warning("Redis is unavailable for quotas (%s); counting in the database", exc)
        else:
            if not allowed:
                raise QuotaExceeded(message, retry_after)
            return
    with transaction.atomic():
        for limit in limits:
            if _increment(scope, limit.key, start) > limit.limit:
                transaction.set_rollback(True)
                raise QuotaExceeded(message, retry_after)


def _redis_consume(scope: str, limits: Sequence[Limit], start: datetime, seconds: int) -> bool:
    """Count one use per limit in Redis; if any is over, take them all back (False)."""
    client = _redis()
    stamp = int(start.timestamp())
    keys = [f"docent:quota:{scope}:{limit.key[:200]}:{stamp}" for limit in limits]
    pipe = client.pipeline()
    for key in keys:
        pipe.incr(key)
        pipe.expire(key, seconds + 60)
    counts = pipe.execute()[::2]
    if all(count <= limit.limit for count, limit in zip(counts, limits, strict=True)):
        return True
    undo = client.pipeline()
    for key in keys:
        undo.decr(key)
    undo.execute()
    return False


_redis_clients: dict[str, object] = {}


def _redis():
    url = settings.QUOTA_REDIS_URL
    if url not in _redis_clients:
        import redis

        _redis_clients[url] = redis.Redis.from_url(url, socket_timeout=2)
    return _redis_clients[url]


def usage_count(*, scope: str, key: str, window_seconds: int) -> int:
    """Uses counted in the current window and the one before it.

    Counting the previous window too means a burst split across a window's end still
    adds up: within any `window_seconds`, no more than the limit gets through.
    """
    start, _ = _window(window_seconds)
    since = start - timedelta(seconds=window_seconds)
    rows = Usage.objects.filter(scope=scope, key=key[:200], window_start__gte=since)
    return sum(rows.values_list("count", flat=True))


def usage_add(*, scope: str, key: str, window_seconds: int) -> int:
    """Count one use without a limit (e.g. a failed sign-in); the new count."""
    start, _ = _window(window_seconds)
    with transaction.atomic():
        return _increment(scope, key, start)


def usage_undo(*, scope: str, key: str, window_seconds: int) -> None:
    """Take back one use counted in the current window (never below zero)."""
    start, _ = _window(window_seconds)
    Usage.objects.filter(scope=scope, key=key[:200], window_start=start, count__gt=0).update(
        count=F("count") - 1
    )


def usage_seen(*, scope: str, key: str, days: int) -> bool:
    """Whether `key` was counted in `scope` in the last `days` days."""
    since = timezone.now() - timedelta(days=days)
    return Usage.objects.filter(scope=scope, key=key[:200], window_start__gte=since).exists()


def usage_clear(*, scope: str, key: str) -> None:
    Usage.objects.filter(scope=scope, key=key).delete()


KEEP_DAYS = 90  # sign-in successes are remembered this long (see assistant.signin)
_PRUNE_EVERY = 3600.0  # seconds between clean-ups, per process
_pruned_at = 0.0


def usage_prune(*, keep_days: int = KEEP_DAYS) -> int:
    """Delete counts older than `keep_days` days (rows deleted)."""
    global _pruned_at
    _pruned_at = time.monotonic()
    old = timezone.now() - timedelta(days=keep_days)
    deleted, _ = Usage.objects.filter(window_start__lt=old).delete()
    return deleted


def _increment(scope: str, key: str, start: datetime) -> int:
    rows = Usage.objects.filter(scope=scope, key=key[:200], window_start=start)
    if not rows.update(count=F("count") + 1):
        try:
            with transaction.atomic():
                Usage.objects.create(scope=scope, key=key[:200], window_start=start, count=1)
        except IntegrityError:  # created concurrently by another process
            rows.update(count=F("count") + 1)
    return rows.values_list("count", flat=True).get()


def client_ip(request) -> str:
    """The caller's address, as quotas and throttles count it.

    By default the address the server saw. Behind a reverse proxy, run uvicorn with
    ``--proxy-headers --forwarded-allow-ips <proxy>``: it resolves X-Forwarded-For itself
    and hands us the result. TRUST_X_FORWARDED_FOR is for servers that can't: then the
    rightmost hop that is not one of FORWARDED_ALLOW_IPS counts, because every hop left
    of the last trusted proxy is written by the client and can say anything.

    An IPv6 address counts as its /64 network: one subscriber usually holds a whole /64,
    and counting single addresses would give them 2**64 quotas.
    """
    remote = request.META.get("REMOTE_ADDR", "")
    if settings.TRUST_X_FORWARDED_FOR and _trusted(remote):
        hops = [h.strip() for h in request.headers.get("x-forwarded-for", "").split(",")]
        hops = [h for h in hops if h]
        untrusted = [h for h in hops if not _trusted(h)]
        remote = untrusted[-1] if untrusted else (hops[0] if hops else remote)
    return _bucket(remote)


def _trusted(address: str) -> bool:
    if "*" in settings.FORWARDED_ALLOW_IPS:
        return True
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(
        ip in ipaddress.ip_network(net, strict=False) for net in settings.FORWARDED_ALLOW_IPS
    )


def _bucket(address: str) -> str:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address[:100]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)
