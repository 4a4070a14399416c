"""Abuse load test: quotas, limits and sign-in throttling against the real app, on loopback.

The app runs as deployed behind a proxy: uvicorn (which trusts 127.0.0.1 as a proxy and
resolves X-Forwarded-For from the right), one public knowledge base, a widget, and the
stand-in model. Every request goes to 127.0.0.1; about 150 in all; it stops by itself.

1. Rotation: clients that drop their session and visitor token every time and rotate the
   first X-Forwarded-For hop (what a proxy appending to the header passes on) ask the
   widget and the chat page. Goal: no more answers than the per-IP quota.
2. Large images over quota: 8 x 16-megapixel PNGs per request, after the quota is spent.
   Goal: each answered 429 in under 50 ms; printed beside one such request within quota.
3. Password guessing: a known user signs in from their address; an attacker guesses from
   another. Goal: refused within 10 attempts (then even the right password is refused
   there), while the owner still signs in from their own address.

    .venv/bin/python bench/abuse.py

Exit status 1 if a goal is not met, 2 if the test could not run.
"""

from __future__ import annotations

import base64
import io
import re
import sys
import time

from _app import Docent, FakeLLM, exit_on_sigterm, http_client
from _measure import percentile, progress

WIDGET_PER_IP, WIDGET_PER_VISITOR, PAGE_PER_IP = 10, 3, 8
ORIGIN = "https://shop.example"
PASSWORD = "correct horse battery staple"


def big_png_url(seed: int) -> str:
    """A 4000 x 4000 PNG (16 megapixels) of noise stripes: small to send, slow to decode."""
    from PIL import Image

    row = Image.effect_noise((4000, 1), 64 + seed).convert("L")
    image = row.resize((4000, 4000), Image.Resampling.NEAREST)
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=False)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def setup(app: Docent) -> str:
    script = (
        "from assistant.models import Widget; from ingest.models import KnowledgeBase;"
        "from django.contrib.auth import get_user_model;"
        f"kb = KnowledgeBase.objects.get(slug={app.slug!r});"
        f"w = Widget.objects.create(name='Shop', kb=kb, allowed_origins={ORIGIN!r},"
        f" daily_quota_per_ip={WIDGET_PER_IP}, daily_quota_per_visitor={WIDGET_PER_VISITOR});"
        f"get_user_model().objects.create_user('ada', password={PASSWORD!r});"
        "print(w.public_id)"
    )
    return app._manage("shell", "-c", script).splitlines()[-1].strip()


def widget_ask(app: Docent, widget: str, forwarded: str, images: list[str] | None = None):
    """(status, seconds of the chat request) for a fresh visitor behind `forwarded`."""
    headers = {"Origin": ORIGIN, "X-Forwarded-For": forwarded}
    with http_client(timeout=120, headers=headers) as client:
        token = client.post(f"{app.url}/widget/api/{widget}/session", json={}).json()["token"]
        body = {"question": "How do returns work?", "images": images or []}
        started = time.perf_counter()
        response = client.post(
            f"{app.url}/widget/api/{widget}/chat",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
        )
        response.read()
        return response.status_code, time.perf_counter() - started


def page_ask(app: Docent, forwarded: str) -> int:
    with http_client(timeout=60, headers={"X-Forwarded-For": forwarded}) as client:
        page = client.get(f"{app.url}/?kb={app.slug}")
        csrf = client.cookies.get("csrftoken", "")
        response = client.post(
            f"{app.url}/chat/stream",
            data={"kb": app.slug, "question": "How do returns work?"},
            headers={"X-CSRFToken": csrf, "Referer": str(page.url)},
        )
        response.read()
        return response.status_code


def sign_in(app: Docent, address: str, password: str) -> str:
    """ "ok", "throttled" or "wrong": how one sign-in attempt from `address` ended."""
    with http_client(timeout=30, headers={"X-Forwarded-For": address}) as client:
        form = client.get(f"{app.url}/accounts/login/").text
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form).group(1)
        response = client.post(
            f"{app.url}/accounts/login/",
            data={"username": "ada", "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{app.url}/accounts/login/"},
        )
        if response.status_code == 302:
            return "ok"
        return "throttled" if "Too many failed sign-ins" in response.text else "wrong"


def main() -> int:
    exit_on_sigterm()
    llm = FakeLLM(delay_per_token=0).start()
    app = Docent(
        llm=llm,
        CHAT_QUOTA_PER_IP=str(PAGE_PER_IP),
        CHAT_QUOTA_PER_SESSION="100",
        WIDGET_VISITORS_PER_IP="1000",  # rotation is bounded by the IP quota alone here
    )
    try:
        app.prepare()
        widget = setup(app)
        app.start(worker=False)
    except Exception as exc:
        print(f"could not start: {exc}", file=sys.stderr)
        app.cleanup()
        llm.stop()
        return 2
    failures: list[str] = []
    try:
        progress("1. rotated sessions and forwarded headers")
        real = "203.0.113.9"
        widget_ok = sum(widget_ask(app, widget, f"10.{n}.0.1, {real}")[0] == 200 for n in range(40))
        page_ok = sum(page_ask(app, f"10.{n}.0.2, 203.0.113.10") == 200 for n in range(30))
        print(f"widget: {widget_ok} of 40 rotated requests answered (per-IP quota {WIDGET_PER_IP})")
        print(f"chat page: {page_ok} of 30 rotated requests answered (per-IP quota {PAGE_PER_IP})")
        if widget_ok != WIDGET_PER_IP or page_ok != PAGE_PER_IP:
            failures.append("a quota was exceeded or not reached")

        progress("2. large images")
        images = [big_png_url(n) for n in range(8)]
        size = sum(len(i) for i in images)
        inside = "198.51.100.7"
        status, within = widget_ask(app, widget, inside, images)
        times = []
        for _ in range(20):
            status_over, seconds = widget_ask(app, widget, f"9.9.9.9, {real}", images)
            if status_over != 429:
                failures.append(f"an over-quota request got {status_over}")
            times.append(seconds)
        p50, worst = percentile(times, 50), max(times)
        print(
            f"8 x 16 MP PNGs ({size / 1024:.0f} KB of base64): within quota {within * 1000:.0f} ms "
            f"(HTTP {status}); over quota p50 {p50 * 1000:.1f} ms, max {worst * 1000:.1f} ms "
            f"over 20; ratio {within / p50:.0f}x"
        )
        if worst >= 0.05:
            failures.append(f"an over-quota request took {worst * 1000:.0f} ms")

        progress("3. password guessing")
        owner, attacker = "192.0.2.10", "198.51.100.66"
        assert sign_in(app, owner, PASSWORD) == "ok", "the owner could not sign in at all"
        checked = 0
        for attempt in range(1, 31):
            if sign_in(app, attacker, f"guess-{attempt}") == "throttled":
                break
            checked += 1
        right_there = sign_in(app, attacker, PASSWORD)
        owner_then = sign_in(app, owner, PASSWORD)
        print(
            f"guessing: {checked} wrong passwords were checked, then every attempt from the "
            f"attacker's address was refused (the right password: {right_there}); the owner, "
            f"from their address: {owner_then}"
        )
        if checked > 10 or right_there == "ok" or owner_then != "ok":
            failures.append("sign-in throttling did not hold")
    finally:
        app.cleanup()
        llm.stop()
    for failure in failures:
        print(f"FAILED: {failure}")
    print("goal met" if not failures else "goal NOT met")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
