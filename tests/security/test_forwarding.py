"""The client's address behind a proxy: forged X-Forwarded-For entries change nothing.

Runs the app as deployed behind nginx: uvicorn with --proxy-headers and the proxy
(127.0.0.1) trusted, and the old example's TRUST_X_FORWARDED_FOR=true. A proxy that
appends (nginx's $proxy_add_x_forwarded_for) forwards "<whatever the client sent>,
<the client's real address>"; the requests below are what such a proxy passes on.
"""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from assistant.models import Widget
from ingest.models import KnowledgeBase
from ingest.services import kb_get_or_create
from tests.conftest import REPO, free_port, subprocess_env, wait_for_web

pytestmark = pytest.mark.django_db(transaction=True)
SITE = "https://shop.example"


@pytest.fixture(scope="module")
def proxied(django_db_setup, django_db_blocker, tmp_path_factory):
    env = subprocess_env(LLM_BASE_URL="", TRUST_X_FORWARDED_FOR="true")
    port = free_port()
    log_path = tmp_path_factory.mktemp("proxied") / "web.log"
    command = ["-m", "uvicorn", "assistant.asgi:application", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--proxy-headers", "--forwarded-allow-ips", "127.0.0.1"]
    with open(log_path, "w") as log:
        web = subprocess.Popen(
            [sys.executable, *command], cwd=REPO, env=env, stdout=log, stderr=log
        )
        url = f"http://127.0.0.1:{port}"
        try:
            wait_for_web(url, web, log_path)
            yield url
        finally:
            web.terminate()
            web.wait(15)


@pytest.fixture
def widget(ingest_text):
    kb = kb_get_or_create(name="Help")
    KnowledgeBase.objects.filter(pk=kb.pk).update(visibility=KnowledgeBase.Visibility.PUBLIC)
    ingest_text(kb, "returns.md", "# Returns\n\nReturns are accepted within 30 days.")
    return Widget.objects.create(
        name="Shop", kb=kb, allowed_origins=SITE, daily_quota_per_ip=5, daily_quota_per_visitor=100
    )


def ask(url: str, widget: Widget, forwarded: str) -> int:
    headers = {"Origin": SITE, "X-Forwarded-For": forwarded}
    with httpx.Client(base_url=url, headers=headers, timeout=60) as client:
        session = client.post(f"/widget/api/{widget.public_id}/session", json={})
        assert session.status_code == 200, session.text
        token = session.json()["token"]
        answer = client.post(
            f"/widget/api/{widget.public_id}/chat",
            json={"question": "Returns?"},
            headers={"Authorization": f"Bearer {token}"},
        )
        return answer.status_code


def test_rotating_the_first_hop_does_not_escape_the_ip_quota(proxied, widget):
    """Before: the leftmost entry counted, so a client rotating it asked 8 times of 5."""
    statuses = [ask(proxied, widget, f"10.0.0.{n}, 203.0.113.9") for n in range(8)]
    assert statuses == [200] * 5 + [429] * 3


def test_naming_someone_else_as_the_first_hop_does_not_lock_them_out(proxied, widget):
    """Before: five requests naming a victim's address as the first hop spent its quota."""
    victim = "198.51.100.20"
    assert [ask(proxied, widget, f"{victim}, 203.0.113.66") for _ in range(6)][-1] == 429
    assert ask(proxied, widget, victim) == 200  # the victim, through the same proxy
