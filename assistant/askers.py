"""Who is asking: one value for every surface (page, widget, API, CLI).

An Asker carries the account when there is one and an owner key in one format, which
conversations and feedback are stored under:

- ``user:<id>``: a signed-in person (chat page or the API through a browser session);
- ``session:<key>``: an anonymous visitor of the chat page;
- ``key:<id>``: a program with an API key (the API, /v1 or MCP);
- ``widget:<widget id>:<visitor id>``: a visitor of a site that embeds a widget;
- ``cli``: whoever runs ``manage.py ask`` on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db.models import Q, QuerySet

from .quotas import Limit, client_ip

if TYPE_CHECKING:
    from ingest.models import KnowledgeBase

    from .models import ApiKey, Conversation
    from .widgets import WidgetSession


@dataclass(frozen=True)
class Asker:
    owner_key: str  # "" for a visitor with no session yet: they own nothing
    user: Any = None  # the account, when signed in
    surface: str = "page"  # page | api | widget | cli
    max_question_chars: int | None = None  # None: MAX_QUESTION_CHARS
    screenshots: bool = True  # may attach screenshots
    quota_scope: str = ""  # where the question counts (see assistant.quotas); "": nowhere
    quota: tuple[Limit, ...] = ()

    @classmethod
    def for_session(cls, request, *, create: bool = False) -> Asker:
        """A chat-page visitor: the account when signed in, else the browser session.

        Only a request that asks something (create=True) starts a session: merely
        looking at the page writes nothing.
        """
        ip = f"ip:{client_ip(request)}"
        if request.user.is_authenticated:
            account = Limit(f"user:{request.user.pk}", settings.CHAT_QUOTA_PER_ACCOUNT)
            return cls(
                f"user:{request.user.pk}", request.user, quota_scope="chat", quota=(account,)
            )
        if not request.session.session_key and create:
            _session_start(request, ip)
        key = request.session.session_key
        if not key:
            return cls("")
        visitor = Limit(f"session:{key}", settings.CHAT_QUOTA_PER_SESSION)
        per_ip = Limit(ip, settings.CHAT_QUOTA_PER_IP)
        return cls(f"session:{key}", quota_scope="chat", quota=(visitor, per_ip))

    @classmethod
    def for_api(cls, request) -> Asker:
        """An API caller: its key, or the signed-in account behind a browser session."""
        key: ApiKey | None = getattr(request, "api_key", None)
        if key is not None:
            return cls.for_key(key)
        owner = f"user:{request.user.pk}"
        account = Limit(owner, settings.CHAT_QUOTA_PER_ACCOUNT)
        return cls(owner, request.user, surface="api", quota_scope="chat", quota=(account,))

    @classmethod
    def for_key(cls, key: ApiKey, *, surface: str = "api") -> Asker:
        """A program with an API key (the API, /v1, MCP), counted against the key's quota."""
        account = Limit(f"key:{key.pk}", settings.CHAT_QUOTA_PER_ACCOUNT)
        return cls(f"key:{key.pk}", surface=surface, quota_scope="chat", quota=(account,))

    @classmethod
    def for_widget(cls, session: WidgetSession, *, ip: str) -> Asker:
        widget = session.widget
        return cls(
            f"widget:{widget.pk}:{session.visitor}",
            surface="widget",
            max_question_chars=widget.max_message_chars,
            screenshots=widget.accept_screenshots,
            quota_scope=f"widget:{widget.pk}",
            quota=(
                Limit(f"visitor:{session.quota_visitor}", widget.daily_quota_per_visitor),
                Limit(f"ip:{ip}", widget.daily_quota_per_ip),
            ),
        )

    @classmethod
    def for_cli(cls) -> Asker:
        return cls("cli", surface="cli")

    def conversations(self, *, kb: KnowledgeBase) -> QuerySet[Conversation]:
        """This asker's own conversations in `kb`, newest first."""
        from .models import Conversation

        if not self.owner_key and self.user is None:
            return Conversation.objects.none()
        mine = Q(owner_key=self.owner_key)
        if self.user is not None:
            mine |= Q(user=self.user)
        return Conversation.objects.filter(kb=kb).filter(mine)


def _session_start(request, ip: str) -> None:
    """Start an anonymous visitor's session: at most CHAT_QUOTA_PER_IP a day per address,
    so dropping the cookie neither escapes the per-IP quota nor fills the session table."""
    from .quotas import QuotaExceeded, quota_consume
    from .screenshots import ChatInputError

    try:
        quota_consume(
            scope="chat-sessions",
            limits=[Limit(ip, settings.CHAT_QUOTA_PER_IP)],
            message="You have reached today's limit of questions. Please come back tomorrow.",
        )
    except QuotaExceeded as exc:
        raise ChatInputError(str(exc), status=429, retry_after=exc.retry_after) from exc
    request.session.save()
