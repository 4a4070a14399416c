"""The one rule for a widget's allowed sites: what the admin saves is what a browser sends."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from assistant.origins import origin_normalise, origin_of_request, origins_normalise


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("https://www.example.com", "https://www.example.com"),
        ("  HTTPS://Shop.Example.COM/  ", "https://shop.example.com"),
        ("https://shop.example:443", "https://shop.example"),
        ("http://shop.example:80/", "http://shop.example"),
        ("http://127.0.0.2:8099", "http://127.0.0.2:8099"),
        ("https://shop.example:8443", "https://shop.example:8443"),
        ("http://[::1]:8000", "http://[::1]:8000"),
        ("https://bücher.example", "https://xn--bcher-kva.example"),
    ],
)
def test_an_origin_is_kept_as_a_browser_sends_it(raw, normal):
    assert origin_normalise(raw) == normal


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("127.0.0.2:8099", "127.0.0.2:8099 needs a scheme: did you mean http://127.0.0.2:8099?"),
        (
            "www.example.com",
            "www.example.com needs a scheme: did you mean https://www.example.com?",
        ),
        ("ftp://files.example", "ftp://files.example: only http:// and https:// pages"),
        ("https://shop.example/help", "is a page, not a site: did you mean https://shop.example?"),
        ("https://shop.example/?a=1", "did you mean https://shop.example?"),
        ("https://shop.example#top", "did you mean https://shop.example?"),
        ("https://shop.example:99999", "a port that is not a number from 1 to 65535"),
        ("https://", "needs a host"),
        ("https://*.example.com", "wildcards are not supported"),
        ("https://me:pw@shop.example", "has a user name in it: did you mean https://shop.example?"),
    ],
)
def test_a_bad_origin_says_what_is_wrong_and_what_was_meant(raw, message):
    with pytest.raises(ValidationError) as caught:
        origin_normalise(raw)
    assert message in caught.value.messages[0]


def test_a_list_is_normalised_deduplicated_and_every_bad_line_reported():
    text = "https://Shop.example/\n\nhttps://shop.example:443\nhttp://127.0.0.1:8000"
    assert origins_normalise(text) == ["https://shop.example", "http://127.0.0.1:8000"]
    with pytest.raises(ValidationError) as caught:
        origins_normalise("shop.example\nhttps://ok.example\nhttps://ok.example/path")
    assert len(caught.value.messages) == 2
    assert "shop.example needs a scheme" in caught.value.messages[0]
    assert "https://ok.example/path is a page" in caught.value.messages[1]


def test_a_request_origin_is_compared_in_the_same_form():
    assert origin_of_request("https://SHOP.example:443") == "https://shop.example"
    assert origin_of_request("null") is None  # sandboxed frames and file:// pages
    assert origin_of_request(None) is None
    assert origin_of_request("https://shop.example/path") is None
