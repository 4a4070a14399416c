"""The neutral shape of a chat request: messages made of text, image and thinking parts.

Packing builds these; `ministral.tokens` counts them exactly; `assistant.llm` writes them
in whatever form the provider speaks. Nothing here knows a wire format.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Role = Literal["system", "user", "assistant"]


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Image:
    """An encoded image, already at most 1540 px on its longest side."""

    data: bytes = field(repr=False)
    mime: str  # image/png, image/jpeg, image/webp or image/gif
    width: int  # pixels
    height: int  # pixels


@dataclass(frozen=True, slots=True)
class Thinking:
    """A closed ``[THINK]…[/THINK]`` block, as in the Reasoning models' system prompt."""

    text: str


Part = Text | Image | Thinking


@dataclass(frozen=True, slots=True)
class ChatMessage:
    """One message. A message with a single Text part is sent as plain string content.

    ``reasoning`` (assistant only) is a reasoning model's earlier trace, kept in context
    before the answer as the model cards ask; it is encoded as a closed think block.
    """

    role: Role
    parts: tuple[Part, ...]
    reasoning: str = ""

    @classmethod
    def text(cls, role: Role, text: str, *, reasoning: str = "") -> ChatMessage:
        return cls(role, (Text(text),), reasoning)

    @property
    def images(self) -> tuple[Image, ...]:
        return tuple(p for p in self.parts if isinstance(p, Image))

    def plain_text(self) -> str:
        """The text parts joined as the template joins them (``"\\n\\n"``)."""
        return "\n\n".join(p.text for p in self.parts if isinstance(p, Text))
