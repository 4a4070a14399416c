"""What the question path streams to every surface."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class ChatEvent:
    """One step of an answer.

    kind: conversation {id, kb, title, question_id, message_id} | status {stage,
    message?, seconds?} | sources {sources, prompt_tokens, context_window}: every packed
    passage, numbered | delta {text} | reasoning {text} | citations {cited, more,
    more_passages}: those passages grouped by document once the answer is written
    (citations.py) | error {message, code, partial, retry_after?} | done {message_id,
    status, retrieval_only, prompt_tokens, completion_tokens, cost}; surfaces may add
    their own (the page's html {html}).
    """

    kind: str
    data: dict[str, Any] = field(default_factory=dict)
