"""Django settings for Docent.

Every knob comes from an environment variable with a typed default; `.env.example`
lists them all. A blank value means the default, so that file works as it ships. A value
that cannot be parsed, or is out of range, stops start-up with ImproperlyConfigured
instead of surfacing later as a confusing failure.
"""

from __future__ import annotations

import email.utils
import importlib.util
import ipaddress
import os
import secrets
from pathlib import Path

import environ
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
_env_file = os.environ.get("DOCENT_ENV_FILE", str(BASE_DIR / ".env"))
if Path(_env_file).is_file():
    environ.Env.read_env(_env_file, overwrite=False)


def _get(
    kind: str,
    name: str,
    default: object,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    choices: tuple[str, ...] = (),
):
    """Read one variable with django-environ and turn parse errors into ImproperlyConfigured."""
    if os.environ.get(name) == "":
        return default
    try:
        value = getattr(env, kind)(name, default=default)
    except (ValueError, TypeError) as exc:
        raise ImproperlyConfigured(
            f"{name}={os.environ.get(name)!r} is not a valid {kind}"
        ) from exc
    if minimum is not None and value is not None and value < minimum:
        raise ImproperlyConfigured(f"{name} must be at least {minimum}, got {value}")
    if maximum is not None and value is not None and value > maximum:
        raise ImproperlyConfigured(f"{name} must be at most {maximum}, got {value}")
    if choices and value not in choices:
        raise ImproperlyConfigured(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _url(name: str, default: str) -> str:
    value = _get("str", name, default)
    if value and not value.startswith(("http://", "https://")):
        raise ImproperlyConfigured(f"{name} must start with http:// or https://, got {value!r}")
    return value


# Offline by default: no library may phone home (model hubs, usage telemetry). Set before
# any of them is imported, and inherited by every child process (worker, sandbox, Chroma).
for _name, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "ANONYMIZED_TELEMETRY": "False",  # Chroma
    "ORT_DISABLE_TELEMETRY": "1",  # onnxruntime (OCR) 1.29+ uploads usage events otherwise
    "DO_NOT_TRACK": "1",
    "POSTHOG_DISABLED": "1",
}.items():
    os.environ.setdefault(_name, _value)


# --- Paths --------------------------------------------------------------------------------
# Everything Docent writes (the SQLite database, uploads, vectors, logs) is for its own
# user only: files 0600, folders 0700, in this process and every child it starts.
os.umask(0o077)
FILE_UPLOAD_PERMISSIONS = 0o600
FILE_UPLOAD_DIRECTORY_PERMISSIONS = 0o700
DATA_DIR = Path(_get("str", "DATA_DIR", str(BASE_DIR / "data"))).expanduser().resolve()
DATA_DIR.mkdir(mode=0o700, parents=True, exist_ok=True)
# Uploaded files: a folder (shared between machines when several run), or S3 below.
MEDIA_ROOT = Path(_get("str", "MEDIA_DIR", str(DATA_DIR / "files"))).expanduser().resolve()
MEDIA_URL = "/media/"
STATIC_ROOT = DATA_DIR / "static"
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]


_PLACEHOLDER_KEYS = {"change-me-to-a-long-random-string", "changeme", "secret", "..."}


def _secret_key(debug: bool) -> str:
    """SECRET_KEY from the environment, else one generated once per DATA_DIR and kept there.

    With DEBUG off, a known placeholder or a key under 50 characters stops start-up:
    whoever knows the key can forge sessions, widget tokens and citation links.
    """
    if key := os.environ.get("SECRET_KEY"):
        if not debug and (key in _PLACEHOLDER_KEYS or key.startswith("change-me") or len(key) < 50):
            raise ImproperlyConfigured(
                "SECRET_KEY is a placeholder or shorter than 50 characters. Generate one with "
                "python -c 'import secrets; print(secrets.token_urlsafe(50))', or leave it "
                "unset on a single machine to have one generated in DATA_DIR."
            )
        return key
    path = DATA_DIR / "secret_key"
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_urlsafe(50))
    return path.read_text().strip()


# --- Core Django --------------------------------------------------------------------------
DEBUG = _get("bool", "DEBUG", False)
SECRET_KEY = _secret_key(DEBUG)
ALLOWED_HOSTS = _get("list", "ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
CSRF_TRUSTED_ORIGINS = _get("list", "CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "corsheaders",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.forms",  # its widget templates, for FORM_RENDERER below
    "django_tasks",
    "django_tasks_db",
    "ingest",
    "assistant",
]

MIDDLEWARE = [
    "assistant.middleware.AsyncBodiesMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # Before WhiteNoise and CORS, which answer some requests themselves: every response
    # gets the headers.
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "assistant.middleware.WidgetCorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "assistant.middleware.NulRefusedMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "assistant.middleware.DatabaseBusyMiddleware",
]

ROOT_URLCONF = "assistant.urls"
# Form widgets render from the same templates as the pages (templates/ first).
FORM_RENDERER = "django.forms.renderers.TemplatesSetting"
WSGI_APPLICATION = "assistant.wsgi.application"
ASGI_APPLICATION = "assistant.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

_default_db = f"sqlite:///{DATA_DIR / 'docent.sqlite3'}"
try:
    DATABASES = {"default": env.db_url_config(os.environ.get("DATABASE_URL") or _default_db)}
except (ValueError, KeyError) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from exc
_engine = DATABASES["default"].get("ENGINE", "")
if _engine not in {"django.db.backends.sqlite3", "django.db.backends.postgresql"}:
    raise ImproperlyConfigured(
        f"DATABASE_URL is not a valid database URL: use sqlite:/// or postgres:// (got {_engine!r})"
    )
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Web, worker and CLI share one file: WAL lets readers run beside the one writer, and
    # IMMEDIATE transactions queue writers on busy_timeout instead of failing on upgrade.
    DATABASES["default"]["OPTIONS"] = {
        "timeout": _get("float", "SQLITE_BUSY_TIMEOUT", 30.0, minimum=0),
        "transaction_mode": "IMMEDIATE",
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

STORAGE_BACKEND = _get("str", "STORAGE_BACKEND", "filesystem")
if STORAGE_BACKEND == "s3":
    # S3 or any S3-compatible store (MinIO, Ceph, R2) through django-storages: pip install ".[s3]".
    AWS_STORAGE_BUCKET_NAME = _get("str", "AWS_STORAGE_BUCKET_NAME", "")
    AWS_S3_ENDPOINT_URL = _get("str", "AWS_S3_ENDPOINT_URL", "") or None
    AWS_S3_REGION_NAME = _get("str", "AWS_S3_REGION_NAME", "") or None
    AWS_ACCESS_KEY_ID = _get("str", "AWS_ACCESS_KEY_ID", "") or None
    AWS_SECRET_ACCESS_KEY = _get("str", "AWS_SECRET_ACCESS_KEY", "") or None
    AWS_DEFAULT_ACL = None
    AWS_QUERYSTRING_AUTH = True
    if not AWS_STORAGE_BUCKET_NAME:
        raise ImproperlyConfigured("STORAGE_BACKEND=s3 needs AWS_STORAGE_BUCKET_NAME")
    _default_storage = {"BACKEND": "storages.backends.s3.S3Storage"}
elif STORAGE_BACKEND == "filesystem":
    _default_storage = {"BACKEND": "django.core.files.storage.FileSystemStorage"}
else:
    raise ImproperlyConfigured("STORAGE_BACKEND must be filesystem or s3")
STORAGES = {
    "default": _default_storage,
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Two ingest lanes: "small" (files under INGEST_SMALL_BYTES, taken first) and "default".
TASKS = {"default": {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["small", "default"]}}

# --- HTTPS and cookies (turn these on behind TLS; `manage.py check --deploy` checks them) ---
SECURE_SSL_REDIRECT = _get("bool", "SECURE_SSL_REDIRECT", False)
SESSION_COOKIE_SECURE = _get("bool", "SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_HSTS_SECONDS = _get("int", "SECURE_HSTS_SECONDS", 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = _get("bool", "SECURE_HSTS_PRELOAD", False)
if _get("bool", "TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
# Pages load nothing but their own static files: no inline script, no third parties.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
    }
}
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True
AUTHENTICATION_BACKENDS = ["assistant.signin.ThrottledModelBackend"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": f"django.contrib.auth.password_validation.{name}"}
    for name in (
        "UserAttributeSimilarityValidator",
        "MinimumLengthValidator",
        "CommonPasswordValidator",
        "NumericPasswordValidator",
    )
]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"
# A refused form (a missing or stale CSRF token) gets a Docent page with a way back.
CSRF_FAILURE_VIEW = "assistant.errors.csrf_failure"

# --- Email (password reset links) ---------------------------------------------------------
_EMAIL_BACKENDS = {
    "console": "django.core.mail.backends.console.EmailBackend",  # printed in the server log
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
    "file": "django.core.mail.backends.filebased.EmailBackend",  # one file per message
    "locmem": "django.core.mail.backends.locmem.EmailBackend",
    "dummy": "django.core.mail.backends.dummy.EmailBackend",  # dropped
}


def _email_backend() -> str:
    """EMAIL_BACKEND: a short name (console, smtp, file, locmem, dummy) or a dotted path."""
    value = _get("str", "EMAIL_BACKEND", "console")
    if value in _EMAIL_BACKENDS:
        return _EMAIL_BACKENDS[value]
    module, _, name = value.rpartition(".")
    try:
        found = bool(module and name) and importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise ImproperlyConfigured(
            f"EMAIL_BACKEND must be one of {', '.join(_EMAIL_BACKENDS)} or the dotted path "
            f"of an installed email backend, got {value!r}"
        )
    return value


EMAIL_BACKEND = _email_backend()
EMAIL_HOST = _get("str", "EMAIL_HOST", "localhost")
EMAIL_PORT = _get("int", "EMAIL_PORT", 25, minimum=1, maximum=65535)
EMAIL_HOST_USER = _get("str", "EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = _get("str", "EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = _get("bool", "EMAIL_USE_TLS", False)  # STARTTLS, usually port 587
EMAIL_USE_SSL = _get("bool", "EMAIL_USE_SSL", False)  # TLS from the start, usually port 465
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("Set EMAIL_USE_TLS or EMAIL_USE_SSL, not both")
EMAIL_TIMEOUT = _get("float", "EMAIL_TIMEOUT", 10.0, minimum=1)  # seconds
EMAIL_FILE_PATH = str(DATA_DIR / "mail")  # the file backend's folder
DEFAULT_FROM_EMAIL = _get("str", "DEFAULT_FROM_EMAIL", "Docent <docent@localhost>")
if "@" not in email.utils.parseaddr(DEFAULT_FROM_EMAIL)[1]:
    raise ImproperlyConfigured(
        f"DEFAULT_FROM_EMAIL must be an email address such as Docent <help@example.com>, "
        f"got {DEFAULT_FROM_EMAIL!r}"
    )
SERVER_EMAIL = DEFAULT_FROM_EMAIL

LOG_LEVEL = _get("str", "LOG_LEVEL", "INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": "WARNING"},
    "loggers": {
        "docent": {"level": LOG_LEVEL},
        "django_tasks_db": {"level": LOG_LEVEL},
    },
}

# --- Ingest -------------------------------------------------------------------------------
DOCENT_HOST = _get("str", "DOCENT_HOST", "127.0.0.1")
DOCENT_PORT = _get("int", "DOCENT_PORT", 8000, minimum=1)
# Each web process loads the embedder, tokenizer and OCR as it starts (GET /healthz says 503
# until done), so the first question is as quick as later ones.
WARM_UP = _get("bool", "WARM_UP", True)
CHROMA_URL = _get("str", "CHROMA_URL", "")
# Sent as X-Chroma-Token to CHROMA_URL: Chroma 1.x has no authentication of its own, so a
# shared server sits behind a proxy that checks this (deploy/README.md shows nginx).
CHROMA_TOKEN = _get("str", "CHROMA_TOKEN", "")
# Seconds one Chroma request may take: a stalled server fails the request (and is retried
# as unreachable) instead of holding a question or an ingest forever.
CHROMA_TIMEOUT_SECONDS = _get("float", "CHROMA_TIMEOUT_SECONDS", 60.0, minimum=1)
EMBEDDING_MODEL_PATH = _get("str", "EMBEDDING_MODEL_PATH", "")
# onnx-int8 (the default): the model quantized here, built on first use under
# EMBEDDING_CACHE_DIR or by `manage.py embedder_build`; python-faq hybrid R@5 0.959 and
# MRR@10 0.849 against torch's 0.959 / 0.850, with a third of the CPU per question
# (bench/embed_backends.py). torch: the model as shipped, float32. A knowledge base keeps
# the backend that indexed it until `manage.py kb_reindex` moves it to this one.
EMBEDDING_BACKEND = _get("str", "EMBEDDING_BACKEND", "onnx-int8", choices=("torch", "onnx-int8"))
# Where the onnx-int8 build is kept.
EMBEDDING_CACHE_DIR = (
    Path(_get("str", "EMBEDDING_CACHE_DIR", str(DATA_DIR / "models"))).expanduser().resolve()
)
EMBED_BATCH_SIZE = _get("int", "EMBED_BATCH_SIZE", 32, minimum=1)
MAX_UPLOAD_BYTES = _get("int", "MAX_UPLOAD_BYTES", 100 * 1024 * 1024, minimum=1)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
MAX_PDF_PAGES = _get("int", "MAX_PDF_PAGES", 2000, minimum=1)
MAX_IMAGE_PIXELS = _get("int", "MAX_IMAGE_PIXELS", 64_000_000, minimum=1)
MAX_EXTRACTED_CHARS = _get("int", "MAX_EXTRACTED_CHARS", 50_000_000, minimum=1)
INGEST_TIMEOUT_SECONDS = _get("float", "INGEST_TIMEOUT_SECONDS", 900.0, minimum=0.1)
INGEST_MEMORY_LIMIT_MB = _get("int", "INGEST_MEMORY_LIMIT_MB", 6144, minimum=256)
INGEST_MAX_ATTEMPTS = _get("int", "INGEST_MAX_ATTEMPTS", 3, minimum=1)
WORKER_LEASE_SECONDS = _get("float", "WORKER_LEASE_SECONDS", 60.0, minimum=1)
# Uploads smaller than this (bytes) go to the "small" lane, which a worker of its own serves.
INGEST_SMALL_BYTES = _get("int", "INGEST_SMALL_BYTES", 256 * 1024, minimum=0)
# Worker processes `manage.py serve` starts. Each takes one document at a time and holds
# about 1 GB, and embedding a batch uses two cores well, so one per two cores (at most 8)
# takes both lanes; INGEST_SMALL_WORKERS more take only small files.
INGEST_WORKERS = _get(
    "int", "INGEST_WORKERS", min(8, max(1, (os.cpu_count() or 1) // 2)), minimum=0, maximum=64
)
INGEST_SMALL_WORKERS = _get("int", "INGEST_SMALL_WORKERS", 1, minimum=0, maximum=64)
if INGEST_WORKERS + INGEST_SMALL_WORKERS == 0:
    raise ImproperlyConfigured("INGEST_WORKERS and INGEST_SMALL_WORKERS can't both be 0")
# Folders a knowledge base's settings may name for the worker to mirror (absolute paths,
# comma-separated); empty: only `manage.py sync` syncs folders.
SYNC_FOLDER_ROOTS = _get("list", "SYNC_FOLDER_ROOTS", [])
SYNC_INTERVAL_SECONDS = _get("float", "SYNC_INTERVAL_SECONDS", 300.0, minimum=5)
OCR_ENABLED = _get("bool", "OCR_ENABLED", True)
OCR_MIN_TEXT_HEIGHT_PX = _get("int", "OCR_MIN_TEXT_HEIGHT_PX", 32, minimum=1)
CHUNK_MAX_TOKENS = _get("int", "CHUNK_MAX_TOKENS", 200, minimum=16)
CHUNK_OVERLAP_TOKENS = _get("int", "CHUNK_OVERLAP_TOKENS", 40, minimum=0)
if CHUNK_OVERLAP_TOKENS >= CHUNK_MAX_TOKENS:
    raise ImproperlyConfigured("CHUNK_OVERLAP_TOKENS must be smaller than CHUNK_MAX_TOKENS")
DEFAULT_KB_NAME = _get("str", "DEFAULT_KB_NAME", "default")

# --- Chat ---------------------------------------------------------------------------------
# Which model: a provider key (MISTRAL_API_KEY, OPENROUTER_API_KEY, TOGETHER_API_KEY) or any
# OpenAI-compatible server (LLM_BASE_URL). See assistant/llm/config.py for the precedence.
LLM_PROVIDER = _get(
    "str",
    "LLM_PROVIDER",
    "auto",
    choices=("auto", "mistral", "openrouter", "together", "openai-compatible"),
)
LLM_BASE_URL = _url("LLM_BASE_URL", "")
LLM_API_KEY = _get("str", "LLM_API_KEY", "")
LLM_MODEL = _get("str", "LLM_MODEL", "")
MISTRAL_API_KEY = _get("str", "MISTRAL_API_KEY", "")
MISTRAL_BASE_URL = _url("MISTRAL_BASE_URL", "https://api.mistral.ai/v1")
OPENROUTER_API_KEY = _get("str", "OPENROUTER_API_KEY", "")
OPENROUTER_BASE_URL = _url("OPENROUTER_BASE_URL", "https://openrouter.ai/api/v1")
OPENROUTER_HTTP_REFERER = _get("str", "OPENROUTER_HTTP_REFERER", "")  # your site, for rankings
OPENROUTER_X_TITLE = _get("str", "OPENROUTER_X_TITLE", "")  # your app's name on OpenRouter
TOGETHER_API_KEY = _get("str", "TOGETHER_API_KEY", "")
TOGETHER_BASE_URL = _url("TOGETHER_BASE_URL", "https://api.together.xyz/v1")
LLM_CONTEXT_WINDOW = _get("int", "LLM_CONTEXT_WINDOW", None, minimum=1024)  # tokens
LLM_DISCOVER = _get("bool", "LLM_DISCOVER", True)  # read windows from the server's GET /models
LLM_TIMEOUT_SECONDS = _get("float", "LLM_TIMEOUT_SECONDS", 60.0, minimum=1)
LLM_MAX_RETRIES = _get("int", "LLM_MAX_RETRIES", 3, minimum=0)
LLM_RETRY_MAX_SECONDS = _get("float", "LLM_RETRY_MAX_SECONDS", 30.0, minimum=0)
LLM_MAX_TOKENS = _get("int", "LLM_MAX_TOKENS", None, minimum=16)
# Sampling; unset means the model card's default (Reasoning models: 0.7 and 0.95).
LLM_TEMPERATURE = _get("float", "LLM_TEMPERATURE", None, minimum=0, maximum=2)
LLM_TOP_P = _get("float", "LLM_TOP_P", None, minimum=0, maximum=1)
LLM_STOP = _get("list", "LLM_STOP", [])
LLM_SEED = _get("int", "LLM_SEED", None, minimum=0)
LLM_FREQUENCY_PENALTY = _get("float", "LLM_FREQUENCY_PENALTY", None, minimum=-2, maximum=2)
LLM_PRESENCE_PENALTY = _get("float", "LLM_PRESENCE_PENALTY", None, minimum=-2, maximum=2)
LLM_REWRITE_MODEL = _get("str", "LLM_REWRITE_MODEL", "")  # an instruct model for follow-ups
RETRIEVAL_BUDGET_TOKENS = _get("int", "RETRIEVAL_BUDGET_TOKENS", 32_000, minimum=256)
CONTEXT_MARGIN_TOKENS = _get("int", "CONTEXT_MARGIN_TOKENS", 512, minimum=0)
RETRIEVAL_MODE = _get("str", "RETRIEVAL_MODE", "hybrid")
if RETRIEVAL_MODE not in {"dense", "lexical", "hybrid"}:
    raise ImproperlyConfigured("RETRIEVAL_MODE must be dense, lexical or hybrid")
RETRIEVAL_LEXICAL_WEIGHT = _get("float", "RETRIEVAL_LEXICAL_WEIGHT", 0.15, minimum=0)
RETRIEVAL_LEXICAL_MAX_POSTINGS = _get("int", "RETRIEVAL_LEXICAL_MAX_POSTINGS", 10_000, minimum=0)
MAX_QUESTION_CHARS = _get("int", "MAX_QUESTION_CHARS", 8000, minimum=10)
MAX_CHAT_IMAGE_BYTES = _get("int", "MAX_CHAT_IMAGE_BYTES", 10 * 1024 * 1024, minimum=1024)
# Width x height of a pasted screenshot, checked from its header before it is decoded.
MAX_CHAT_IMAGE_PIXELS = _get("int", "MAX_CHAT_IMAGE_PIXELS", 4096 * 4096, minimum=1)
# A request's whole body (bytes), refused before it is read; uploads have MAX_UPLOAD_BYTES.
MAX_REQUEST_BYTES = _get("int", "MAX_REQUEST_BYTES", 25 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = MAX_REQUEST_BYTES  # the same limit under WSGI (runserver, tests)
# Questions per day (UTC) on the chat page and the API; 0 turns a limit off.
CHAT_QUOTA_PER_SESSION = _get("int", "CHAT_QUOTA_PER_SESSION", 100, minimum=0)
CHAT_QUOTA_PER_IP = _get("int", "CHAT_QUOTA_PER_IP", 300, minimum=0)
CHAT_QUOTA_PER_ACCOUNT = _get("int", "CHAT_QUOTA_PER_ACCOUNT", 2000, minimum=0)
# redis://host:6379/0: question quotas counted in Redis (pip install ".[redis]"); unset:
# in the database. Either way every web process shares them.
QUOTA_REDIS_URL = _get("str", "QUOTA_REDIS_URL", "")
if QUOTA_REDIS_URL and importlib.util.find_spec("redis") is None:
    raise ImproperlyConfigured('QUOTA_REDIS_URL needs the redis package: pip install ".[redis]"')
if QUOTA_REDIS_URL and not QUOTA_REDIS_URL.startswith(("redis://", "rediss://", "unix://")):
    raise ImproperlyConfigured(
        f"QUOTA_REDIS_URL must start with redis://, rediss:// or unix://, got {QUOTA_REDIS_URL!r}"
    )
# Links in answers: "all" (outside links marked as such) or "documents" (only citations).
ANSWER_LINKS = _get("str", "ANSWER_LINKS", "all", choices=("all", "documents"))
REWRITE_FOLLOWUPS = _get("bool", "REWRITE_FOLLOWUPS", True)

# --- Embeddable widget ---------------------------------------------------------------------
WIDGET_SESSION_SECONDS = _get("int", "WIDGET_SESSION_SECONDS", 3600, minimum=60)
# How long a citation link from the widget opens its document (seconds).
WIDGET_CITATION_SECONDS = _get("int", "WIDGET_CITATION_SECONDS", 3600, minimum=60)
# How long the signed citation links in API answers open their pages (seconds): an API
# client hands them to its users, so they outlive a widget's. Revoking the key ends them.
API_CITATION_SECONDS = _get("int", "API_CITATION_SECONDS", 7 * 24 * 3600, minimum=60)
# New visitor ids one IP address may get per widget per day; past it they share one.
WIDGET_VISITORS_PER_IP = _get("int", "WIDGET_VISITORS_PER_IP", 20, minimum=1)
# Off: the address comes from the server (uvicorn --proxy-headers resolves proxies).
TRUST_X_FORWARDED_FOR = _get("bool", "TRUST_X_FORWARDED_FOR", False)
FORWARDED_ALLOW_IPS = _get("list", "FORWARDED_ALLOW_IPS", ["127.0.0.1", "::1"])
for _proxy in FORWARDED_ALLOW_IPS:
    try:
        if _proxy != "*":
            ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(
            f"FORWARDED_ALLOW_IPS: {_proxy!r} is not an address or a network"
        ) from _exc
# Sign-in: failures per account (from addresses it never signed in from) and per address
# within LOGIN_WINDOW_SECONDS before further attempts wait for the window to end.
LOGIN_FAILURES_PER_ACCOUNT = _get("int", "LOGIN_FAILURES_PER_ACCOUNT", 10, minimum=1)
LOGIN_FAILURES_PER_IP = _get("int", "LOGIN_FAILURES_PER_IP", 30, minimum=1)
LOGIN_WINDOW_SECONDS = _get("int", "LOGIN_WINDOW_SECONDS", 900, minimum=60)
# Password reset requests per address (IP) and per email address within the window
# (seconds); past either, the form asks to wait, so it can't be used to flood a mailbox.
PASSWORD_RESET_PER_IP = _get("int", "PASSWORD_RESET_PER_IP", 10, minimum=0)
PASSWORD_RESET_PER_ADDRESS = _get("int", "PASSWORD_RESET_PER_ADDRESS", 3, minimum=0)
PASSWORD_RESET_WINDOW_SECONDS = _get("int", "PASSWORD_RESET_WINDOW_SECONDS", 3600, minimum=60)
# CORS applies only to the widget's API, and only for origins a widget allows (checked
# per request in assistant.apps); nothing else on the site is readable cross-origin.
CORS_URLS_REGEX = r"^/widget/api/"
CORS_ALLOWED_ORIGINS: list[str] = []
CORS_EXPOSE_HEADERS = ["Retry-After"]
CORS_ALLOW_CREDENTIALS = False
