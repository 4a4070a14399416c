"""Each seed model through its provider, as a user runs it: what was sent, what was shown.

    .venv/bin/python bench/seed_models.py

Starts the stand-in model server (`python -m standin`) speaking each provider's formats,
ingests one manual, and for each seed model runs `manage.py ask --image screenshot.png`
with the settings an admin would use. Prints, per model, the command, the model id sent,
the window Docent packed into, images or OCR text, the parameters sent, and the answer
shown on the terminal (the trace of reasoning models stays out of it).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from _app import LLM_KEY, FakeLLM, base_env, manage

MANUAL = "# Printer manual\n\nError E-42 means the paper tray is empty. Refill the tray, then press OK.\n"
ANSWER = "E-42 means the paper tray is empty [1]."
TRACE = "Source 1 explains E-42 directly."
ROWS = [
    # label, stand-in dialect, settings, reasoning
    ("Ministral 3 8B 2512 on OpenRouter", "openrouter", {"OPENROUTER_API_KEY": LLM_KEY}, False),
    (
        "Ministral 8B 2410 (Mistral API)",
        "mistral",
        {"MISTRAL_API_KEY": LLM_KEY, "LLM_MODEL": "ministral-8b-2410"},
        False,
    ),
    (
        "Ministral 8B 2410 (OpenRouter)",
        "openrouter",
        {"OPENROUTER_API_KEY": LLM_KEY, "LLM_MODEL": "mistralai/ministral-8b"},
        False,
    ),
    ("Ministral 3 8B Instruct 2512 on Together", "together", {"TOGETHER_API_KEY": LLM_KEY}, False),
    (
        "Ministral 3 8B Instruct 2512 on vLLM",
        "vllm",
        {
            "LLM_BASE_URL": "{base}",
            "LLM_API_KEY": LLM_KEY,
            "LLM_MODEL": "mistralai/Ministral-3-8B-Instruct-2512",
        },
        False,
    ),
    (
        "Mistral Large 3 2512 (Mistral API)",
        "mistral",
        {"MISTRAL_API_KEY": LLM_KEY, "LLM_MODEL": "mistral-large-2512"},
        False,
    ),
    (
        "Ministral 3 3B Reasoning 2512 on vLLM",
        "vllm",
        {
            "LLM_BASE_URL": "{base}",
            "LLM_API_KEY": LLM_KEY,
            "LLM_MODEL": "mistralai/Ministral-3-3B-Reasoning-2512",
        },
        True,
    ),
    ("Mistral API direct (default model)", "mistral", {"MISTRAL_API_KEY": LLM_KEY}, False),
]


def screenshot(path: Path) -> Path:
    from PIL import Image, ImageDraw, ImageFont

    image = Image.new("RGB", (900, 120), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default(size=28)
    draw.text((20, 20), "PRINTER STATUS", fill="black", font=font)
    draw.text((20, 70), "Error E-42", fill="black", font=font)
    image.save(path)
    return path


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="docent-seeds-"))
    env = base_env(work / "data")
    (work / "printer.md").write_text(MANUAL)
    image = screenshot(work / "screenshot.png")
    print(
        manage(
            env, "ingest", str(work / "printer.md"), "--kb", "Printers", "--no-progress"
        ).stdout.strip()
    )
    llm = FakeLLM().start()
    failures = 0
    try:
        for label, dialect, settings, reasoning in ROWS:
            llm.control("POST", "reset")
            llm.control("POST", "config", {"dialect": dialect, "api_key": LLM_KEY})
            base = llm.url + ("/api/v1" if dialect == "openrouter" else "/v1")
            row_env = {**env, **{k: v.format(base=base) for k, v in settings.items()}}
            row_env.update(MISTRAL_BASE_URL=base, OPENROUTER_BASE_URL=base, TOGETHER_BASE_URL=base)
            llm.script({"text": ANSWER, "reasoning": TRACE if reasoning else None})
            described = manage(
                row_env,
                "shell",
                "-c",
                "from assistant.tools import llm_describe; print(llm_describe())",
            )
            result = manage(
                row_env,
                "ask",
                "--kb",
                "Printers",
                "--image",
                str(image),
                "What does this error mean?",
            )
            (request,) = [
                r
                for r in llm.control("GET", "requests")["requests"]
                if r["path"].endswith("/chat/completions")
            ]
            body = request["body"]
            sent = {k: v for k, v in body.items() if k not in ("messages", "model", "stream")}
            question = body["messages"][-1]["content"]
            text = (
                " ".join(p.get("text", "") for p in question if isinstance(p, dict))
                if isinstance(question, list)
                else question
            )
            shown = result.stdout.split("\nSources:")[0].strip()
            ok = result.returncode == 0 and shown == ANSWER and TRACE not in result.stdout
            failures += not ok
            settings_text = " ".join(f"{k}={v.format(base=base)}" for k, v in settings.items())
            print(f"\n## {label}  ({'ok' if ok else 'FAILED'})")
            print(
                f"$ {settings_text} manage.py ask --kb Printers --image screenshot.png 'What does this error mean?'"
            )
            print(f"  {described.stdout.strip()}")
            print(
                f"  sent: model={body['model']!r}, prompt {request['prompt_tokens']} tokens, images={request['n_images']}, OCR text in the question: {'E-42' in text}"
            )
            print(f"  parameters: {sent}")
            print(
                f"  shown: {shown!r}  (exit {result.returncode}); trace shown: {TRACE in result.stdout + result.stderr}"
            )
    finally:
        llm.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
