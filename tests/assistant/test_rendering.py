"""Model output to HTML: Markdown rendered, raw HTML never interpreted, citations linked."""

from __future__ import annotations

from assistant.rendering import render_answer


def test_citations_link_to_their_source_and_unknown_numbers_stay_text():
    html = render_answer("Refill the tray [1], then press OK [2][7].", ["/d/1", "/d/2"])
    assert 'class="cite" href="/d/1" title="Source 1"' in html and ">[1]</a>" in html
    assert 'href="/d/2"' in html and "[7]" in html and 'href="/d/7"' not in html


def test_grouped_citations_each_link():
    html = render_answer("See [1, 2].", ["/a", "/b"])
    assert 'href="/a"' in html and 'href="/b"' in html


def test_markdown_renders_and_raw_html_is_shown_as_text():
    html = render_answer("**Bold** and `code`\n\n- one\n- two\n\n<script>alert(1)</script>", [])
    assert (
        "<strong>Bold</strong>" in html and "<code>code</code>" in html and "<li>one</li>" in html
    )
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_links_only_with_safe_schemes_and_no_referrer():
    html = render_answer("[x](javascript:alert(1)) [y](https://example.com)", [])
    assert 'href="javascript' not in html  # shown as text, never a link
    assert 'href="https://example.com"' in html and 'rel="noopener noreferrer nofollow"' in html


def test_a_markdown_link_target_is_not_mistaken_for_a_citation():
    html = render_answer("[1](https://example.com/page)", ["/d/1"])
    assert 'href="/d/1"' not in html
