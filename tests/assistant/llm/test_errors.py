"""Retry-After in every spelling a provider uses."""

from __future__ import annotations

import email.utils
import time

import httpx2
import pytest

from assistant.llm import retry_after_seconds


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "20"}, 20.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(headers, seconds):
    assert retry_after_seconds(httpx2.Headers(headers)) == seconds


def test_retry_after_as_an_http_date():
    when = email.utils.formatdate(time.time() + 90, usegmt=True)
    assert 85 <= retry_after_seconds(httpx2.Headers({"retry-after": when})) <= 91
