"""A stand-in for Ministral 3 model servers, for tests and benchmarks (not part of Docent).

It speaks OpenAI chat completions over real HTTP on loopback, in the dialect of each
provider Docent supports (Mistral's API, OpenRouter, vLLM, llama.cpp, Together, or plain
OpenAI-compatible), replaying their recorded payloads in `fixtures/`. Every chat request is
checked the way Mistral's own stack does it (mistral-common, configured like Ministral 3),
and ``usage.prompt_tokens`` is that exact count.
"""

from .answers import NO_ANSWER, default_answer, find_sources
from .dialects import FIXTURES
from .providers import DIALECTS
from .script import ModelInfo, RecordedRequest, Reply, ServerConfig
from .server import LLMServer
from .tokenizer import count_prompt_tokens, mistral_tokenizer, to_request

__all__ = [
    "DIALECTS",
    "FIXTURES",
    "NO_ANSWER",
    "LLMServer",
    "ModelInfo",
    "RecordedRequest",
    "Reply",
    "ServerConfig",
    "count_prompt_tokens",
    "default_answer",
    "find_sources",
    "mistral_tokenizer",
    "to_request",
]
