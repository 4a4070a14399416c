"""Question quotas kept in Redis (QUOTA_REDIS_URL), shared by every web process."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import pytest
from django.test import Client

from assistant.models import Usage, Widget
from ingest.services import kb_get_or_create
from tests.conftest import REPO, free_port, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
SITE = "https://shop.example"


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory):
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.fail("redis-server is missing: apt-get install redis-server")
    port = free_port()
    folder = tmp_path_factory.mktemp("redis")
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
         "--dir", str(folder)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    import redis

    client = redis.Redis(port=port)
    deadline = time.monotonic() + 20
    while True:
        try:
            client.ping()
            break
        except redis.ConnectionError:
            if time.monotonic() > deadline:
                server.kill()
                raise
            time.sleep(0.1)
    client.close()
    yield f"redis://127.0.0.1:{port}/0"
    server.terminate()
    server.wait(10)


def test_widget_quotas_are_counted_in_redis_and_shared(redis_url, settings, ingest_text):
    settings.QUOTA_REDIS_URL = redis_url
    kb = kb_get_or_create(name="Help")
    ingest_text(kb, "returns.md", "# Returns\n\nWithin 30 days.")
    widget = Widget.objects.create(name="w", kb=kb, allowed_origins=SITE, daily_quota_per_ip=2)

    def ask():
        client = Client()
        token = client.post(
            f"/widget/api/{widget.public_id}/session", data="{}",
            content_type="application/json", HTTP_ORIGIN=SITE,
        ).json()["token"]  # fmt: skip
        return client.post(
            f"/widget/api/{widget.public_id}/chat",
            data=json.dumps({"question": "Returns?"}),
            content_type="application/json",
            HTTP_ORIGIN=SITE,
            HTTP_AUTHORIZATION=f"Bearer {token}",
        ).status_code

    assert [ask(), ask(), ask()] == [200, 200, 429]
    assert not Usage.objects.filter(scope=f"widget:{widget.pk}").exists()  # not in the DB
    # Another process (another web server) sees the same counts.
    script = (
        "from assistant.quotas import Limit, QuotaExceeded, quota_consume\n"
        "try:\n"
        f"    quota_consume(scope='widget:{widget.pk}', limits=[Limit('ip:127.0.0.1', 2)],"
        " message='x')\n"
        "    print('allowed')\n"
        "except QuotaExceeded:\n"
        "    print('refused')\n"
    )
    env = subprocess_env(QUOTA_REDIS_URL=redis_url)
    other = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", script],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert other.stdout.strip().splitlines()[-1] == "refused", other.stderr[-2000:]


def test_a_refused_question_is_not_counted(redis_url, settings):
    """All limits or none: a question refused by one limit does not use up the others."""
    from assistant.quotas import Limit, QuotaExceeded, quota_consume

    settings.QUOTA_REDIS_URL = redis_url
    limits = [Limit("visitor:v", 100), Limit("ip:192.0.2.1", 1)]
    quota_consume(scope="t", limits=limits, message="x")
    for _ in range(3):
        with pytest.raises(QuotaExceeded):
            quota_consume(scope="t", limits=limits, message="x")
    import redis

    client = redis.Redis.from_url(redis_url)
    counts = {k.decode().split(":")[3]: int(client.get(k)) for k in client.keys("docent:quota:t:*")}
    client.close()
    assert counts == {"visitor": 1, "ip": 1}
