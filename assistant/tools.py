"""The heavy objects a question needs, built once per process, and the model in use.

A knowledge base's own model and sampling settings, when set, override the site's.
One LLMClient (and so one connection pool and one cached model list) exists per
distinct configuration.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from django.conf import settings

from ingest.models import KnowledgeBase
from ingest.pipeline.embed import Embedder
from ingest.store import VectorStore
from ministral.tokens import TokenCounter

from .llm import LLMClient, LLMConfig, OpenAIClient, Sampling, resolve_config

logger = logging.getLogger("docent.chat")

# The settings resolve_config reads, by name.
LLM_SETTINGS = (
    "LLM_PROVIDER",
    "LLM_BASE_URL",
    "LLM_API_KEY",
    "LLM_MODEL",
    "MISTRAL_API_KEY",
    "MISTRAL_BASE_URL",
    "OPENROUTER_API_KEY",
    "OPENROUTER_BASE_URL",
    "OPENROUTER_HTTP_REFERER",
    "OPENROUTER_X_TITLE",
    "TOGETHER_API_KEY",
    "TOGETHER_BASE_URL",
    "LLM_CONTEXT_WINDOW",
    "LLM_DISCOVER",
    "LLM_TIMEOUT_SECONDS",
    "LLM_MAX_RETRIES",
    "LLM_RETRY_MAX_SECONDS",
    "LLM_MAX_TOKENS",
    "LLM_TEMPERATURE",
    "LLM_TOP_P",
    "LLM_STOP",
    "LLM_SEED",
    "LLM_FREQUENCY_PENALTY",
    "LLM_PRESENCE_PENALTY",
    "LLM_REWRITE_MODEL",
)


@dataclass(frozen=True)
class ChatTools:
    embedder: Embedder
    store: VectorStore
    counter: TokenCounter
    llm: LLMClient | None


_lock = threading.Lock()
_clients: dict[LLMConfig, OpenAIClient] = {}
_warned: set[str] = set()


def llm_config(kb: KnowledgeBase | None = None) -> LLMConfig | None:
    """The model configuration for `kb` (or the site); None: retrieval-only."""
    values = {name: getattr(settings, name) for name in LLM_SETTINGS}
    resolved = resolve_config(values, model=kb.model if kb is not None else "")
    for warning in resolved.warnings:
        if warning not in _warned:
            _warned.add(warning)
            logger.warning("%s", warning)
    config = resolved.config
    if config is None or kb is None:
        return config
    own = Sampling(
        temperature=kb.temperature,
        top_p=kb.top_p,
        stop=kb.stop,
        seed=kb.seed,
        frequency_penalty=kb.frequency_penalty,
        presence_penalty=kb.presence_penalty,
    )
    return replace(config, sampling=own.over(config.sampling))


def llm_clients_forget() -> None:
    """Drop every cached client (what each server said about its models goes with them)."""
    with _lock:
        for client in _clients.values():
            client.close()
        _clients.clear()


def llm_client(config: LLMConfig) -> OpenAIClient:
    with _lock:
        client = _clients.get(config)
        if client is None:
            client = _clients[config] = OpenAIClient(config)
        return client


def chat_tools(kb: KnowledgeBase | None = None) -> ChatTools:
    """What a question to `kb` needs; its questions are embedded as its vectors were."""
    from functools import partial

    from ingest.pipeline.embed import embedder_named, get_embedder
    from ingest.services.embedders import kb_embedder_choose
    from ingest.store import get_store
    from ministral.tokens import get_counter

    config = llm_config(kb)
    embedder: Embedder = get_embedder(settings.EMBEDDING_MODEL_PATH, settings.EMBEDDING_BACKEND)
    if kb is not None:
        named = partial(embedder_named, model_path=settings.EMBEDDING_MODEL_PATH)
        embedder = kb_embedder_choose(kb=kb, default=embedder, named=named)
    return ChatTools(
        embedder=embedder,
        store=get_store(),
        counter=get_counter(),
        llm=llm_client(config) if config is not None else None,
    )


def llm_describe(kb: KnowledgeBase | None = None) -> str:
    """One line for the log: which provider, model, window and mode are in use."""
    config = llm_config(kb)
    if config is None:
        return (
            "Chat: no model configured, answering retrieval-only (set MISTRAL_API_KEY, "
            "OPENROUTER_API_KEY, TOGETHER_API_KEY or LLM_BASE_URL to use one)."
        )
    client = llm_client(config)
    info = client.info
    key = f"key from {config.key_setting}" if config.key_setting else "no API key"
    where = {
        "registry": "Docent's model list",
        "server": "the server's model list",
        "LLM_CONTEXT_WINDOW": "LLM_CONTEXT_WINDOW",
        "default": "a safe default",
    }[info.window_source]
    return (
        f"Chat: {info.name} ({config.model}) via {config.provider_name} at {config.base_url}, "
        f"{key}; {info.context_window:,}-token window (from {where}); "
        f"images {'as pixels' if info.vision else 'as OCR text'}; "
        f"{'reasoning model' if info.reasoning else 'instruct model'}."
    )


# Set once chat_tools_warm() has finished in this process; GET /healthz reports it.
warmed = threading.Event()


def chat_tools_warm() -> dict[str, float]:
    """Load what the first question would otherwise wait for: the embedder, the Ministral
    tokenizer, the question path's modules and connections, and (when enabled) the OCR
    engine, each used once. Seconds per part; GET /healthz turns 200 when it returns."""
    import time

    from PIL import Image

    from ingest.pipeline.embed import get_embedder
    from ingest.services.embedders import kbs_embedders
    from ministral.tokens import get_counter

    def embedder() -> None:
        # The server's, and any other backend a knowledge base was indexed with. Several
        # lengths: the first pass at each new input size is slower than the rest.
        models: list[Embedder] = [
            get_embedder(settings.EMBEDDING_MODEL_PATH, settings.EMBEDDING_BACKEND)
        ]
        models += kbs_embedders()
        for model in models:
            for words in (2, 12, 40):
                model.encode([" ".join(["warm"] * words)])

    def tokenizer() -> None:
        get_counter().text("warm up")

    def ocr() -> None:
        from ingest.pipeline.ocr import get_engine, ocr_image

        ocr_image(Image.new("RGB", (64, 32), "white"), engine=get_engine())

    def question_path() -> None:
        # The modules a first answer imports (URLs, views, the API schemas, Markdown
        # rendering, the SDK), the vector store's connection, and the site's model client
        # with what its server says about the model.
        from django.urls import get_resolver

        import assistant.services  # noqa: F401

        get_resolver().url_patterns  # noqa: B018 - imports every view module and the API
        chat_tools().store.heartbeat()
        config = llm_config()
        if config is not None:
            llm_client(config).warm()

    parts = {"embedder": embedder, "tokenizer": tokenizer, "question path": question_path}
    if settings.OCR_ENABLED:
        parts["OCR"] = ocr
    seconds: dict[str, float] = {}
    try:
        for name, load in parts.items():
            started = time.perf_counter()
            load()
            seconds[name] = time.perf_counter() - started
    finally:
        warmed.set()  # a part that failed only makes the first question slower
    return seconds
