from __future__ import annotations

import logging
import os
import threading

from django.conf import settings
from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
_django = get_asgi_application()

from assistant.bodylimit import BodyLimit  # noqa: E402 - needs the settings configured
from assistant.mcp_server import http_app  # noqa: E402

_mcp = http_app()


async def _route(scope, receive, send) -> None:
    """/mcp to the MCP server, the rest to Django. Lifespan events go to the MCP server
    too: they start and stop its session manager (Django has no use for them)."""
    path = scope.get("path", "")
    if scope["type"] == "lifespan" or path == "/mcp" or path.startswith("/mcp/"):
        await _mcp(scope, receive, send)
    else:
        await _django(scope, receive, send)


application = BodyLimit(_route)


def _say_which_model() -> None:
    """One log line at start-up: provider, model, window and mode (asks the server's
    GET /models, so it runs beside start-up rather than delaying it)."""
    from assistant.tools import llm_describe

    logger = logging.getLogger("docent.chat")
    try:
        logger.info("%s", llm_describe())
    except Exception:  # a start-up report must never stop the server
        logger.exception("Could not describe the configured model")


def _warm_up() -> None:
    """Load the heavy models beside start-up; GET /healthz is 503 until this is done."""
    import time

    from django.db import connection

    from assistant.tools import chat_tools_warm

    logger = logging.getLogger("docent.chat")
    started = time.perf_counter()
    try:
        parts = chat_tools_warm()
    except Exception:  # a failed warm-up only means a slower first question
        logger.exception("Could not load the models ahead of the first question")
        return
    finally:
        connection.close()  # this thread's, opened to see which embedders are in use
    detail = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in parts.items())
    logger.info(
        "Ready for questions: models loaded in %.1f s (%s)", time.perf_counter() - started, detail
    )


def _embed_questions_lean() -> None:
    """The web process embeds one question at a time: one thread costs the least CPU."""
    from ingest.pipeline.embed import embedding_threads_limit

    embedding_threads_limit(threads=1)


_embed_questions_lean()
threading.Thread(target=_say_which_model, name="model-report", daemon=True).start()
if settings.WARM_UP:
    threading.Thread(target=_warm_up, name="warm-up", daemon=True).start()
