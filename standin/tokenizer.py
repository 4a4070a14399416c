"""mistral-common configured like Ministral 3 (2512): the stand-in's request checker.

Every request the stand-in receives goes through ``ChatCompletionRequest.from_openai`` and
``MistralTokenizer.encode_chat_completion`` exactly as a mistral-common-based server (vLLM's
mistral mode, Mistral's own stack) does; ``usage.prompt_tokens`` is that count.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import mistral_common
from mistral_common.protocol.instruct.normalize import get_normalizer
from mistral_common.protocol.instruct.request import ChatCompletionRequest
from mistral_common.protocol.instruct.validator import ValidationMode, get_validator
from mistral_common.tokens.tokenizers.base import SpecialTokens, TokenizerVersion
from mistral_common.tokens.tokenizers.image import ImageConfig
from mistral_common.tokens.tokenizers.instruct import InstructTokenizerV13
from mistral_common.tokens.tokenizers.mistral import MistralTokenizer, load_image_encoder
from mistral_common.tokens.tokenizers.tekken import SpecialTokenInfo, Tekkenizer

TEKKEN_FILE = Path(mistral_common.__file__).parent / "data" / "tekken_240718.json"
#: patch 14 x spatial merge 2 = 28-px image tokens, longest side scaled down to 1540 px.
MINISTRAL3_IMAGE_CONFIG = ImageConfig(
    image_patch_size=14, max_image_size=1540, spatial_merge_size=2
)
#: Special tokens beyond the 20 legacy ones. Their ranks follow the Magistral / Mistral Small 3.x
#: tekken.json layout (inferred; ranks never change a token *count*).
_EXTRA_SPECIAL_TOKENS = {
    32: SpecialTokens.args.value,
    33: SpecialTokens.call_id.value,
    34: SpecialTokens.begin_think.value,
    35: SpecialTokens.end_think.value,
}
_tokenizer_lock = threading.Lock()
_tokenizers: dict[bool, MistralTokenizer] = {}


def ministral3_special_tokens() -> list[SpecialTokenInfo]:
    """Ranks 0-35: legacy (<unk>..[TOOL_CONTENT]), fillers, [ARGS] [CALL_ID] [THINK] [/THINK]."""
    tokens = list(Tekkenizer.DEPRECATED_SPECIAL_TOKENS)
    for rank in range(len(tokens), 36):
        name = _EXTRA_SPECIAL_TOKENS.get(rank, Tekkenizer.SPECIAL_TOKEN_TEMPLATE.format(id=rank))
        tokens.append(SpecialTokenInfo(rank=rank, token_str=name, is_control=True))
    return tokens


def mistral_tokenizer(vision: bool = True) -> MistralTokenizer:
    """A cached MistralTokenizer like Ministral 3: tekken_240718 BPE, V13 template, serving mode.

    Assembled by hand because mistral-common 1.13.1 ships no Ministral 3 tokenizer file: a
    ``Tekkenizer`` (131,072 ids, 1,000 special) with version v13 and the image config above,
    ``InstructTokenizerV13`` + ``ImageEncoder``, the v13 validator (``ValidationMode.serving``)
    and the v13 request normalizer.
    """
    with _tokenizer_lock:
        if vision not in _tokenizers:
            data = json.loads(TEKKEN_FILE.read_text(encoding="utf-8"))
            tekken = Tekkenizer(
                data["vocab"],
                ministral3_special_tokens(),
                pattern=data["config"]["pattern"],
                vocab_size=data["config"]["default_vocab_size"],
                num_special_tokens=data["config"]["default_num_special_tokens"],
                version=TokenizerVersion.v13,
                name="ministral3-tekken",
                image_config=MINISTRAL3_IMAGE_CONFIG if vision else None,
            )
            encoder = load_image_encoder(MINISTRAL3_IMAGE_CONFIG, tekken) if vision else None
            _tokenizers[vision] = MistralTokenizer(
                InstructTokenizerV13(tekken, image_encoder=encoder),
                validator=get_validator(TokenizerVersion.v13, mode=ValidationMode.serving),
                request_normalizer=get_normalizer(TokenizerVersion.v13, None),
            )
        return _tokenizers[vision]


def to_request(
    messages: list[dict[str, Any]], *, model: str = "ministral-8b-2512", **kwargs: Any
) -> ChatCompletionRequest:
    """``ChatCompletionRequest.from_openai`` exactly as the server calls it."""
    return ChatCompletionRequest.from_openai(messages=messages, model=model, **kwargs)


def count_prompt_tokens(messages: list[dict[str, Any]], *, model: str = "ministral-8b-2512") -> int:
    """Reference count: ``len(encode_chat_completion(from_openai(messages)).tokens)``."""
    return len(mistral_tokenizer().encode_chat_completion(to_request(messages, model=model)).tokens)


def mistral_api_to_common(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Mistral's API spells a thinking chunk ``{"thinking": [{"type": "text", ...}]}``;
    mistral-common's ``from_openai`` takes ``{"thinking": "...", "closed": true}``."""
    out = []
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            converted = []
            for part in content:
                if isinstance(part, dict) and part.get("type") == "thinking":
                    thought = part.get("thinking")
                    if isinstance(thought, list):
                        thought = "".join(
                            str(t.get("text", "")) for t in thought if isinstance(t, dict)
                        )
                    part = {
                        "type": "thinking",
                        "thinking": thought,
                        "closed": part.get("closed", True),
                    }
                converted.append(part)
            message = {**message, "content": converted}
        out.append(message)
    return out
