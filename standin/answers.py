"""The stand-in's default answer: deterministic, cited, built from the request's sources."""

from __future__ import annotations

import re
from typing import Any

NO_ANSWER = "I cannot find the answer in the provided sources."
_XML_SOURCE = re.compile(
    r"<(source|document|doc)\b[^>]*?\b(?:id|index|n|number)\s*=\s*[\"']?(\d+)[\"']?[^>]*>(.*?)</\1\s*>",
    re.S | re.I,
)
_NUMBERED = re.compile(
    r"^[ \t]*(?:#{1,6}[ \t]*)?(?:(?:source|document)[ \t]*)?\[(\d+)\][:.)]?[ \t]*(.*?)"
    r"(?=^[ \t]*(?:#{1,6}[ \t]*)?(?:(?:source|document)[ \t]*)?\[\d+\]|\Z)",
    re.S | re.M | re.I,
)
_LABELLED = re.compile(
    r"^[ \t]*(?:source|document)[ \t]+(\d+)[ \t]*[:.\-][ \t]*(.*?)"
    r"(?=^[ \t]*(?:source|document)[ \t]+\d+|\Z)",
    re.S | re.M | re.I,
)
_SENTENCE = re.compile(r"[^.!?\n]*?\w[^.!?\n]*[.!?]")


def find_sources(text: str) -> list[tuple[int, str]]:
    """Numbered sources: ``<source id="1">..</source>``, ``[1] ..`` or ``Source 1: ..``."""
    for pattern in (_XML_SOURCE, _NUMBERED, _LABELLED):
        found = [
            (int(m.group(m.re.groups - 1)), m.group(m.re.groups).strip())
            for m in pattern.finditer(text)
        ]
        found = [(n, body) for n, body in found if body]
        if found:
            return sorted(found, key=lambda item: item[0])
    return []


def default_answer(messages: Any) -> str:
    """``"<first sentence of the first source> [n]."``, or :data:`NO_ANSWER` without sources."""
    text = ""
    if isinstance(messages, list):
        for message in reversed(messages):
            if isinstance(message, dict) and message.get("role") == "user":
                text = _text_of(message.get("content"))
                break
    sources = find_sources(text)
    if not sources:
        return NO_ANSWER
    number, body = sources[0]
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    if len(lines) > 1 and not re.search(r"[.!?]$", lines[0]):
        lines = lines[1:]  # a title / "file.pdf, page 3" line
    body = " ".join(lines)
    match = _SENTENCE.search(body)
    sentence = match.group(0).strip() if match else body[:200].strip()
    stop = sentence[-1] if sentence[-1] in ".!?" else "."
    return f"{sentence.rstrip('.!?')} [{number}]{stop}"


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n\n".join(
            str(p.get("text", ""))
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    return ""
