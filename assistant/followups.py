"""Earlier turns of a conversation, and follow-up questions rewritten to stand alone."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

from django.conf import settings

from .llm import LLMClient, LLMError, Sampling
from .models import Conversation, Message
from .packing import Turn
from .prompts import rewrite_messages

logger = logging.getLogger("docent.chat")
REWRITE_TOKENS = 200  # tokens an instruct model gets to rewrite a follow-up
REWRITE_REASONING_TOKENS = 2048  # a reasoning model thinks first: room for that and the answer


def conversation_history(*, conversation: Conversation) -> list[Turn]:
    """Earlier question-and-answer pairs whose answer completed.

    An answer that failed, was stopped or was cut off never goes back to the model as
    if it were whole; its question goes with it, so turns still alternate.
    """
    turns: list[Turn] = []
    question: Message | None = None
    for m in conversation.messages.exclude(status=Message.Status.STREAMING):
        if m.role == Message.Role.USER:
            question = m
            continue
        if question is not None and m.status == Message.Status.COMPLETE and m.content:
            text = question.content
            if question.image_text:
                text += f"\n\n[Screenshot text: {question.image_text}]"
            turns += [Turn("user", text), Turn("assistant", m.content, m.reasoning)]
        question = None
    return turns


# Words by which an English question leans on what came before ("does it", "what about").
_REFERS_BACK = frozenset(
    [
        "it",
        "its",
        "it's",
        "itself",
        "this",
        "that",
        "these",
        "those",
        "they",
        "them",
        "their",
        "theirs",
        "there",
        "he",
        "him",
        "his",
        "she",
        "her",
        "one",
        "ones",
        "same",
        "other",
        "others",
        "else",
        "above",
        "previous",
        "former",
        "latter",
        "also",
        "too",
        "again",
        "more",
        "instead",
        "then",
        "such",
        "both",
        "either",
        "neither",
    ]
)
_CONTINUES = frozenset(["and", "but", "or", "so", "why", "ok", "okay", "what's"])
_ASKS = frozenset(
    [
        "what",
        "which",
        "who",
        "whom",
        "whose",
        "where",
        "when",
        "why",
        "how",
        "is",
        "are",
        "was",
        "were",
        "do",
        "does",
        "did",
        "can",
        "could",
        "should",
        "would",
        "will",
        "shall",
        "may",
        "might",
        "must",
        "the",
    ]
)
_WORDS = re.compile(r"[a-z]+(?:'[a-z]+)?")


def question_stands_alone(*, question: str) -> bool:
    """A question that needs no rewrite: a full English question with no word that points
    back ("it", "that", "what about"). Anything unsure, in another language included,
    goes to the rewrite, which costs a model call but never loses the thread."""
    words = _WORDS.findall(question.lower())
    if len(words) < 5 or not _ASKS.intersection(words):
        return False
    if words[0] in _CONTINUES or words[:2] in (["what", "about"], ["how", "about"]):
        return False
    return not _REFERS_BACK.intersection(words)


def question_standalone(*, question: str, history: Sequence[Turn], llm: LLMClient | None) -> str:
    """A follow-up rewritten to stand alone, so retrieval sees what "it" refers to.

    Only the visible answer is ever used: a reasoning model's trace is dropped. With
    LLM_REWRITE_MODEL set (an instruct model on the same server), that model rewrites.
    """
    if not history or question_stands_alone(question=question):
        return question
    last_user = next((t.content for t in reversed(history) if t.role == "user"), "")
    fallback = f"{last_user}\n{question}"
    if llm is None or not settings.REWRITE_FOLLOWUPS:
        return fallback
    model = llm.config.rewrite_model or llm.config.model
    info = llm.model_info(model)
    if info.reasoning:
        sampling = Sampling(temperature=info.temperature, top_p=info.top_p)
        max_tokens = REWRITE_REASONING_TOKENS
    else:
        sampling, max_tokens = Sampling(temperature=0), REWRITE_TOKENS
    try:
        _reasoning, rewritten, finish = llm.complete(
            messages=rewrite_messages(history, question, reasoning=info.reasoning),
            max_tokens=max_tokens,
            sampling=sampling,
            model=model,
        )
    except LLMError as exc:
        logger.warning("Follow-up rewrite failed, using the raw conversation: %s", exc)
        return fallback
    if finish == "length" and info.reasoning:
        return fallback  # cut off while still thinking, or mid-sentence
    rewritten = " ".join(rewritten.split())[:500]
    return rewritten or fallback
