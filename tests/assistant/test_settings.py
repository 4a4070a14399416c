"""Configuration: every variable documented, bad values stop start-up clearly."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import REPO


def settings_variables() -> set[str]:
    source = (REPO / "assistant/settings.py").read_text()
    names = set(re.findall(r'_get\(\s*"\w+",\s*"([A-Z_]+)"', source))
    names |= set(re.findall(r'_url\(\s*"([A-Z_]+)"', source))
    names |= set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', source))
    names |= set(re.findall(r'env\.\w+\("([A-Z_]+)"', source))
    return names - {"DOCENT_ENV_FILE"}


def test_env_example_lists_every_setting():
    documented = set(re.findall(r"^([A-Z_]+)=", (REPO / ".env.example").read_text(), re.M))
    assert settings_variables() == documented


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("MAX_UPLOAD_BYTES", "lots", "MAX_UPLOAD_BYTES='lots' is not a valid int"),
        ("INGEST_TIMEOUT_SECONDS", "0", "INGEST_TIMEOUT_SECONDS must be at least 0.1"),
        ("RETRIEVAL_MODE", "magic", "RETRIEVAL_MODE must be dense, lexical or hybrid"),
        ("LLM_BASE_URL", "localhost:8080", "LLM_BASE_URL must start with http"),
        ("DATABASE_URL", "nonsense://x", "DATABASE_URL is not a valid database URL"),
        ("CHUNK_OVERLAP_TOKENS", "500", "CHUNK_OVERLAP_TOKENS must be smaller"),
        ("EMBEDDING_BACKEND", "fp16", "EMBEDDING_BACKEND must be one of torch, onnx-int8"),
        ("EMAIL_BACKEND", "carrier.pigeon", "EMAIL_BACKEND must be one of console, smtp"),
        ("DEFAULT_FROM_EMAIL", "Docent", "DEFAULT_FROM_EMAIL must be an email address"),
        ("PASSWORD_RESET_WINDOW_SECONDS", "5", "PASSWORD_RESET_WINDOW_SECONDS must be at least 60"),
        ("INGEST_WORKERS", "-1", "INGEST_WORKERS must be at least 0"),
        ("INGEST_SMALL_WORKERS", "many", "INGEST_SMALL_WORKERS='many' is not a valid int"),
    ],
)
def test_invalid_settings_stop_start_up(tmp_path, name, value, message):
    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "DATA_DIR": str(tmp_path),
            name: value,
            "DOCENT_ENV_FILE": "/nonexistent",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and message in result.stderr


def test_data_dirs_never_mix(tmp_path):
    """Two DATA_DIRs: separate databases, files and secret keys."""
    outputs = []
    for name in ("one", "two"):
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                "from django.conf import settings as s; import django; django.setup();"
                "print(s.DATABASES['default']['NAME'], s.MEDIA_ROOT, s.SECRET_KEY)",
            ],
            cwd=REPO,
            env={
                "PATH": "/usr/bin:/bin",
                "DATA_DIR": str(tmp_path / name),
                "DJANGO_SETTINGS_MODULE": "assistant.settings",
                "DOCENT_ENV_FILE": "/nonexistent",
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        outputs.append(result.stdout.split())
    (db1, media1, key1), (db2, media2, key2) = outputs
    assert str(tmp_path / "one") in db1 and str(tmp_path / "two") in db2
    assert media1 != media2 and key1 != key2


def test_env_example_as_it_ships_keeps_every_folder_in_data_dir(tmp_path):
    """Copying .env.example to .env changes nothing: its blank paths mean the defaults."""
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from django.conf import settings as s; import django; django.setup();"
            "print(s.MEDIA_ROOT, s.EMBEDDING_CACHE_DIR, s.EMBEDDING_BACKEND)",
        ],
        cwd=REPO,
        env={
            "PATH": "/usr/bin:/bin",
            "DATA_DIR": str(tmp_path),
            "DJANGO_SETTINGS_MODULE": "assistant.settings",
            "DOCENT_ENV_FILE": str(REPO / ".env.example"),
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    media, cache, backend = result.stdout.split()
    assert media == str(tmp_path / "files") and cache == str(tmp_path / "models")
    assert backend == "onnx-int8"
