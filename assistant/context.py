"""The context of one question: retrieve for it, then pack it into the model's window."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from django.conf import settings

from ingest.models import KnowledgeBase
from ingest.selectors import asset_by_id
from ministral.registry import ModelInfo

from .packing import Budget, ImageInput, PackedRequest, PackingError, Turn, pack_context
from .prompts import default_system_prompt, system_parts
from .screenshots import Screenshot, asset_image
from .search import kb_search
from .tools import ChatTools

RETRIEVAL_ONLY_CONTEXT = 256_000  # tokens: without a model, only the retrieval budget matters


def answer_tokens(configured: int | None, info: ModelInfo) -> int:
    """Tokens the answer may take: LLM_MAX_TOKENS when set, else the model's default within
    a quarter of the window (a Reasoning model's 8,192 would fill an 8K llama.cpp server)."""
    return configured or min(info.max_output_tokens, info.context_window // 4)


def context_pack(
    *,
    kb: KnowledgeBase,
    query: str,
    question: str,
    history: Sequence[Turn],
    screenshots: Sequence[Screenshot],
    info: ModelInfo | None,
    tools: ChatTools,
    max_output_tokens: int,
    retrieval_budget: int | None = None,
    mode: str | None = None,
    documents: tuple[int, ...] | None = None,
) -> PackedRequest:
    """Retrieve for `query` and pack the request for `question`: chat's exact path."""
    window = info.context_window if info else RETRIEVAL_ONLY_CONTEXT
    budget = Budget(
        context_window=window,
        max_output_tokens=max_output_tokens,
        margin=settings.CONTEXT_MARGIN_TOKENS,
        retrieval=retrieval_budget or kb.retrieval_budget or settings.RETRIEVAL_BUDGET_TOKENS,
    )
    if budget.prompt < 256:
        raise PackingError(
            f"The answer may take {max_output_tokens:,} tokens (LLM_MAX_TOKENS), which leaves "
            f"no room for the question in the {window:,}-token window of {info.id if info else 'the model'}. "
            "Lower LLM_MAX_TOKENS."
        )
    found = kb_search(
        kb=kb,
        query=query,
        tools=tools,
        mode=mode,
        with_screenshots=bool(screenshots),
        documents=documents,
    )
    passages = found.passages
    passage_images: dict[int, ImageInput] = {}
    if info is not None and info.vision:
        for index, passage in enumerate(passages[:8]):
            asset_id = next((c.asset_id for c in passage.chunks if c.asset_id), None)
            asset = asset_by_id(pk=asset_id) if asset_id is not None else None
            image = asset_image(asset) if asset is not None else None
            if image is not None:
                passage_images[index] = image
    instructions = default_system_prompt(kb)
    packed = pack_context(
        system_prompt=system_parts(instructions, reasoning=bool(info and info.reasoning)),
        history=history,
        question=question,
        question_images=[s.image for s in screenshots],
        passages=passages,
        passage_images=passage_images,
        vision=bool(info and info.vision),
        budget=budget,
        counter=tools.counter,
    )
    if found.match.matched:
        return packed
    return replace(packed, matched=False, nearest_documents=found.nearest_documents())
