from __future__ import annotations

import logging
import os
import threading

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
_django = get_asgi_application()

from assistant.bodylimit import BodyLimit  # noqa: E402 - needs the settings configured

application = BodyLimit(_django)


def _say_which_model() -> None:
    """One log line at start-up: provider, model, window and mode (asks the server's
    GET /models, so it runs beside start-up rather than delaying it)."""
    from assistant.tools import llm_describe

    logger = logging.getLogger("docent.chat")
    try:
        logger.info("%s", llm_describe())
    except Exception:  # a start-up report must never stop the server
        logger.exception("Could not describe the configured model")


threading.Thread(target=_say_which_model, name="model-report", daemon=True).start()
