"""A whole answer gathered from its events, for surfaces that do not stream."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .events import ChatEvent


@dataclass
class CollectedAnswer:
    conversation: str = ""
    message_id: int | None = None
    status: str = ""
    texts: list[str] = field(default_factory=list)  # the answer's pieces, as streamed
    thoughts: list[str] = field(default_factory=list)  # the reasoning's
    error: dict[str, Any] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)  # every passage read
    citations: dict[str, Any] = field(default_factory=dict)  # grouped: citations.py
    retrieval_only: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None

    @property
    def answer(self) -> str:
        return "".join(self.texts)

    @property
    def reasoning(self) -> str:
        return "".join(self.thoughts)

    @property
    def failed(self) -> bool:
        """Whether a failure cut the answer short (an answer cut at the output limit is
        still an answer)."""
        return bool(self.error) and self.error.get("code") != "truncated"

    def read(self, event: ChatEvent) -> None:
        """Take in the next event of the answer (answer_stream's order)."""
        data = event.data
        if event.kind == "conversation":
            self.conversation = data["id"]
        elif event.kind == "sources":
            self.sources = data["sources"]
        elif event.kind == "citations":
            self.citations = data
        elif event.kind == "delta":
            self.texts.append(data["text"])
        elif event.kind == "reasoning":
            self.thoughts.append(data["text"])
        elif event.kind == "error":
            self.error = data
        elif event.kind == "done":
            self.message_id = data["message_id"]
            self.status = data["status"]
            self.retrieval_only = data["retrieval_only"]
            self.prompt_tokens = data["prompt_tokens"]
            self.completion_tokens = data["completion_tokens"]
            self.cost = data["cost"]

    def ids(self) -> dict[str, Any]:
        return {"conversation": self.conversation, "message_id": self.message_id}

    def as_json(self) -> dict[str, Any]:
        return {
            **self.ids(),
            "status": self.status,
            "answer": self.answer,
            "reasoning": self.reasoning,
            "error": self.error.get("message", ""),
            "retrieval_only": self.retrieval_only,
            # One entry per document, the cited ones first; the passages as packed.
            "sources": [*self.citations.get("cited", ()), *self.citations.get("more", ())],
            "passages": self.sources,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "cost": self.cost,
        }


def answer_collect(events: Iterable[ChatEvent]) -> CollectedAnswer:
    """Drain an answer's events into one record (the saved reply says the same)."""
    answer = CollectedAnswer()
    for event in events:
        answer.read(event)
    return answer
