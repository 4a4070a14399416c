"""The JSON REST API root: /api/, with its OpenAPI schema at /api/openapi.json."""

from __future__ import annotations

from ninja import NinjaAPI
from ninja.security import SessionAuthIsStaff

from ingest.api import router as documents_router

api = NinjaAPI(
    title="Docent API",
    version="1",
    description="Knowledge bases, documents, chat and conversations.",
    urls_namespace="api",
    auth=[SessionAuthIsStaff()],
)
api.add_router("/", documents_router)
