"""The only package that speaks the OpenAI chat-completions wire format (through the openai SDK).

`config` resolves which server, key and sampling to use; `wire` writes neutral
`ministral.prompt` messages in each provider's dialect and reads their streams back;
`client` sends requests with Docent's retry policy; `events` is what comes out.
"""

from .client import LLMClient, OpenAIClient
from .config import PROVIDERS, LLMConfig, Resolved, Sampling, resolve_config
from .errors import describe_error, retry_after_seconds
from .events import (
    Finished,
    LLMError,
    LLMEvent,
    ReasoningDelta,
    StreamFailed,
    TextDelta,
    Usage,
    Waiting,
)
from .wire import ServerFacts

__all__ = [
    "PROVIDERS",
    "Finished",
    "LLMClient",
    "LLMConfig",
    "LLMError",
    "LLMEvent",
    "OpenAIClient",
    "ReasoningDelta",
    "Resolved",
    "Sampling",
    "ServerFacts",
    "StreamFailed",
    "TextDelta",
    "Usage",
    "Waiting",
    "describe_error",
    "resolve_config",
    "retry_after_seconds",
]
