"""`manage.py ask` takes the chat page's path and reports failure through its exit code."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ingest.services import kb_get_or_create
from standin import Reply
from tests import factories
from tests.conftest import REPO, subprocess_env

pytestmark = pytest.mark.django_db(transaction=True)


def ask(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(REPO / "manage.py"), "ask", *args],
        cwd=REPO,
        env=subprocess_env(**env),
        capture_output=True,
        text=True,
        timeout=180,
    )


@pytest.fixture
def printer_kb(ingest_text):
    kb = kb_get_or_create(name="Printers")
    ingest_text(
        kb, "printer.md", "# Errors\n\nError E-42 means the paper tray is jammed; open cover B."
    )
    return kb


def llm_env(server) -> dict[str, str]:
    return {"LLM_BASE_URL": server.base_url, "LLM_API_KEY": "k", "LLM_MODEL": "ministral-8b-2512"}


def test_ask_prints_the_answer_then_numbered_sources(printer_kb, llm_server):
    result = ask("--kb", "Printers", "What", "does", "E-42", "mean?", **llm_env(llm_server))
    assert result.returncode == 0, result.stderr
    answer, _, rest = result.stdout.partition("\nSources:")
    assert "[1]" in answer
    assert "[1] printer.md" in rest
    assert (
        "What does E-42 mean?"
        in llm_server.chat_requests[-1].body["messages"][-1]["content"][-1]["text"]
    )


def test_ask_with_a_screenshot(printer_kb, llm_server):
    image = REPO.parent / "shot.png"
    image.write_bytes(factories.text_image(["Printer says: Error E-42"]))
    try:
        result = ask("--kb", "printers", "--image", str(image), "What now?", **llm_env(llm_server))
    finally:
        image.unlink()
    assert result.returncode == 0, result.stderr
    assert llm_server.chat_requests[-1].n_images == 1
    assert "[1] printer.md" in result.stdout


def test_ask_without_a_model_is_retrieval_only(printer_kb):
    result = ask("--kb", "Printers", "E-42?", LLM_BASE_URL="")
    assert result.returncode == 0, result.stderr
    assert "Retrieval only" in result.stdout and "E-42" in result.stdout


def test_ask_fails_loudly(printer_kb, llm_server):
    missing = ask("--kb", "Nope", "hi?")
    assert missing.returncode != 0 and "No knowledge base named 'Nope'" in missing.stderr
    llm_server.script(Reply.error(500, times=10))
    broken = ask("--kb", "Printers", "E-42?", LLM_MAX_RETRIES="0", **llm_env(llm_server))
    assert broken.returncode == 1 and "HTTP 500" in broken.stderr


def test_ask_shows_only_the_answer_of_a_reasoning_model(printer_kb, llm_server):
    """Mistral's API streams thinking as content chunks: the answer prints, the trace doesn't."""
    llm_server.config.update({"dialect": "mistral"})
    llm_server.script(Reply(text="Open cover B [1].", reasoning="Source 1 says cover B."))
    env = {
        "MISTRAL_API_KEY": "k",
        "MISTRAL_BASE_URL": llm_server.base_url,
        "LLM_MODEL": "magistral-small-2509",
        "LLM_BASE_URL": "",
    }
    result = ask("--kb", "Printers", "How do I clear E-42?", **env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Open cover B [1].\n")
    assert "Source 1 says cover B" not in result.stdout + result.stderr
    llm_server.script(Reply(text="Open cover B [1].", reasoning="Source 1 says cover B."))
    shown = ask("--kb", "Printers", "--show-reasoning", "How do I clear E-42?", **env)
    assert "Source 1 says cover B." in shown.stderr and "Source 1" not in shown.stdout


def test_ask_reports_a_packing_error_not_a_traceback(printer_kb, llm_server):
    result = ask("--kb", "Printers", "E-42?", LLM_MAX_TOKENS="300000", **llm_env(llm_server))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "Lower LLM_MAX_TOKENS" in result.stderr
