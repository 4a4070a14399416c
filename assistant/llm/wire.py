"""The OpenAI chat-completions wire format, in each provider's own dialect.

Writes neutral `ministral.prompt` messages as request JSON, and reads streamed chunks
back into events. Reasoning arrives in four shapes, and all of them are read here:
Mistral's ``thinking`` content chunks, vLLM's ``reasoning_content`` / ``reasoning``,
OpenRouter's ``reasoning`` / ``reasoning_details``, and inline ``[THINK]…[/THINK]``.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ministral.prompt import ChatMessage, Image, Part, Text, Thinking
from ministral.reasoning import CLOSE, OPEN, ThinkSplitter
from ministral.registry import ModelInfo

from .config import Sampling
from .events import Finished, LLMEvent, ReasoningDelta, TextDelta, Usage

# How a provider takes reasoning back in context, and thinking parts of a system prompt:
#   mistral        Mistral's API: {"type": "thinking", "thinking": [{"type": "text", ...}]}
#   mistral-common vLLM (mistral tokenizer mode): a closed thinking chunk, reasoning_content
#   openrouter     the "reasoning" field of the assistant message
#   generic        reasoning_content (llama.cpp, SGLang, most servers); inline in system text
DIALECTS = ("mistral", "mistral-common", "openrouter", "generic")


@dataclass(frozen=True)
class ServerFacts:
    """What the server published about the model (GET /models); None: it did not say."""

    kind: str = ""  # vllm | llamacpp | mistral | openrouter | together | "" (unknown)
    context_window: int | None = None  # tokens
    vision: bool | None = None
    reasoning: bool | None = None
    supported_parameters: frozenset[str] | None = None  # OpenRouter lists them


def dialect_for(provider: str, server: ServerFacts) -> str:
    if provider in ("mistral", "openrouter"):
        return provider
    return "mistral-common" if server.kind == "vllm" else "generic"


def data_url(image: Image) -> str:
    return f"data:{image.mime};base64,{base64.b64encode(image.data).decode()}"


def wire_messages(
    messages: Sequence[ChatMessage], *, dialect: str, inline_reasoning: bool = False
) -> list[dict[str, Any]]:
    """Messages as JSON for `dialect`; `inline_reasoning`: the server only speaks inline."""
    return [_wire_message(m, dialect, inline_reasoning) for m in messages]


def _wire_message(message: ChatMessage, dialect: str, inline: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"role": message.role}
    parts = message.parts
    reasoning = message.reasoning
    if reasoning and (inline or dialect == "mistral"):
        parts = (Thinking(reasoning), *parts)
        reasoning = ""
    thinking = any(isinstance(p, Thinking) for p in parts)
    if len(parts) == 1 and isinstance(parts[0], Text):
        out["content"] = parts[0].text
    elif thinking and (inline or dialect in ("generic", "openrouter")):
        out["content"] = _inline(parts)  # thinking parts only occur beside text
    else:
        out["content"] = [_wire_part(p, dialect) for p in parts]
    if reasoning:
        if dialect == "openrouter":
            out["reasoning"] = reasoning
        else:  # mistral-common requires the two, when both are given, to be equal
            out["reasoning_content"] = reasoning
            if dialect == "mistral-common":
                out["reasoning"] = reasoning
    return out


def _inline(parts: Sequence[Part]) -> str:
    """Text with thinking inline, joined as the template joins chunks: adjacent text parts
    with a blank line, a think block with nothing."""
    text, previous = "", None
    for part in parts:
        if isinstance(part, Thinking):
            text += f"{OPEN}{part.text}{CLOSE}"
        elif isinstance(part, Text):
            text += ("\n\n" if isinstance(previous, Text) else "") + part.text
        previous = part
    return text


def _wire_part(part: Part, dialect: str) -> dict[str, Any]:
    if isinstance(part, Text):
        return {"type": "text", "text": part.text}
    if isinstance(part, Image):
        return {"type": "image_url", "image_url": {"url": data_url(part)}}
    if dialect == "mistral":
        return {"type": "thinking", "thinking": [{"type": "text", "text": part.text}]}
    if dialect == "mistral-common":
        return {"type": "thinking", "thinking": part.text, "closed": True}
    return {"type": "text", "text": f"{OPEN}{part.text}{CLOSE}"}


def request_params(
    *,
    provider: str,
    server: ServerFacts,
    info: ModelInfo,
    sampling: Sampling,
    max_tokens: int,
    stream: bool,
) -> dict[str, Any]:
    """The request's parameters, spelled as the target spells them, and only those it takes.

    Mistral's API answers 422 ``extra_forbidden`` to fields it does not know (such as
    ``stream_options`` or ``seed``: it calls that ``random_seed``).
    """
    temperature = sampling.temperature if sampling.temperature is not None else info.temperature
    top_p = sampling.top_p if sampling.top_p is not None else info.top_p
    params: dict[str, Any] = {"temperature": temperature, "max_tokens": max_tokens}
    optional: dict[str, Any] = {
        "top_p": top_p,
        "stop": list(sampling.stop) or None,
        "seed": sampling.seed,
        "frequency_penalty": sampling.frequency_penalty,
        "presence_penalty": sampling.presence_penalty,
    }
    supported = server.supported_parameters
    for name, value in optional.items():
        if value is None or (supported is not None and name not in supported):
            continue
        params["random_seed" if name == "seed" and provider == "mistral" else name] = value
    if stream and provider in ("openai-compatible", "together"):
        params["stream_options"] = {"include_usage": True}  # vLLM sends usage only if asked
    return params


class DeltaReader:
    """Turns streamed chunks (plain JSON objects, as sent) into events, one at a time.

    The chunks are read as the JSON the server sent, not as the SDK's typed objects:
    building a pydantic model per token cost more CPU than everything else in the relay,
    and provider extras (reasoning fields, cost) are plain keys either way.
    """

    def __init__(self) -> None:
        self._splitter = ThinkSplitter()

    def chunk(self, chunk: Any) -> list[LLMEvent]:
        events: list[LLMEvent] = []
        if not isinstance(chunk, dict):
            return events
        usage = chunk.get("usage")
        if isinstance(usage, dict) and usage.get("prompt_tokens") is not None:
            events.append(
                Usage(
                    _int(usage.get("prompt_tokens")),
                    _int(usage.get("completion_tokens")),
                    _float(usage.get("cost")),
                )
            )
        choices = chunk.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            if isinstance(delta, dict):
                self._read(events, delta.get("content"), delta)
            if choice.get("finish_reason"):
                events.extend(self._flush())
                events.append(Finished(str(choice["finish_reason"])))
        return events

    def message(self, message: Any) -> tuple[str, str]:
        """(reasoning, answer) of a whole non-streamed message (its JSON object)."""
        events: list[LLMEvent] = []
        if isinstance(message, dict):
            self._read(events, message.get("content"), message)
        events.extend(self._flush())
        reasoning = "".join(e.text for e in events if isinstance(e, ReasoningDelta))
        answer = "".join(e.text for e in events if isinstance(e, TextDelta))
        return reasoning, answer

    def end(self) -> list[LLMEvent]:
        return self._flush()

    @property
    def saw_inline(self) -> bool:
        """The server put [THINK] in the text: it runs without a reasoning parser."""
        return self._splitter.saw_marker

    def _read(self, events: list[LLMEvent], content: Any, extra: dict[str, Any]) -> None:
        reasoning = extra.get("reasoning_content") or extra.get("reasoning")
        if not reasoning and extra.get("reasoning_details"):
            reasoning = "".join(_detail_text(d) for d in extra["reasoning_details"])
        if isinstance(reasoning, str) and reasoning:
            events.append(ReasoningDelta(reasoning))
        if isinstance(content, str):
            self._text(events, content)
        elif isinstance(content, list):  # Mistral: thinking and text chunks
            for item in content:
                if isinstance(item, str):
                    self._text(events, item)
                elif isinstance(item, dict) and item.get("type") == "text":
                    self._text(events, str(item.get("text") or ""))
                elif isinstance(item, dict) and item.get("type") == "thinking":
                    thought = _thinking_text(item.get("thinking"))
                    if thought:
                        events.append(ReasoningDelta(thought))

    def _text(self, events: list[LLMEvent], text: str) -> None:
        if not text:
            return
        for is_reasoning, piece in self._splitter.feed(text):
            events.append(ReasoningDelta(piece) if is_reasoning else TextDelta(piece))

    def _flush(self) -> list[LLMEvent]:
        return [ReasoningDelta(t) if r else TextDelta(t) for r, t in self._splitter.flush()]


def _thinking_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(str(v.get("text") or "") if isinstance(v, dict) else str(v) for v in value)
    return ""


def _detail_text(detail: Any) -> str:
    """OpenRouter reasoning_details: text and summaries are readable; encrypted ones are not."""
    if not isinstance(detail, dict):
        return ""
    if detail.get("type") == "reasoning.text":
        return str(detail.get("text") or "")
    if detail.get("type") == "reasoning.summary":
        return str(detail.get("summary") or "")
    return ""


def _int(value: object) -> int:
    return int(value) if isinstance(value, int | float) else 0


def _float(value: object) -> float | None:
    try:
        return float(value) if value is not None else None  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
