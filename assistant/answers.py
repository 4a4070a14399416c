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
    answer: str = ""
    reasoning: str = ""
    error: dict[str, Any] = field(default_factory=dict)
    sources: list[dict[str, Any]] = field(default_factory=list)  # every passage read
    citations: dict[str, Any] = field(default_factory=dict)  # grouped: citations.py
    retrieval_only: bool = False
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cost: float | None = None

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
    text: list[str] = []
    reasoning: list[str] = []
    for event in events:
        data = event.data
        if event.kind == "conversation":
            answer.conversation = data["id"]
        elif event.kind == "sources":
            answer.sources = data["sources"]
        elif event.kind == "citations":
            answer.citations = data
        elif event.kind == "delta":
            text.append(data["text"])
        elif event.kind == "reasoning":
            reasoning.append(data["text"])
        elif event.kind == "error":
            answer.error = data
        elif event.kind == "done":
            answer.message_id = data["message_id"]
            answer.status = data["status"]
            answer.retrieval_only = data["retrieval_only"]
            answer.prompt_tokens = data["prompt_tokens"]
            answer.completion_tokens = data["completion_tokens"]
            answer.cost = data["cost"]
    answer.answer, answer.reasoning = "".join(text), "".join(reasoning)
    return answer
