"""Shared set-up for benchmarks: Django on a throwaway DATA_DIR, and machine facts."""

from __future__ import annotations

import atexit
import os
import platform
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
# Benchmarks use throwaway DATA_DIRs but build the int8 embedder once, where `make run`
# keeps it.
EMBEDDING_CACHE = REPO / "data" / "models"


def django_setup(data_dir: str | None = None) -> Path:
    """Configure Django on its own DATA_DIR (never ./data) and migrate it."""
    sys.path.insert(0, str(REPO))
    if data_dir is None:
        data_dir = tempfile.mkdtemp(prefix="docent-bench-")
        atexit.register(shutil.rmtree, data_dir, ignore_errors=True)
    os.environ["DATA_DIR"] = data_dir
    os.environ.setdefault("EMBEDDING_CACHE_DIR", str(EMBEDDING_CACHE))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "assistant.settings")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    return Path(os.environ["DATA_DIR"])


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        memory = f", {kb / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0
    return f"{os.cpu_count()} cores ({cpu}){memory}, Python {platform.python_version()}, load {load:.1f}"
