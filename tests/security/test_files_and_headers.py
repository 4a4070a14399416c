"""Uploaded files are never served as HTML; every response carries the security headers.

- Files: HTML, SVG with script, text holding markup, a PDF named .html, images, a GIF/HTML
  polyglot and a hostile file name are uploaded through the API and fetched back from
  ``/documents/<pk>/file``; image assets from ``/assets/<pk>``. Only PDFs and raster images
  may be inline (under their own type); everything else is an ``application/octet-stream``
  attachment. All carry ``nosniff`` and a CSP with ``sandbox`` and no script.
- Headers: every route (the test fails when a new route is not in the table) answers with
  a CSP that allows only Docent's own scripts (no ``'unsafe-inline'``/``'unsafe-eval'``),
  ``frame-ancestors 'none'``, ``X-Frame-Options: DENY``, ``nosniff`` and
  ``Referrer-Policy: same-origin``; and no Docent page carries inline script at all.
- Deployment: ``manage.py check --deploy --fail-level WARNING`` runs as a subprocess with the
  settings of ``deploy/docent.env.example`` (a long random SECRET_KEY, a throwaway DATA_DIR and
  SQLite so nothing leaves the machine) and is clean; weakening any one of those settings
  makes it fail, so the clean run means something.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message as MimeHeaders
from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.base_user import AbstractBaseUser
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from assistant.keys import api_key_create
from assistant.models import Conversation, Message, Widget
from assistant.widgets import session_start, session_verify
from ingest.models import Asset, Document, KnowledgeBase
from ingest.services import document_create, kb_get_or_create, kb_update
from tests import factories

from .support import SITE, body_of

pytestmark = pytest.mark.django_db(transaction=True)

REPO = Path(__file__).resolve().parents[2]
SCRIPT = b"<script>window.__xss=1</script>"
#: A name that tries to end the Content-Disposition parameter and start another.
HOSTILE_NAME = 'q"; filename="evil.html'

# name -> (makes the bytes, the type it may be shown inline as, or None: download only)
UPLOADS: dict[str, tuple[Callable[[], bytes], str | None]] = {
    "page.html": (
        lambda: b"<!doctype html><html><body><h1>Hi</h1>" + SCRIPT + b"</body></html>",
        None,
    ),
    "drawing.svg": (
        lambda: (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
            b'onload="window.__xss=1">' + SCRIPT + b"</svg>"
        ),
        None,
    ),
    "notes.txt": (
        lambda: b"Plain notes <img src=x onerror=window.__xss=1> and " + SCRIPT,
        None,
    ),
    "readme.txt": (lambda: b"<html><body>" + SCRIPT + b"</body></html>", None),
    "photo.png": (lambda: b"<html><body>" + SCRIPT + b"</body></html>", None),
    "guide.md": (lambda: b"# Guide\n\n<iframe srcdoc='<b>x</b>'></iframe>" + SCRIPT, None),
    "invoice.html": (lambda: factories.text_pdf(["Invoice 2231: total 14 EUR"]), "application/pdf"),
    "shot.png": (lambda: factories.text_image(["Settings > Reset"]), "image/png"),
    "anim.gif": (lambda: factories.text_image(["frame one"], fmt="GIF"), "image/gif"),
    "polyglot.gif": (lambda: b"GIF89a\x01\x00\x01\x00" + SCRIPT, "image/gif"),
    HOSTILE_NAME: (lambda: b"<html>" + SCRIPT + b"</html>", None),
}
DANGEROUS_TYPES = ("html", "xml", "svg", "javascript", "text/")


@dataclass
class Site:
    admin: AbstractBaseUser
    client: Client
    kb: KnowledgeBase
    docs: dict[str, Document]
    contents: dict[str, bytes]
    assets: dict[str, Asset]
    widget: Widget
    token: str
    widget_conversation: Conversation
    conversation: Conversation
    answer: Message

    def _cited_source(self) -> dict:
        """The first upload as an answer's source, with one chunk to cite."""
        from ingest.models import Chunk

        document = next(iter(self.docs.values()))
        chunk, _ = Chunk.objects.get_or_create(
            document=document,
            ordinal=0,
            defaults={"kb": self.kb, "vector_id": "cite-test", "text": "Cited.", "token_count": 2},
        )
        return {"document_id": document.pk, "pages": [], "chunk_ids": [chunk.pk]}

    @property
    def citation_path(self) -> str:
        """A widget citation link to the first upload, as an answer would carry it."""
        from assistant.widgets import WidgetSession, citation_link

        source = self._cited_source()
        return citation_link(session=WidgetSession(self.widget, SITE, "v"), source=source)

    @property
    def key_citation_path(self) -> str:
        """An API key's citation link to the first upload, as an API answer would carry it."""
        from assistant.models import ApiKey
        from assistant.presenters import api_link

        return api_link(base="", key_id=ApiKey.objects.get().pk)(self._cited_source())

    @property
    def pdf_page_path(self) -> str:
        """The page image of a widget citation to page 1 of the PDF upload."""
        from assistant.widgets import WidgetSession, citation_link
        from ingest.models import Chunk

        document = self.docs["invoice.html"]  # a PDF, whatever its name says
        chunk, _ = Chunk.objects.get_or_create(
            document=document,
            ordinal=0,
            defaults={
                "kb": self.kb,
                "vector_id": "pdf",
                "text": "Invoice.",
                "page": 1,
                "token_count": 2,
            },
        )
        source = {"document_id": document.pk, "pages": [1], "chunk_ids": [chunk.pk]}
        link = citation_link(session=WidgetSession(self.widget, SITE, "v"), source=source)
        return link.split("#")[0].rstrip("/") + "/pages/1.png"


def upload(client: Client, kb: KnowledgeBase, name: str, data: bytes, write_token: str) -> Document:
    """Upload through the API, as a client would; names a multipart header can't carry go
    through the same service directly."""
    if '"' in name:
        return document_create(kb=kb, filename=name, content=ContentFile(data)).document
    response = client.post(
        f"/api/kbs/{kb.slug}/documents",
        {"files": [SimpleUploadedFile(name, data, "application/octet-stream")]},
        HTTP_AUTHORIZATION=f"Bearer {write_token}",
    )
    assert response.status_code == 201, response.content
    (result,) = response.json()
    return Document.objects.get(pk=result["document"]["id"])


def make_asset(document: Document, name: str, data: bytes, mime_type: str) -> Asset:
    stored = default_storage.save(f"kb/{document.kb_id}/assets/{name}", ContentFile(data))
    return Asset.objects.create(
        kb=document.kb,
        document=document,
        source=Asset.Source.UPLOAD,
        file=stored,
        mime_type=mime_type,
        width=10,
        height=10,
        sha256="0" * 64,
    )


@pytest.fixture
def site(transactional_db, llm_server) -> Site:
    admin = get_user_model().objects.create_user(
        "boss", password="pw-boss-123", is_staff=True, is_superuser=True
    )
    kb = kb_update(kb=kb_get_or_create(name="Files Desk"), visibility="members")
    _, write_token = api_key_create(name="w", knowledge_bases=[kb], can_write=True)
    api = Client()
    contents = {name: make() for name, (make, _) in UPLOADS.items()}
    docs = {name: upload(api, kb, name, data, write_token) for name, data in contents.items()}
    for name, document in docs.items():
        assert document.file, f"{name} was rejected: {document.error}"
    # The PDF as ingest leaves it (no worker runs here): its page can be shown as an image.
    Document.objects.filter(pk=docs["invoice.html"].pk).update(page_count=1, status="ready")
    docs["invoice.html"].refresh_from_db()
    png = docs["shot.png"]
    assets = {
        # What the pipeline stores: re-encoded PNG/JPEG.
        "image/png": make_asset(png, "a.png", factories.text_image(["asset"]), "image/png"),
        # Rows that should never exist, to show the endpoint itself is safe.
        "text/html": make_asset(png, "b.html", b"<html>" + SCRIPT + b"</html>", "text/html"),
        "image/svg+xml": make_asset(
            png,
            "c.svg",
            b'<svg xmlns="http://www.w3.org/2000/svg">' + SCRIPT + b"</svg>",
            "image/svg+xml",
        ),
    }
    widget = Widget.objects.create(name="Help", kb=kb, allowed_origins=SITE)
    token, _ = session_start(widget=widget, origin=SITE, ip="127.0.0.1")
    owner = session_verify(widget=widget, token=token, origin=SITE).owner_key
    widget_conversation = Conversation.objects.create(kb=kb, owner_key=owner, title="w")
    Message.objects.create(conversation=widget_conversation, role="assistant", content="so.")
    conversation = Conversation.objects.create(kb=kb, user=admin, title="how?")
    shot = default_storage.save(
        f"conversations/{conversation.uid}/1-1.png", ContentFile(factories.text_image(["x"]))
    )
    Message.objects.create(conversation=conversation, role="user", content="how?", images=[shot])
    answer = Message.objects.create(conversation=conversation, role="assistant", content="so.")
    client = Client()
    client.force_login(admin)
    return Site(
        admin, client, kb, docs, contents, assets, widget, token, widget_conversation,
        conversation, answer,
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# uploaded files
# --------------------------------------------------------------------------------------------


def csp_directives(header: str) -> dict[str, list[str]]:
    directives: dict[str, list[str]] = {}
    for part in header.split(";"):
        words = part.split()
        if words:
            directives.setdefault(words[0].lower(), words[1:])
    return directives


def disposition(response) -> tuple[str, str | None]:
    """(inline | attachment, the file name) of a Content-Disposition header."""
    headers = MimeHeaders()
    headers["Content-Disposition"] = response["Content-Disposition"]
    kind = headers.get_content_disposition()
    return kind, headers.get_filename()


def assert_file_is_safe(response, data: bytes, inline_as: str | None, filename: str) -> None:
    assert response.status_code == 200, response.status_code
    assert body_of(response) == data  # the stored bytes, unchanged
    content_type = response["Content-Type"].split(";")[0].strip().lower()
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    policy = csp_directives(response["Content-Security-Policy"])
    assert "sandbox" in policy and policy["sandbox"] == [], policy  # no allow-scripts etc.
    assert policy.get("default-src") == ["'none'"], policy
    assert policy.get("script-src", ["'none'"]) == ["'none'"], policy
    assert policy.get("frame-ancestors") == ["'none'"], policy
    kind, sent_name = disposition(response)
    if inline_as is None:
        assert content_type == "application/octet-stream", content_type
        assert kind == "attachment", response["Content-Disposition"]
    else:
        assert content_type == inline_as, content_type
        assert kind in ("inline", "attachment"), response["Content-Disposition"]
    assert not any(word in content_type for word in DANGEROUS_TYPES), content_type
    if filename:
        assert sent_name == filename, response["Content-Disposition"]


@pytest.mark.parametrize("name", list(UPLOADS))
def test_uploaded_files_are_never_served_as_html(site, name):
    document = site.docs[name]
    inline_as = UPLOADS[name][1]
    response = site.client.get(f"/documents/{document.pk}/file")
    assert_file_is_safe(response, site.contents[name], inline_as, document.filename)
    # What was detected is what decides, never the name: the PDF named .html is a PDF, the
    # "photo.png" holding HTML is not an image.
    if inline_as is None:
        assert document.mime_type not in {"application/pdf", "image/png", "image/gif"}
    else:
        assert document.mime_type == inline_as


def test_a_hostile_file_name_stays_one_quoted_parameter(site):
    """The name can't close the quoted filename and add a parameter of its own."""
    response = site.client.get(f"/documents/{site.docs[HOSTILE_NAME].pk}/file")
    body_of(response)
    assert site.docs[HOSTILE_NAME].filename == HOSTILE_NAME
    assert disposition(response) == ("attachment", HOSTILE_NAME)


@pytest.mark.parametrize("mime_type", ["image/png", "text/html", "image/svg+xml"])
def test_image_assets_are_never_served_as_html(site, mime_type):
    asset = site.assets[mime_type]
    with default_storage.open(asset.file.name, "rb") as fh:
        data = fh.read()
    response = site.client.get(f"/assets/{asset.pk}")
    assert_file_is_safe(response, data, "image/png" if mime_type == "image/png" else None, "")


def test_files_need_read_access(site):
    """The safe headers are no substitute for access control: strangers get 404."""
    stranger = Client()
    stranger.force_login(get_user_model().objects.create_user("x", password="pw-x-123456"))
    assert stranger.get(f"/documents/{site.docs['page.html'].pk}/file").status_code == 404
    assert stranger.get(f"/assets/{site.assets['image/png'].pk}").status_code == 404


def test_a_rejected_upload_keeps_no_file_to_serve(site):
    rejected = document_create(
        kb=site.kb, filename="run.html", content=ContentFile(b"\x7fELF\x02\x01" + bytes(64))
    ).document
    assert rejected.status == "failed" and not rejected.file
    assert site.client.get(f"/documents/{rejected.pk}/file").status_code == 404


# --------------------------------------------------------------------------------------------
# security headers on every route
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    method: str
    path: str
    status: int
    data: object = None
    json: bool = False
    headers: dict | None = None
    client: str = "admin"  # admin | anon
    file: bool = False  # serves an uploaded file (its own sandbox CSP)


def calls(s: Site) -> list[Call]:
    doc = s.docs["guide.md"].pk
    conv = s.conversation.uid
    widget = {"HTTP_ORIGIN": SITE, "HTTP_AUTHORIZATION": f"Bearer {s.token}"}
    w = s.widget.public_id
    widget_answer = s.widget_conversation.messages.get(role="assistant").pk
    kb = s.kb.slug
    return [
        Call("GET", "/", 200),
        Call("GET", f"/?kb={kb}&c={conv}", 200),
        Call("GET", "/", 200, client="anon"),
        Call("POST", "/chat/stream", 200, {"kb": kb, "question": "How do I reset it?"}),
        Call("GET", "/chat/stream", 405),
        Call("POST", f"/messages/{s.answer.pk}/feedback", 200, {"rating": "1"}),
        Call("GET", f"/kb/{kb}/conversations", 200),
        Call("GET", f"/kb/{kb}/conversations?q=how", 200),
        Call("POST", f"/kb/{kb}/conversations/{conv}/rename", 200, {"title": "how?"}),
        Call("POST", f"/kb/{kb}/conversations/{uuid.UUID(int=0)}/delete", 404),
        Call("GET", f"/kb/{kb}/review/", 200),
        Call("GET", f"/kb/{kb}/review/{conv}/", 200),
        Call("GET", f"/kb/{kb}/analytics/", 200),
        Call("GET", f"/kb/{kb}/analytics.csv", 200),
        Call("GET", "/kbs/", 200),
        Call("GET", "/kbs/", 302, client="anon"),
        Call("GET", f"/kb/{kb}/settings/", 200),
        Call("GET", f"/kb/{kb}/documents/", 200),
        Call("GET", f"/documents/{doc}/", 200),
        Call("GET", f"/documents/{doc}/", 404, client="anon"),
        Call("GET", f"/documents/{doc}/file", 200, file=True),
        Call("GET", f"/assets/{s.assets['image/png'].pk}", 200, file=True),
        Call("GET", f"/documents/{s.docs['invoice.html'].pk}/pages/1.png", 200, file=True),
        Call("GET", s.pdf_page_path, 200, client="anon", file=True),
        Call("GET", f"/messages/{s.answer.pk}", 200),
        Call("GET", f"/messages/{s.conversation.messages.filter(role='user').first().pk}/images/1", 200, file=True),
        Call("GET", "/accounts/login/", 200, client="anon"),
        Call("POST", "/accounts/logout/", 302, client="anon"),
        Call("GET", "/accounts/password/change/", 200),
        Call("GET", "/accounts/password/change/done/", 200),
        Call("GET", "/accounts/password/reset/", 200, client="anon"),
        Call("POST", "/accounts/password/reset/", 302, {"email": "nobody@example.com"}, client="anon"),
        Call("GET", "/accounts/password/reset/sent/", 200, client="anon"),
        Call("GET", "/accounts/password/reset/MQ/forged-token/", 200, client="anon"),
        Call("GET", "/accounts/password/reset/done/", 200, client="anon"),
        Call("POST", f"/widget/api/{w}/session", 200, "{}", json=True, headers={"HTTP_ORIGIN": SITE}),
        Call("OPTIONS", f"/widget/api/{w}/chat", 200, headers={"HTTP_ORIGIN": SITE, "HTTP_ACCESS_CONTROL_REQUEST_METHOD": "POST"}),
        Call("POST", f"/widget/api/{w}/chat", 200, '{"question": "How do I reset it?"}', json=True, headers=widget, client="anon"),
        Call("GET", f"/widget/api/{w}/conversations/{s.widget_conversation.uid}", 200, headers=widget, client="anon"),
        Call("POST", f"/widget/api/{w}/messages/{widget_answer}/feedback", 200, '{"rating": 1}', json=True, headers=widget, client="anon"),
        Call("GET", s.citation_path, 200, client="anon"),
        Call("GET", s.key_citation_path, 200, client="anon"),
        Call("GET", s.key_citation_path + "pages/1.png", 404, client="anon"),
        Call("GET", "/api/openapi.json", 200),
        Call("GET", "/api/kbs", 200),
        Call("POST", "/api/kbs", 201, '{"name": "Made by header test"}', json=True),
        Call("GET", f"/api/kbs/{kb}", 200),
        Call("GET", f"/api/kbs/{kb}/documents", 200),
        Call("POST", f"/api/kbs/{kb}/documents/bulk", 200, '{"action": "reindex", "ids": [0]}', json=True),
        Call("GET", f"/api/documents/{doc}", 200),
        Call("GET", f"/api/documents/{doc}/chunks", 200),
        Call("POST", f"/api/documents/{s.docs['notes.txt'].pk}/reindex", 409),
        Call("POST", f"/api/documents/{s.docs['notes.txt'].pk}/cancel", 200),  # still queued
        Call("POST", f"/api/kbs/{kb}/chat", 200, '{"question": "How do I reset it?"}', json=True),
        Call("GET", f"/api/kbs/{kb}/conversations", 200),
        Call("GET", f"/api/conversations/{conv}", 200),
        Call("PATCH", f"/api/conversations/{conv}", 200, '{"title": "how?"}', json=True),
        Call("DELETE", f"/api/conversations/{uuid.UUID(int=0)}", 404),
        Call("POST", f"/api/messages/{s.answer.pk}/feedback", 200, '{"rating": -1}', json=True),
        Call("GET", "/api/kbs", 401, client="anon"),
        Call("GET", "/v1/models", 401, client="anon"),
        Call("POST", "/v1/chat/completions", 401, "{}", json=True, client="anon"),
        Call("GET", "/admin/", 200),
        Call("GET", "/admin/login/", 200, client="anon"),
        Call("GET", "/admin/ingest/document/", 200),
        Call("GET", f"/admin/ingest/document/{doc}/change/", 200),
        Call("GET", "/static/docent/chat.js", 200),
        Call("GET", "/healthz", 200, client="anon"),
        Call("GET", "/favicon.ico", 301, client="anon"),
        Call("GET", "/no-such-page/", 404),
    ]  # fmt: skip


def send(s: Site, call: Call):
    client = s.client if call.client == "admin" else Client()
    method = getattr(client, call.method.lower())
    extra = call.headers or {}
    if call.json:
        return method(call.path, data=call.data, content_type="application/json", **extra)
    if call.data is not None:
        return method(call.path, call.data, **extra)
    return method(call.path, **extra)


def assert_page_headers(response, where: str) -> None:
    header = response.get("Content-Security-Policy", "")
    policy = csp_directives(header)
    assert policy, f"{where}: no Content-Security-Policy"
    for name in ("script-src", "script-src-elem", "script-src-attr", "default-src"):
        sources = policy.get(name, [])
        unsafe = [
            value
            for value in sources
            if value in {"'unsafe-inline'", "'unsafe-eval'", "'unsafe-hashes'", "*", "data:"}
            or value.startswith(("http:", "https:", "'nonce-", "'sha"))
        ]
        assert not unsafe, f"{where}: {name} allows {unsafe}"
    assert policy.get("script-src", policy.get("default-src")) in (["'self'"], ["'none'"]), (
        f"{where}: scripts may come from {policy.get('script-src')}"
    )
    assert policy.get("object-src") == ["'none'"], f"{where}: object-src {policy.get('object-src')}"
    assert policy.get("base-uri") == ["'none'"], f"{where}: base-uri {policy.get('base-uri')}"
    assert policy.get("frame-ancestors") == ["'none'"], f"{where}: {header}"
    assert response.get("X-Frame-Options") == "DENY", where
    assert response.get("X-Content-Type-Options") == "nosniff", where
    assert response.get("Referrer-Policy") == "same-origin", where


def test_every_response_carries_the_security_headers(site):
    problems = []
    for call in calls(site):
        where = f"{call.client} {call.method} {call.path}"
        response = send(site, call)
        body_of(response)
        if response.status_code != call.status:
            problems.append(f"{where}: expected {call.status}, got {response.status_code}")
        try:
            if call.file:
                assert "sandbox" in csp_directives(response["Content-Security-Policy"]), where
                assert response["X-Frame-Options"] == "DENY", where
                assert response["X-Content-Type-Options"] == "nosniff", where
                assert response["Referrer-Policy"] == "same-origin", where
            else:
                assert_page_headers(response, where)
        except AssertionError as exc:
            problems.append(str(exc))
    assert not problems, "\n".join(problems)


def _routes(patterns, prefix: str = "") -> Iterator[str]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern) == "admin/":
                continue
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def test_the_header_table_covers_every_route(site):
    """Every page and API route (not the admin's) is requested by the test above."""
    covered = {
        resolve(call.path.split("?")[0]).route
        for call in calls(site)
        if "/static/" not in call.path and "no-such" not in call.path
    }
    missing = sorted({r for r in _routes(get_resolver().url_patterns) if r != "api/"} - covered)
    assert not missing, f"routes the header test never requests: {missing}"


class InlineScriptFinder(HTMLParser):
    """Inline script in a page: <script> without src, on* handlers, javascript: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "script" and "src" not in values and values.get("type") != "application/json":
            self.found.append(f"<script> at line {self.getpos()[0]}")
        for name, value in attrs:
            if name.startswith("on") or (value or "").strip().lower().startswith("javascript:"):
                self.found.append(f"<{tag} {name}={value!r}>")


def test_docent_pages_carry_no_inline_script(site):
    """The CSP forbids inline script, so a page that relies on it is silently broken."""
    problems = []
    for call in calls(site):
        if (
            call.method != "GET"
            or call.file
            or call.path.startswith(("/api/", "/admin/", "/static/"))
        ):
            continue
        response = send(site, call)
        if not response.get("Content-Type", "").startswith("text/html"):
            continue
        finder = InlineScriptFinder()
        finder.feed(body_of(response).decode())
        if finder.found:
            problems.append(f"{call.client} GET {call.path}: {finder.found}")
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------------------------
# manage.py check --deploy with the production settings
# --------------------------------------------------------------------------------------------


def production_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """deploy/docent.env.example as a process environment, kept on this machine."""
    example = (REPO / "deploy" / "docent.env.example").read_text()
    settings = {}
    for line in example.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            settings[key.strip()] = value.strip()
    for key in ("SECURE_SSL_REDIRECT", "SECURE_COOKIES", "SECURE_HSTS_SECONDS", "DEBUG"):
        assert key in settings, f"deploy/docent.env.example no longer sets {key}"
    data = tmp_path / "data"
    settings.update(
        SECRET_KEY=secrets.token_urlsafe(64),
        DATA_DIR=str(data),
        MEDIA_DIR=str(data / "files"),
        DATABASE_URL=f"sqlite:///{data / 'docent.sqlite3'}",  # not the example's db.internal
        CHROMA_URL="http://127.0.0.1:9",  # never contacted by the checks
    )
    settings.update(overrides)
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "LANG": "C.UTF-8",
        "DJANGO_SETTINGS_MODULE": "assistant.settings",
        "DOCENT_ENV_FILE": str(tmp_path / "no-such.env"),  # not a developer's ./.env
        **settings,
    }


#: name -> (what is weakened, the warning `check --deploy` must then give)
WEAKENED = {
    # The example's placeholder, or any short key, stops start-up outright (not a warning).
    "placeholder SECRET_KEY": (
        {"SECRET_KEY": "change-me-to-a-long-random-string"},
        ["ImproperlyConfigured: SECRET_KEY is a placeholder"],
    ),
    "short SECRET_KEY": ({"SECRET_KEY": "k" * 40}, ["ImproperlyConfigured: SECRET_KEY"]),
    "DEBUG on": ({"DEBUG": "true"}, ["security.W018"]),
    "no HTTPS redirect": ({"SECURE_SSL_REDIRECT": "false"}, ["security.W008"]),
    "insecure cookies": ({"SECURE_COOKIES": "false"}, ["security.W012", "security.W016"]),
    "no HSTS": ({"SECURE_HSTS_SECONDS": "0"}, ["security.W004"]),
}


@pytest.fixture(scope="module")
def deploy_checks(tmp_path_factory) -> dict[str, tuple[int, str]]:
    """Run every variant of `check --deploy` at once (each is a cold Django start-up)."""
    variants = {"production": {}, **{name: change for name, (change, _) in WEAKENED.items()}}
    running = {}
    for name, change in variants.items():
        env = production_env(tmp_path_factory.mktemp("deploy"), **change)
        running[name] = subprocess.Popen(
            [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    results = {}
    for name, proc in running.items():
        output, _ = proc.communicate(timeout=120)
        results[name] = (proc.returncode, output)
    return results


def test_check_deploy_is_clean_with_the_production_settings(deploy_checks):
    returncode, output = deploy_checks["production"]
    assert returncode == 0, output
    assert output.strip() == "System check identified no issues (0 silenced).", output


@pytest.mark.parametrize("name", list(WEAKENED))
def test_check_deploy_fails_when_a_setting_is_weakened(deploy_checks, name):
    returncode, output = deploy_checks[name]
    assert returncode != 0, output
    for warning in WEAKENED[name][1]:
        assert warning in output, output


def test_the_https_settings_take_effect(site, settings):
    """With the production switches on: HTTP redirects to HTTPS, HSTS, secure cookies."""
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    settings.SECURE_HSTS_PRELOAD = True
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    client = Client()
    redirect = client.get("/accounts/login/")
    assert redirect.status_code == 301
    assert redirect["Location"] == "https://testserver/accounts/login/"
    page = client.get("/accounts/login/", secure=True)
    assert page.status_code == 200
    assert page["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains; preload"
    assert page.cookies["csrftoken"]["secure"]
    signed_in = client.post(
        "/accounts/login/",
        {"username": "boss", "password": "pw-boss-123"},
        secure=True,
    )
    assert signed_in.status_code == 302, signed_in.content
    assert signed_in.cookies["sessionid"]["secure"] and signed_in.cookies["sessionid"]["httponly"]
