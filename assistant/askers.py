"""Who is asking: one value for every surface (page, widget, API, CLI).

An Asker carries the account when there is one and an owner key in one format, which
conversations and feedback are stored under:

- ``user:<id>``: a signed-in person (chat page or the API through a browser session);
- ``session:<key>``: an anonymous visitor of the chat page;
- ``key:<id>``: a program with an API key;
- ``widget:<widget id>:<visitor id>``: a visitor of a site that embeds a widget;
- ``cli``: whoever runs ``manage.py ask`` on the server.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db.models import Q, QuerySet

if TYPE_CHECKING:
    from ingest.models import KnowledgeBase

    from .models import ApiKey, Conversation
    from .widgets import WidgetSession


@dataclass(frozen=True)
class Asker:
    owner_key: str
    user: Any = None  # the account, when signed in
    surface: str = "page"  # page | api | widget | cli
    max_question_chars: int | None = None  # None: MAX_QUESTION_CHARS
    screenshots: bool = True  # may attach screenshots

    @classmethod
    def for_session(cls, request) -> Asker:
        """A chat-page visitor: the account when signed in, else the browser session."""
        if request.user.is_authenticated:
            return cls(f"user:{request.user.pk}", request.user)
        if not request.session.session_key:
            request.session.save()
        return cls(f"session:{request.session.session_key}")

    @classmethod
    def for_api(cls, request) -> Asker:
        """An API caller: its key, or the signed-in account behind a browser session."""
        key: ApiKey | None = getattr(request, "api_key", None)
        if key is not None:
            return cls(f"key:{key.pk}", surface="api")
        return cls(f"user:{request.user.pk}", request.user, surface="api")

    @classmethod
    def for_widget(cls, session: WidgetSession) -> Asker:
        widget = session.widget
        return cls(
            f"widget:{widget.pk}:{session.visitor}",
            surface="widget",
            max_question_chars=widget.max_message_chars,
            screenshots=widget.accept_screenshots,
        )

    @classmethod
    def for_cli(cls) -> Asker:
        return cls("cli", surface="cli")

    def conversations(self, *, kb: KnowledgeBase) -> QuerySet[Conversation]:
        """This asker's own conversations in `kb`, newest first."""
        from .models import Conversation

        mine = Q(owner_key=self.owner_key)
        if self.user is not None:
            mine |= Q(user=self.user)
        return Conversation.objects.filter(kb=kb).filter(mine)
