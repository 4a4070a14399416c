"""The page, the widget, the API and the CLI give the same answer to the same bad input.

One question path (answer_stream) decides: each surface only carries its status and
message to the caller, in its own envelope ({"error"} for the page and the widget,
{"detail"} for the API, stderr and exit code 1 for the CLI).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import uuid

import pytest
from django.test import Client

from assistant.keys import api_key_create
from assistant.models import Widget
from ingest.services import kb_get_or_create, kb_update
from tests import factories
from tests.conftest import REPO, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)
SITE = "https://shop.example"
NINE = [factories.text_image([f"Error {n}"]) for n in range(9)]
BAD_INPUTS = {
    # name: (question, images (bytes), conversation id, status, message)
    "empty question": ("   ", [], None, 422, "Please type a question or attach a screenshot."),
    "question too long": (
        "x" * 9000,
        [],
        None,
        422,
        "Please keep questions under 8,000 characters.",
    ),
    "nine images": ("What now?", NINE, None, 422, "Attach at most 8 screenshots."),
    "not an image": (
        "What now?",
        [b"not really a png"],
        None,
        422,
        "The attachment is not an image Docent can read (PNG, JPEG, WEBP, GIF).",
    ),
    "someone else's conversation": (
        "And then?",
        [],
        str(uuid.uuid4()),
        404,
        "That conversation does not exist.",
    ),
}


@pytest.fixture
def setup():
    kb = kb_update(kb=kb_get_or_create(name="Shop help"), visibility="public")
    widget = Widget.objects.create(name="Shop", kb=kb, allowed_origins=SITE, max_message_chars=8000)
    _, token = api_key_create(name="t", knowledge_bases=[kb])
    return kb, widget, token


def page(kb, widget, token, question, images, conversation):
    client = Client()
    data = {"kb": kb.slug, "question": question}
    if conversation:
        data["conversation"] = conversation
    data["images"] = [_upload(n, image) for n, image in enumerate(images)]
    response = client.post("/chat/stream", data=data)
    return response.status_code, response.json()["error"]


def widget_surface(kb, widget, token, question, images, conversation):
    client = Client()
    session = client.post(
        f"/widget/api/{widget.public_id}/session",
        data="{}",
        content_type="application/json",
        HTTP_ORIGIN=SITE,
    ).json()["token"]
    body = {"question": question, "images": [_data_url(i) for i in images]}
    if conversation:
        body["conversation"] = conversation
    response = client.post(
        f"/widget/api/{widget.public_id}/chat",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_ORIGIN=SITE,
        HTTP_AUTHORIZATION=f"Bearer {session}",
    )
    return response.status_code, response.json()["error"]


def api(kb, widget, token, question, images, conversation):
    body = {"question": question, "images": [_data_url(i) for i in images]}
    if conversation:
        body["conversation"] = conversation
    response = Client().post(
        f"/api/kbs/{kb.slug}/chat",
        data=json.dumps(body),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    return response.status_code, response.json()["detail"]


def cli(kb, widget, token, question, images, conversation, tmp_path):
    args = ["ask", "--kb", kb.name, question]
    for n, image in enumerate(images):
        path = tmp_path / f"shot-{n}.png"
        path.write_bytes(image)
        args += ["--image", str(path)]
    if conversation:
        args += ["--conversation", conversation]
    done = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), *args],
        cwd=REPO,
        env=subprocess_env(LLM_BASE_URL=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stderr.strip().removeprefix("CommandError: ")


def _upload(n: int, data: bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(f"shot-{n}.png", data, content_type="image/png")


def _data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode()


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_every_surface_refuses_bad_input_alike(case, setup, tmp_path):
    question, images, conversation, status, message = BAD_INPUTS[case]
    kb, widget, token = setup
    args = (kb, widget, token, question, images, conversation)
    assert page(*args) == (status, message)
    assert widget_surface(*args) == (status, message)
    assert api(*args) == (status, message)
    assert cli(*args, tmp_path) == (1, message)


def test_a_conversation_from_another_surface_is_not_found_on_this_one(setup, tmp_path):
    """Each asker owns its conversations: the CLI's can't be continued from the API."""
    kb, widget, token = setup
    done = subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "ask", "--kb", kb.name, "Returns?"],
        cwd=REPO,
        env=subprocess_env(LLM_BASE_URL=""),
        capture_output=True,
        text=True,
        timeout=120,
    )
    conversation = done.stdout.strip().rsplit("Conversation: ", 1)[1]
    status, message = api(kb, widget, token, "And then?", [], conversation)
    assert (status, message) == (404, "That conversation does not exist.")
    returncode, said = cli(kb, widget, token, "And then?", [], conversation, tmp_path)
    assert returncode == 0, said  # the CLI continues its own
