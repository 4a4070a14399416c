"""Settings for the test run: the real settings, on a throwaway DATA_DIR.

Everything the tests write (SQLite file, Chroma, uploads) lives in one temporary
folder, so a test run never touches a developer's ./data.
"""

from __future__ import annotations

import os
import tempfile

# Under pytest-xdist each worker gets a DATA_DIR (database, Chroma, uploads) of its own;
# the subprocesses a worker starts inherit DOCENT_TEST_WORKER and so keep its folder.
_worker = os.environ.get("PYTEST_XDIST_WORKER", "")
if _worker and os.environ.get("DOCENT_TEST_WORKER") != _worker:
    os.environ["DOCENT_TEST_WORKER"] = _worker
    os.environ["DATA_DIR"] = tempfile.mkdtemp(prefix="docent-test-")
    os.environ.pop("EMBEDDING_CACHE_DIR", None)
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="docent-test-"))
# One int8 embedder build for the run, shared by the subprocesses that have DATA_DIRs of
# their own (the build takes about 10 s; each would otherwise make its own).
os.environ.setdefault("EMBEDDING_CACHE_DIR", os.path.join(os.environ["DATA_DIR"], "models"))
os.environ.setdefault("LLM_BASE_URL", "")
# Test servers start in a second; tests that need the models load them themselves.
os.environ.setdefault("WARM_UP", "false")

from assistant.settings import *  # noqa: F403, E402
from assistant.settings import DATA_DIR, DATABASES  # noqa: E402

# A file, not :memory:, so worker and server subprocesses see the same database.
DATABASES["default"].setdefault("TEST", {})["NAME"] = str(DATA_DIR / "test.sqlite3")
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405  # serve static files straight from static/ without collectstatic
