"""What a model's answer turns into while it streams: provider-neutral events."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class TextDelta:
    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    text: str


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cost: float | None = None  # in the provider's currency (USD), only when it says


@dataclass(frozen=True, slots=True)
class Finished:
    reason: str  # stop | length | ...


@dataclass(frozen=True, slots=True)
class Waiting:
    """The model is busy: the next attempt starts in `seconds`."""

    seconds: float
    message: str


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The answer broke off; what was already streamed stays as it was."""

    message: str


LLMEvent = TextDelta | ReasoningDelta | Usage | Finished | Waiting | StreamFailed


class LLMError(Exception):
    """The model could not be asked (after any retries); the message is for people.

    ``code`` says what kind of failure it was: rate_limited, auth, refused, context,
    unavailable, timeout or connection. ``retry_after`` is in seconds when the provider
    said when to come back; ``window`` is the server's real window (tokens) when a
    request was refused as too long and the server named it.
    """

    def __init__(
        self,
        message: str,
        *,
        code: str = "unavailable",
        retry_after: float | None = None,
        window: int | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.retry_after = retry_after
        self.window = window
