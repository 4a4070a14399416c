"""Model output -> safe HTML: Markdown rendered, sanitised, citations turned into links."""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

import nh3

_CITATION = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\](?!\()")
_PLACEHOLDER = re.compile(r"\u27e6cite:(\d{1,3})\u27e7")
_ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
    "a", "del", "sup", "span",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {"a": {"href", "title", "class"}, "span": {"class"}, "sup": {"class"}}


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    # html=False: raw HTML in model output is shown as text, never interpreted.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


def render_answer(text: str, source_urls: Sequence[str]) -> str:
    """Sanitised HTML for an answer; [n] becomes a link to source n when it exists."""

    def mark(match: re.Match) -> str:
        numbers = re.split(r"\s*[,;]\s*", match.group(1))
        return "".join(f"\u27e6cite:{n}\u27e7" for n in numbers)

    rendered = _markdown().render(_CITATION.sub(mark, text))

    def link(match: re.Match) -> str:
        number = int(match.group(1))
        if 1 <= number <= len(source_urls):
            return f'<a class="cite" href="{source_urls[number - 1]}" title="Source {number}">[{number}]</a>'
        return f"[{number}]"

    rendered = _PLACEHOLDER.sub(link, rendered)
    return nh3.clean(
        rendered,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )
