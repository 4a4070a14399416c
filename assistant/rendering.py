"""Model output -> safe HTML: Markdown rendered, sanitised, citations turned into links.

Citations are found in the parsed Markdown's text, never in its attributes or code: a
`[1]` inside a link title or a code span stays what it is. Links the model wrote itself
(an injected document can plant them) are marked as leading outside, or dropped.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from functools import lru_cache
from urllib.parse import urlsplit

import nh3
from markdown_it.token import Token

_CITATION = re.compile(r"\[(\d{1,3}(?:\s*[,;]\s*\d{1,3})*)\](?!\()")
_ALLOWED_TAGS = {
    "p", "br", "hr", "strong", "em", "code", "pre", "blockquote", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
    "a", "del", "sup", "span", "mark",
}  # fmt: skip
_ALLOWED_ATTRIBUTES = {
    "a": {"href", "title", "class", "data-source"},
    "span": {"class"},
    "sup": {"class"},
    "code": {"class"},
}


@lru_cache(maxsize=1)
def _markdown():
    from markdown_it import MarkdownIt

    # html=False: raw HTML in model output is shown as text, never interpreted.
    return MarkdownIt("commonmark", {"html": False, "linkify": False}).enable(
        ["table", "strikethrough"]
    )


def render_answer(text: str, source_urls: Sequence[str], *, outside_links: bool = True) -> str:
    """Sanitised HTML for an answer; [n] becomes a link to source n when it exists.

    Links that are not citations are kept, marked with where they lead, when
    `outside_links`; otherwise only their text is kept.
    """
    md = _markdown()
    tokens = md.parse(text)
    for token in tokens:
        if token.type == "inline" and token.children:
            token.children = _inline(token.children, source_urls, outside_links)
    return _clean(md.renderer.render(tokens, md.options, {}))


def cited_numbers(text: str) -> list[int]:
    """The citation numbers an answer uses, in the order it uses them (repeats kept).

    Found exactly where render_answer turns them into links: in text, not in code or in
    a link the model wrote.
    """
    numbers: list[int] = []
    for token in _markdown().parse(text):
        depth = 0
        for child in token.children or ():
            depth += {"link_open": 1, "link_close": -1}.get(child.type, 0)
            if child.type == "text" and depth == 0:
                for match in _CITATION.finditer(child.content):
                    numbers += [int(n) for n in re.split(r"\s*[,;]\s*", match.group(1))]
    return numbers


def render_markdown(text: str, *, mark_lines: Sequence[tuple[int, int]] = ()) -> str:
    """Sanitised HTML for a document's own Markdown (a page of a Markdown, Word or HTML
    upload, stored with its headings, lists and tables as Markdown). Links are kept only
    when they lead plainly to a web address, marked as leading outside.

    `mark_lines` ((first, last) ranges of 0-based line numbers of `text`, inclusive) wraps
    the text of every heading, paragraph, list item and table cell on them in ``<mark>``:
    the viewer's highlight of a cited passage. Code blocks are left unmarked.
    """
    md = _markdown()
    tokens = md.parse(text)
    for token in tokens:
        if token.type == "inline" and token.children:
            token.children = _inline(token.children, (), True, cite=False)
            if token.map and any(_overlaps(token.map, lines) for lines in mark_lines):
                token.children = [_html("<mark>"), *token.children, _html("</mark>")]
    return _clean(md.renderer.render(tokens, md.options, {}))


def _overlaps(block: list[int], lines: tuple[int, int]) -> bool:
    """Whether a token's line map [start, end) overlaps lines first..last (inclusive)."""
    return block[0] <= lines[1] and block[1] > lines[0]


def _clean(rendered: str) -> str:
    return nh3.clean(
        rendered,
        tags=_ALLOWED_TAGS,
        attributes=_ALLOWED_ATTRIBUTES,
        url_schemes={"http", "https", "mailto"},
        link_rel="noopener noreferrer nofollow",
    )


def _inline(
    children: list[Token], urls: Sequence[str], outside: bool, *, cite: bool = True
) -> list[Token]:
    out: list[Token] = []
    stack: list[Token | None] = []  # the open links: None for one that was dropped
    for token in children:
        if token.type == "link_open":
            kept = _outside_link(token) if outside and _host(token) else None
            stack.append(kept)
            if kept is not None:
                out.append(kept)
        elif token.type == "link_close":
            opened = stack.pop() if stack else None
            if opened is not None:
                out.append(token)
                host = html.escape(_host(opened))
                out.append(_html(f'<span class="outside-host">({host})</span>'))
        elif token.type == "text" and not stack and cite:
            out.extend(_citations(token.content, urls))
        else:
            out.append(token)
    return out


def _outside_link(token: Token) -> Token:
    token.attrSet("class", "outside")
    token.attrSet("title", f"Outside link, not from the knowledge base: {_host(token)}")
    return token


def _host(token: Token) -> str:
    """Where a link leads; "" for one that can't be told plainly (it is then kept as text).

    Relative links would resolve against whatever page shows the answer (in the widget,
    the customer's site), and ``https:host`` or a malformed host could be labelled as one
    place and lead to another.
    """
    href = str(token.attrGet("href") or "")
    try:
        parts = urlsplit(href)
        host = parts.hostname or ""
    except ValueError:
        return ""
    if parts.scheme == "mailto":
        return parts.path.rpartition("@")[2]
    return host if parts.scheme in ("http", "https") and parts.netloc else ""


def _citations(text: str, urls: Sequence[str]) -> list[Token]:
    out: list[Token] = []
    last = 0
    for match in _CITATION.finditer(text):
        out.append(_text(text[last : match.start()]))
        for raw in re.split(r"\s*[,;]\s*", match.group(1)):
            number = int(raw)
            if 1 <= number <= len(urls):
                attrs: dict[str, str | int | float] = {
                    "class": "cite",
                    "href": urls[number - 1],
                    "title": f"Source {number}",
                    "data-source": str(number),
                }
                out += [Token("link_open", "a", 1, attrs=attrs), _text(f"[{number}]")]
                out.append(Token("link_close", "a", -1))
            else:
                out.append(_text(f"[{number}]"))
        last = match.end()
    out.append(_text(text[last:]))
    return [t for t in out if t.type != "text" or t.content]


def _text(content: str) -> Token:
    token = Token("text", "", 0)
    token.content = content
    return token


def _html(markup: str) -> Token:
    token = Token("html_inline", "", 0)
    token.content = markup
    return token
