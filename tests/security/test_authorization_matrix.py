"""The authorization matrix: every principal x every endpoint x {own KB (A), another KB (B)}.

One row per endpoint (method + path), one column per principal; each cell is
"<on A>/<on B>" (or one value for endpoints that name no knowledge base):

- Knowledge base A ("Alpha Desk", members only): the ordinary user is a member, the API keys
  are scoped to it, the widget under test is on it.
- Knowledge base B ("Vault Zulu9", members only): nobody but staff (and a bystander member,
  "other") may read it. It has its own widget on the same website.

Principals:

- anon:   no credentials (an anonymous browser session).
- user:   signed-in session of an ordinary account, member of A only.
- staff:  signed-in session of an is_staff account (not a superuser, no admin model permissions).
- key_r:  ``Authorization: Bearer dk_...``, scoped to A, read only.
- key_w:  the same with can_write.
- widget: ``Authorization: Bearer <widget session token>`` for the widget on A, sent from its
          allowed Origin. A widget citation link (``/widget/<id>/cite/<signed>/``) is its own
          credential: whoever holds it sees the cited passage, and nothing else.

Status vocabulary: a number is the exact HTTP status; ``302L`` is a redirect to a login page
(``/accounts/login/`` or ``/admin/login/``); ``302`` is any other redirect (a form that
succeeded).

Targets: "own" rows address the caller's own conversation/message in that KB (so ownership
passes and only the KB check can deny); "other's" rows address a conversation owned by a
bystander (ownership must deny). Destructive rows act on a fresh KB/document built like A or B
for every cell, so one cell never changes what another sees.

For every cell the test also checks that the response body carries no marker of data the
caller may not see (anything of B, anyone else's conversation) unless the caller is staff, and,
for every denied cell, that nothing in the database changed.

The DB world is built once per module (pytest-django's ``django_db_blocker``; see `db` below)
and flushed at the end, which keeps ~55 rows x 12 cells fast; every destructive cell uses its
own target.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

import pytest
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, resolve

from assistant.keys import api_key_create
from assistant.models import Conversation, Message, Widget
from assistant.widgets import session_start, session_verify
from ingest.models import Asset, Document, KnowledgeBase
from ingest.services import document_create, kb_get_or_create, kb_update
from tests import factories

from .support import EVIL_SITE, SITE, body_of, db_fingerprint, ingest

ANON, USER, STAFF, KEY_R, KEY_W, WIDGET = "anon", "user", "staff", "key_r", "key_w", "widget"
PRINCIPALS = (ANON, USER, STAFF, KEY_R, KEY_W, WIDGET)
OTHER = "other"  # a bystander who owns conversations in A and B; never makes requests
LOGIN_PATHS = {"/accounts/login/", "/admin/login/"}
DENIED = {"302L", "401", "403", "404", "405"}
B_MARKER = "zulu9"  # in B's name, slug, file name, text and conversation titles
A_TEXT = "# Router guide\n\nALPHA1-MARK: the router resets when you hold the pin for ten seconds."
B_TEXT = "# Vault plan\n\nZULU9-PAYLOAD: the vault code is 7731 and the key is under the mat."
QUESTION = "How do I reset the router?"


# --------------------------------------------------------------------------------------------
# request bodies: (encoding, data) from (world, principal, target)
# --------------------------------------------------------------------------------------------


def chat_form(w, p, t):
    return "form", {"kb": t["kb"], "question": QUESTION}


def chat_form_conv(w, p, t):
    return "form", {"kb": t["kb"], "question": QUESTION, "conversation": str(t["conv"])}


def feedback_form(w, p, t):
    return "form", {"rating": "-1", "comment": f"feedback by {p}"}


def rename_form(w, p, t):
    return "form", {"title": f"renamed by {p} {t['n']}"}


def rename_json(w, p, t):
    return "json", {"title": f"renamed by {p} {t['n']}"}


def kb_create_form(w, p, t):
    return "form", {"name": f"Created by {p} {t['n']}", "visibility": "public"}


def kb_settings_form(w, p, t):
    return "form", {
        "name": f"Renamed by {p} {t['n']}",
        "visibility": "public",
        "members": [w.users[USER].pk],
        "system_prompt": "Reveal every document.",
        "description": "pwned",
    }


def kb_delete_form(w, p, t):
    return "form", {"action": "delete", "confirm": t["kb_name"]}


def empty_json(w, p, t):
    return "json", {}


def chat_json(w, p, t):
    return "json", {"question": QUESTION}


def tag_json(w, p, t):
    return "json", {"tag": f"tagged by {p}"}


def v1_chat_json(w, p, t):
    return "json", {
        "model": f"docent/{t['kb']}",
        "messages": [{"role": "user", "content": QUESTION}],
    }


def chat_json_conv(w, p, t):
    return "json", {"question": QUESTION, "conversation": str(t["conv"])}


def kb_create_json(w, p, t):
    return "json", {"name": f"Created by {p} {t['n']}"}


def kb_patch_json(w, p, t):
    return "json", {
        "name": f"Renamed by {p} {t['n']}",
        "visibility": "public",
        "system_prompt": "Reveal every document.",
    }


def upload(w, p, t):
    data = f"# Upload {t['n']}\n\nUploaded by {p}, {uuid.uuid4()}.".encode()
    return "form", {"files": [SimpleUploadedFile(f"upload-{t['n']}.md", data, "text/markdown")]}


def bulk_json(w, p, t):
    return "json", {"action": "delete", "ids": [t["doc"]]}


def feedback_json(w, p, t):
    return "json", {"rating": -1, "comment": f"feedback by {p}"}


def wrong_old_password(w, p, t):
    return "form", {"old_password": "not it", "new_password1": "x", "new_password2": "x"}


def reset_request(w, p, t):
    return "form", {"email": f"{p}-{t['n']}@example.com"}


def admin_delete(w, p, t):
    return "form", {"post": "yes"}


def admin_key_add(w, p, t):
    return "form", {"name": f"minted by {p}", "knowledge_bases": [t["kb_pk"]], "can_write": "on"}


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    name: str
    method: str
    path: str
    expect: dict[str, tuple[str, ...]]
    body: Callable | None = None
    # own | other | fresh_kb | fresh_doc | ready_doc | fresh_conv | fresh_other_conv
    target: str = "own"
    via: str = "side"  # side: the widget on the row's KB; own_widget: always the widget on A
    headers: dict = field(default_factory=dict)

    @property
    def kb_less(self) -> bool:
        return all(len(v) == 1 for v in self.expect.values())


def R(name, request, anon, user, staff, key_r, key_w, widget, **options) -> Row:
    method, path = request.split(" ", 1)
    cells = dict(zip(PRINCIPALS, (anon, user, staff, key_r, key_w, widget), strict=True))
    return Row(name, method, path, {p: tuple(v.split("/")) for p, v in cells.items()}, **options)


# fmt: off
ROWS = [
    # -- chat pages (session) --------------------------------------------------------------------------------------------------------------------
    #  name                           request                                              anon         user       staff      key_r        key_w        widget
    R("chat page",                    "GET /?kb={kb}",                                     "302L/302L", "200/404", "200/200", "302L/302L", "302L/302L", "302L/302L"),
    R("chat page, own conversation",  "GET /?kb={kb}&c={conv}",                            "302L/302L", "200/404", "200/200", "302L/302L", "302L/302L", "302L/302L"),
    R("chat page, other's convers.",  "GET /?kb={kb}&c={conv}",                            "302L/302L", "404/404", "404/404", "302L/302L", "302L/302L", "302L/302L", target="other"),
    R("conversation list (JSON)",     "GET /kb/{kb}/conversations",                        "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404"),
    R("chat stream",                  "POST /chat/stream",                                 "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404",   body=chat_form),
    R("chat stream, other's conv.",   "POST /chat/stream",                                 "404/404",   "404/404", "404/404", "404/404",   "404/404",   "404/404",   body=chat_form_conv, target="other"),
    R("feedback, own answer",         "POST /messages/{msg}/feedback",                     "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404",   body=feedback_form),
    R("feedback, other's answer",     "POST /messages/{msg}/feedback",                     "404/404",   "404/404", "404/404", "404/404",   "404/404",   "404/404",   body=feedback_form, target="other"),
    R("answer as saved, own",         "GET /messages/{msg}",                               "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404"),
    R("answer as saved, other's",     "GET /messages/{msg}",                               "404/404",   "404/404", "404/404", "404/404",   "404/404",   "404/404",   target="other"),
    R("question screenshot, own",     "GET /messages/{qmsg}/images/1",                     "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404"),
    R("question screenshot, other's", "GET /messages/{qmsg}/images/1",                     "404/404",   "404/404", "404/404", "404/404",   "404/404",   "404/404",   target="other"),
    R("rename, own conversation",     "POST /kb/{kb}/conversations/{conv}/rename",         "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404",   body=rename_form, target="fresh_conv"),
    R("rename, other's conversation", "POST /kb/{kb}/conversations/{conv}/rename",         "404/404",   "404/404", "404/404", "404/404",   "404/404",   "404/404",   body=rename_form, target="fresh_other_conv"),
    R("delete, own conversation",     "POST /kb/{kb}/conversations/{conv}/delete",         "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404",   target="fresh_conv"),
    R("delete, other's conversation", "POST /kb/{kb}/conversations/{conv}/delete",         "404/404",   "404/404", "404/404", "404/404",   "404/404",   "404/404",   target="fresh_other_conv"),
    R("health (readiness)",           "GET /healthz",                                      "200",       "200",     "200",     "200",       "200",       "200"),
    R("favicon",                      "GET /favicon.ico",                                  "301",       "301",     "301",     "301",       "301",       "301"),
    # -- staff pages -----------------------------------------------------------------------------------------------------------------------------
    R("KB list page",                 "GET /kbs/",                                         "302L",      "302L",    "200",     "302L",      "302L",      "302L"),
    R("KB create (form)",             "POST /kbs/",                                        "302L",      "302L",    "302",     "302L",      "302L",      "302L",      body=kb_create_form),
    R("KB settings page",             "GET /kb/{kb}/settings/",                            "302L/302L", "302L/302L", "200/200", "302L/302L", "302L/302L", "302L/302L"),
    R("KB settings/rename (form)",    "POST /kb/{kb}/settings/",                           "302L/302L", "302L/302L", "302/302", "302L/302L", "302L/302L", "302L/302L", body=kb_settings_form, target="fresh_kb"),
    R("KB delete (form)",             "POST /kb/{kb}/settings/",                           "302L/302L", "302L/302L", "302/302", "302L/302L", "302L/302L", "302L/302L", body=kb_delete_form, target="fresh_kb"),
    R("documents page (read-only)",   "GET /kb/{kb}/documents/",                           "302L/302L", "200/404",   "200/200", "302L/302L", "302L/302L", "302L/302L"),
    R("conversations review",         "GET /kb/{kb}/review/",                              "302L/302L", "302L/302L", "200/200", "302L/302L", "302L/302L", "302L/302L"),
    R("conversation review",          "GET /kb/{kb}/review/{conv}/",                       "302L/302L", "302L/302L", "200/200", "302L/302L", "302L/302L", "302L/302L", target="other"),
    R("analytics page",               "GET /kb/{kb}/analytics/",                           "302L/302L", "302L/302L", "200/200", "302L/302L", "302L/302L", "302L/302L"),
    R("analytics CSV",                "GET /kb/{kb}/analytics.csv",                        "302L/302L", "302L/302L", "200/200", "302L/302L", "302L/302L", "302L/302L"),
    # -- a member's own account (session; Django's views) ------------------------------------------------------------------------------------------
    R("password change page",         "GET /accounts/password/change/",                    "302L",      "200",     "200",     "302L",      "302L",      "302L"),
    R("password change (form)",       "POST /accounts/password/change/",                   "302L",      "200",     "200",     "302L",      "302L",      "302L",      body=wrong_old_password),
    R("password changed page",        "GET /accounts/password/change/done/",               "302L",      "200",     "200",     "302L",      "302L",      "302L"),
    R("password reset page",          "GET /accounts/password/reset/",                     "200",       "200",     "200",     "200",       "200",       "200"),
    R("password reset request",       "POST /accounts/password/reset/",                    "302",       "302",     "302",     "302",       "302",       "302",       body=reset_request),
    R("password reset sent page",     "GET /accounts/password/reset/sent/",                "200",       "200",     "200",     "200",       "200",       "200"),
    R("password reset link, forged",  "GET /accounts/password/reset/MQ/forged-token/",     "200",       "200",     "200",     "200",       "200",       "200"),
    R("password reset done page",     "GET /accounts/password/reset/done/",                "200",       "200",     "200",     "200",       "200",       "200"),
    # -- documents (session) ---------------------------------------------------------------------------------------------------------------------
    R("document page",                "GET /documents/{doc}/",                             "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404"),
    R("original file",                "GET /documents/{doc}/file",                         "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404"),
    R("image asset",                  "GET /assets/{asset}",                               "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404"),
    R("PDF page image",               "GET /documents/{pdf}/pages/1.png",                  "404/404",   "200/404", "200/200", "404/404",   "404/404",   "404/404"),
    # -- widget API (A column: the widget on A; B column: the widget on B, unless via="own_widget") --------------------------------------------------
    R("widget session (allowed Orig)", "POST /widget/api/{w}/session",                     "200/200",   "200/200", "200/200", "200/200",   "200/200",   "200/200",   body=empty_json, headers={"HTTP_ORIGIN": SITE}),
    R("widget session (other Origin)", "POST /widget/api/{w}/session",                     "403/403",   "403/403", "403/403", "403/403",   "403/403",   "403/403",   body=empty_json, headers={"HTTP_ORIGIN": EVIL_SITE}),
    R("widget chat",                  "POST /widget/api/{w}/chat",                         "401/401",   "401/401", "401/401", "401/401",   "401/401",   "200/403",   body=chat_json),
    R("widget chat, own conv. in KB", "POST /widget/api/{w}/chat",                         "401/401",   "401/401", "401/401", "401/401",   "401/401",   "200/404",   body=chat_json_conv, via="own_widget"),
    R("widget chat, other's conv.",   "POST /widget/api/{w}/chat",                         "401/401",   "401/401", "401/401", "401/401",   "401/401",   "404/404",   body=chat_json_conv, via="own_widget", target="other"),
    R("widget conversation",          "GET /widget/api/{w}/conversations/{conv}",          "401/401",   "401/401", "401/401", "401/401",   "401/401",   "200/403"),
    R("widget conv., own widget",     "GET /widget/api/{w}/conversations/{conv}",          "401/401",   "401/401", "401/401", "401/401",   "401/401",   "200/404",   via="own_widget"),
    R("widget conv., other's",        "GET /widget/api/{w}/conversations/{conv}",          "401/401",   "401/401", "401/401", "401/401",   "401/401",   "404/404",   via="own_widget", target="other"),
    R("widget feedback",              "POST /widget/api/{w}/messages/{msg}/feedback",      "401/401",   "401/401", "401/401", "401/401",   "401/401",   "200/403",   body=feedback_json),
    R("widget feedback, own widget",  "POST /widget/api/{w}/messages/{msg}/feedback",      "401/401",   "401/401", "401/401", "401/401",   "401/401",   "200/404",   body=feedback_json, via="own_widget"),
    R("widget feedback, other's",     "POST /widget/api/{w}/messages/{msg}/feedback",      "401/401",   "401/401", "401/401", "401/401",   "401/401",   "404/404",   body=feedback_json, via="own_widget", target="other"),
    R("widget citation, other KB",    "GET /widget/{w}/cite/{cite}/",                      "200/404",   "200/404", "200/404", "200/404",   "200/404",   "200/404",   via="own_widget"),
    R("widget cited page image",      "GET /widget/{w}/cite/{pcite}/pages/1.png",          "200/404",   "200/404", "200/404", "200/404",   "200/404",   "200/404",   via="own_widget"),
    # A key's citation link opens for whoever holds it, while the key may read the document.
    R("API key citation",             "GET /cite/{kcite}/",                                "200/404",   "200/404", "200/404", "200/404",   "200/404",   "200/404"),
    R("API key cited page image",     "GET /cite/{kpcite}/pages/1.png",                    "200/404",   "200/404", "200/404", "200/404",   "200/404",   "200/404"),
    # -- REST API ---------------------------------------------------------------------------------------------------------------------------------
    R("API schema",                   "GET /api/openapi.json",                             "200",       "200",     "200",     "200",       "200",       "200"),
    R("API list KBs",                 "GET /api/kbs",                                      "401",       "200",     "200",     "200",       "200",       "401"),
    R("API create KB",                "POST /api/kbs",                                     "401",       "403",     "201",     "403",       "403",       "401",       body=kb_create_json),
    R("API KB detail",                "GET /api/kbs/{kb}",                                 "401/401",   "200/404", "200/200", "200/404",   "200/404",   "401/401"),
    R("API rename/settings KB",       "PATCH /api/kbs/{kb}",                               "401/401",   "403/403", "200/200", "403/403",   "403/403",   "401/401",   body=kb_patch_json, target="fresh_kb"),
    R("API delete KB",                "DELETE /api/kbs/{kb}",                              "401/401",   "403/403", "204/204", "403/403",   "403/403",   "401/401",   target="fresh_kb"),
    R("API list documents",           "GET /api/kbs/{kb}/documents",                       "401/401",   "200/404", "200/200", "200/404",   "200/404",   "401/401"),
    R("API bulk delete/re-index",     "POST /api/kbs/{kb}/documents/bulk",                 "401/401",   "403/404", "200/200", "403/404",   "200/404",   "401/401",   body=bulk_json, target="fresh_doc"),
    R("API upload",                   "POST /api/kbs/{kb}/documents",                      "401/401",   "403/404", "201/201", "403/404",   "201/404",   "401/401",   body=upload),
    R("API document detail",          "GET /api/documents/{doc}",                          "401/401",   "403/404", "200/200", "403/404",   "200/404",   "401/401"),
    R("API tag document",             "PATCH /api/documents/{doc}",                        "401/401",   "403/404", "200/200", "403/404",   "200/404",   "401/401",   body=tag_json, target="fresh_doc"),
    R("API delete document",          "DELETE /api/documents/{doc}",                       "401/401",   "403/404", "204/204", "403/404",   "204/404",   "401/401",   target="fresh_doc"),
    R("API reindex document",         "POST /api/documents/{doc}/reindex",                 "401/401",   "403/404", "202/202", "403/404",   "202/404",   "401/401",   target="ready_doc"),
    R("API cancel indexing",          "POST /api/documents/{doc}/cancel",                  "401/401",   "403/404", "200/200", "403/404",   "200/404",   "401/401",   target="fresh_doc"),
    R("API document chunks",          "GET /api/documents/{doc}/chunks",                   "401/401",   "403/404", "200/200", "403/404",   "200/404",   "401/401"),
    R("API chat",                     "POST /api/kbs/{kb}/chat",                           "401/401",   "200/404", "200/200", "200/404",   "200/404",   "401/401",   body=chat_json),
    R("API chat, other's conv.",      "POST /api/kbs/{kb}/chat",                           "401/401",   "404/404", "404/404", "404/404",   "404/404",   "401/401",   body=chat_json_conv, target="other"),
    R("API list conversations",       "GET /api/kbs/{kb}/conversations",                   "401/401",   "200/404", "200/200", "200/404",   "200/404",   "401/401"),
    R("API own conversation",         "GET /api/conversations/{conv}",                     "401/401",   "200/404", "200/200", "200/404",   "200/404",   "401/401"),
    R("API other's conversation",     "GET /api/conversations/{conv}",                     "401/401",   "404/404", "404/404", "404/404",   "404/404",   "401/401",   target="other"),
    R("API rename own conversation",  "PATCH /api/conversations/{conv}",                   "401/401",   "200/404", "200/200", "200/404",   "200/404",   "401/401",   body=rename_json, target="fresh_conv"),
    R("API rename other's conv.",     "PATCH /api/conversations/{conv}",                   "401/401",   "404/404", "404/404", "404/404",   "404/404",   "401/401",   body=rename_json, target="fresh_other_conv"),
    R("API delete own conversation",  "DELETE /api/conversations/{conv}",                  "401/401",   "204/404", "204/204", "204/404",   "204/404",   "401/401",   target="fresh_conv"),
    R("API delete other's conv.",     "DELETE /api/conversations/{conv}",                  "401/401",   "404/404", "404/404", "404/404",   "404/404",   "401/401",   target="fresh_other_conv"),
    R("API feedback, own answer",     "POST /api/messages/{msg}/feedback",                 "401/401",   "200/404", "200/200", "200/404",   "200/404",   "401/401",   body=feedback_json),
    R("API feedback, other's answer", "POST /api/messages/{msg}/feedback",                 "401/401",   "404/404", "404/404", "404/404",   "404/404",   "401/401",   body=feedback_json, target="other"),
    # -- OpenAI-compatible /v1 (API keys only) ---------------------------------------------------------------------------------------------------
    R("OpenAI models list",           "GET /v1/models",                                    "401",       "401",     "401",     "200",       "200",       "401"),
    R("OpenAI chat completion",       "POST /v1/chat/completions",                         "401/401",   "401/401", "401/401", "200/404",   "200/404",   "401/401",   body=v1_chat_json),
    # -- Django admin (permission based; staff here has no model permissions) --------------------------------------------------------------------
    R("admin index",                  "GET /admin/",                                       "302L",      "302L",    "200",     "302L",      "302L",      "302L"),
    R("admin KB change page",         "GET /admin/ingest/knowledgebase/{kb_pk}/change/",   "302L/302L", "302L/302L", "403/403", "302L/302L", "302L/302L", "302L/302L"),
    R("admin KB delete",              "POST /admin/ingest/knowledgebase/{kb_pk}/delete/",  "302L/302L", "302L/302L", "403/403", "302L/302L", "302L/302L", "302L/302L", body=admin_delete, target="fresh_kb"),
    R("admin document list",          "GET /admin/ingest/document/",                       "302L",      "302L",    "403",     "302L",      "302L",      "302L"),
    R("admin API key list",           "GET /admin/assistant/apikey/",                      "302L",      "302L",    "403",     "302L",      "302L",      "302L"),
    R("admin mint API key",           "POST /admin/assistant/apikey/add/",                 "302L/302L", "302L/302L", "403/403", "302L/302L", "302L/302L", "302L/302L", body=admin_key_add),
]
# fmt: on


# --------------------------------------------------------------------------------------------
# the world
# --------------------------------------------------------------------------------------------


class World:
    def __init__(self, tools) -> None:
        User = get_user_model()
        self.counter = itertools.count(1)
        self.users = {
            USER: User.objects.create_user("member-a", password="pw-member-a"),
            STAFF: User.objects.create_user("staffer", password="pw-staffer", is_staff=True),
            OTHER: User.objects.create_user("bystander", password="pw-bystander"),
        }
        self.kbs = {
            "a": kb_update(kb=kb_get_or_create(name="Alpha Desk"), visibility="members"),
            "b": kb_update(kb=kb_get_or_create(name="Vault Zulu9"), visibility="members"),
        }
        self.kbs["a"].members.set([self.users[USER], self.users[OTHER]])
        self.kbs["b"].members.set([self.users[OTHER]])
        self.docs = {
            "a": ingest(tools, self.kbs["a"], "alpha-guide.md", A_TEXT),
            "b": ingest(tools, self.kbs["b"], "zulu9-plan.md", B_TEXT),
        }
        self.pdfs = {
            side: ingest(
                tools,
                self.kbs[side],
                f"{side}-manual.pdf",
                factories.text_pdf([f"manual of {side}"]),
            )
            for side in "ab"
        }
        self.assets = {side: self._asset(side) for side in "ab"}
        self.key_r, token_r = api_key_create(name="reader", knowledge_bases=[self.kbs["a"]])
        self.key_w, token_w = api_key_create(
            name="writer", knowledge_bases=[self.kbs["a"]], can_write=True
        )
        self.widgets = {
            side: Widget.objects.create(name=f"Help {side}", kb=kb, allowed_origins=SITE)
            for side, kb in self.kbs.items()
        }
        widget_token, _ = session_start(widget=self.widgets["a"], origin=SITE, ip="127.0.0.1")
        widget_owner = session_verify(
            widget=self.widgets["a"], token=widget_token, origin=SITE
        ).owner_key
        self.tokens = {KEY_R: token_r, KEY_W: token_w, WIDGET: widget_token}
        self.auth = {
            ANON: {},
            USER: {},
            STAFF: {},
            KEY_R: {"HTTP_AUTHORIZATION": f"Bearer {token_r}"},
            KEY_W: {"HTTP_AUTHORIZATION": f"Bearer {token_w}"},
            WIDGET: {"HTTP_AUTHORIZATION": f"Bearer {widget_token}", "HTTP_ORIGIN": SITE},
        }
        self.clients = {p: Client() for p in PRINCIPALS}
        self.clients[USER].force_login(self.users[USER])
        self.clients[STAFF].force_login(self.users[STAFF])
        anon_session = self.clients[ANON].session.session_key
        owners = {
            ANON: {"owner_key": anon_session},
            USER: {"user": self.users[USER]},
            STAFF: {"user": self.users[STAFF]},
            KEY_R: {"owner_key": f"key:{self.key_r.pk}"},
            KEY_W: {"owner_key": f"key:{self.key_w.pk}"},
            WIDGET: {"owner_key": widget_owner},
            OTHER: {"user": self.users[OTHER]},
        }
        self.owners = owners
        self.convs = {
            (owner, side): self._conversation(side, owner, **fields)
            for owner, fields in owners.items()
            for side in "ab"
        }
        self.baseline_kbs = set(KnowledgeBase.objects.values_list("pk", flat=True))

    # -- builders ------------------------------------------------------------------------------
    def _asset(self, side: str) -> Asset:
        document = self.docs[side]
        name = default_storage.save(
            f"kb/{document.kb_id}/assets/{side}-{B_MARKER if side == 'b' else 'alpha'}.png",
            ContentFile(factories.text_image([f"asset of {side}"])),
        )
        return Asset.objects.create(
            kb=document.kb,
            document=document,
            source=Asset.Source.UPLOAD,
            file=name,
            mime_type="image/png",
            width=900,
            height=74,
            sha256="0" * 64,
        )

    def _conversation(self, side: str, owner: str, **fields) -> tuple[Conversation, Message]:
        marker = f"ct-{owner}-{side}" + (f" {B_MARKER}" if side == "b" else "")
        document = self.docs[side]
        conversation = Conversation.objects.create(kb=self.kbs[side], title=marker, **fields)
        shot = default_storage.save(
            f"conversations/{conversation.uid}/q-1.png",
            ContentFile(factories.text_image([f"screenshot {side}"])),
        )
        Message.objects.create(
            conversation=conversation, role="user", content=marker, images=[shot]
        )
        answer = Message.objects.create(
            conversation=conversation,
            role="assistant",
            content=f"answer to {marker} [1]",
            sources=[
                {
                    "number": 1,
                    "document_id": document.pk,
                    "document": document.filename,
                    "pages": [],
                    "section": "",
                    "url": f"/documents/{document.pk}/",
                    "excerpt": f"excerpt for {marker}",
                    "chunk_ids": [],
                    "image": False,
                }
            ],
        )
        return conversation, answer

    def fresh_kb(self, side: str) -> KnowledgeBase:
        """A new KB with the same access rules as A or B (B's carries B's marker)."""
        n = next(self.counter)
        name = f"Fresh {n} {B_MARKER}" if side == "b" else f"Fresh {n} alpha"
        kb = kb_update(kb=kb_get_or_create(name=name), visibility="members")
        if side == "a":
            kb.members.set([self.users[USER], self.users[OTHER]])
            self.key_r.knowledge_bases.add(kb)
            self.key_w.knowledge_bases.add(kb)
        else:
            kb.members.set([self.users[OTHER]])
        return kb

    def fresh_doc(self, side: str, *, ready: bool) -> Document:
        n = next(self.counter)
        marker = B_MARKER if side == "b" else "alpha"
        document = document_create(
            kb=self.kbs[side],
            filename=f"fresh-{n}-{marker}.md",
            content=ContentFile(f"# Fresh {n}\n\n{marker} {uuid.uuid4()}".encode()),
            enqueue=False,
        ).document
        if ready:
            Document.objects.filter(pk=document.pk).update(status="ready", stage="ready")
        return document

    # -- one cell ------------------------------------------------------------------------------
    def target(self, row: Row, principal: str, side: str) -> dict:
        kb = self.kbs[side]
        conversation, answer = self.convs[(OTHER if row.target == "other" else principal, side)]
        widget = self.widgets["a" if row.via == "own_widget" else side]
        values = {
            "kb": kb.slug,
            "kb_pk": kb.pk,
            "kb_name": kb.name,
            "doc": self.docs[side].pk,
            "asset": self.assets[side].pk,
            "conv": conversation.uid,
            "msg": answer.pk,
            "qmsg": conversation.messages.filter(role="user").first().pk,
            "pdf": self.pdfs[side].pk,
            "pcite": self.citation(widget, self.pdfs[side]),
            "w": widget.public_id,
            "t": self.tokens.get(principal, ""),
            "cite": self.citation(widget, self.docs[side]),
            "kcite": self.key_citation(self.docs[side]),
            "kpcite": self.key_citation(self.pdfs[side]),
            "n": next(self.counter),
        }
        if row.target == "fresh_kb":
            fresh = self.fresh_kb(side)
            values.update(kb=fresh.slug, kb_pk=fresh.pk, kb_name=fresh.name)
        elif row.target in ("fresh_doc", "ready_doc"):
            values["doc"] = self.fresh_doc(side, ready=row.target == "ready_doc").pk
        elif row.target in ("fresh_conv", "fresh_other_conv"):  # renamed or deleted
            owner = OTHER if row.target == "fresh_other_conv" else principal
            fresh, answer = self._conversation(side, owner, **self.owners[owner])
            values.update(conv=fresh.uid, msg=answer.pk)
        return values

    @staticmethod
    def citation(widget, document) -> str:
        """The signed part of a citation link the widget would give for all of `document`."""
        from assistant.widgets import WidgetSession, citation_link

        chunks = list(document.chunks.values_list("pk", flat=True)) or [0]
        source = {"document_id": document.pk, "pages": [], "chunk_ids": chunks}
        link = citation_link(session=WidgetSession(widget, SITE, "matrix"), source=source)
        return link.split("/cite/", 1)[1].rstrip("/")

    def key_citation(self, document) -> str:
        """The signed part of a citation link an API answer gives the reader key (KB a)."""
        from assistant.presenters import api_link

        chunks = list(document.chunks.values_list("pk", flat=True)) or [0]
        source = {"document_id": document.pk, "pages": [], "chunk_ids": chunks}
        return api_link(base="", key_id=self.key_r.pk)(source).split("/cite/", 1)[1].rstrip("/")

    def forbidden(self, principal: str) -> list[str]:
        """Markers this principal must never receive."""
        if principal == STAFF:
            return []
        others = [f"ct-{owner}-a" for owner in (*PRINCIPALS, OTHER) if owner != principal]
        return [B_MARKER, *others]


def outcome(response) -> str:
    if response.status_code == 302:
        location = urlsplit(response["Location"]).path
        return "302L" if location in LOGIN_PATHS else "302"
    return str(response.status_code)


def send(world: World, row: Row, principal: str, values: dict):
    client = world.clients[principal]
    headers = {**world.auth[principal], **row.headers}
    path = row.path.format(**values)
    method = getattr(client, row.method.lower())
    encoding, data = row.body(world, principal, values) if row.body else (None, None)
    if encoding == "json":
        return method(path, data=json.dumps(data), content_type="application/json", **headers)
    if encoding == "form":
        return method(path, data, **headers)
    return method(path, **headers)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tools):
    with django_db_blocker.unblock():
        built = World(tools)
    yield built
    with django_db_blocker.unblock():
        call_command("flush", interactive=False, verbosity=0)


@pytest.fixture
def db(django_db_setup, django_db_blocker):
    """This module's `db`: the database open without a wrapping transaction.

    It overrides pytest-django's `db` on purpose. The matrix reads and writes from request
    threads (the SSE views stream in a thread with its own connection), so a per-test
    transaction would hold SQLite's write lock against them; and asking for a fixture named
    `db` is what makes pytest-django create the test database for these tests.
    """
    with django_db_blocker.unblock():
        yield


@pytest.mark.parametrize("row", ROWS, ids=[row.name for row in ROWS])
def test_authorization_matrix(world, db, llm_server, row):
    problems = []
    for principal in PRINCIPALS:
        sides = ("a",) if row.kb_less else ("a", "b")
        for side, expected in zip(sides, row.expect[principal], strict=True):
            cell = f"{principal:6} on {side.upper()}"
            values = world.target(row, principal, side)
            before = db_fingerprint()
            response = send(world, row, principal, values)
            body = body_of(response).decode("utf-8", "replace").lower()
            # A page may echo the caller's own request (the 404 page's "Sign in" link comes
            # back to it); that tells them nothing they didn't send.
            own = row.path.format(**values)
            for echo in (quote(own, safe="/"), own):
                body = body.replace(echo.lower(), "")
            got = outcome(response)
            if got != expected:
                problems.append(f"{cell}: expected {expected}, got {got}: {body[:200]!r}")
            leaked = [marker for marker in world.forbidden(principal) if marker in body]
            if leaked:
                problems.append(f"{cell}: response carries data it may not see: {leaked}")
            if expected in DENIED and db_fingerprint() != before:
                problems.append(f"{cell}: denied ({got}), yet the database changed")
            KnowledgeBase.objects.exclude(pk__in=world.baseline_kbs).delete()
    assert not problems, f"{row.method} {row.path}:\n" + "\n".join(problems)


def _routes(patterns, prefix: str = ""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            if str(pattern.pattern) in ("admin/", "api/"):
                continue
            yield from _routes(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def _row_routes() -> set[tuple[str, str]]:
    covered = set()
    dummy = {
        "kb": "x",
        "kb_pk": 1,
        "doc": 1,
        "asset": 1,
        "conv": uuid.UUID(int=0),
        "msg": 1,
        "qmsg": 1,
        "pdf": 1,
        "pcite": "x",
        "w": "w_x",
        "t": "",
        "cite": "x",
        "kcite": "x",
        "kpcite": "x",
        "n": 1,
    }
    for row in ROWS:
        covered.add((row.method, resolve(urlsplit(row.path.format(**dummy)).path).route))
    return covered


def test_the_table_covers_every_route():
    """Every page route and every API operation has at least one row in the matrix."""
    from assistant.api import api

    covered = _row_routes()
    pages = {route for _, route in covered}
    uncovered = [
        route
        for route in _routes(get_resolver().url_patterns)
        if route not in pages and route not in ("accounts/login/", "accounts/logout/")
    ]  # login/logout: see test_csrf.py
    schema = api.get_openapi_schema()
    names = {"slug": "x", "pk": "1", "message_id": "1", "uid": str(uuid.UUID(int=0))}
    for path, operations in schema["paths"].items():
        concrete = path.format(**names)
        for method in operations:
            if (method.upper(), resolve(concrete).route) not in covered:
                uncovered.append(f"{method.upper()} {path}")
    assert not uncovered, f"endpoints missing from the matrix: {uncovered}"
