"""JSON API for knowledge bases and documents (django-ninja): thin, every action a service."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from ninja import Field, File, ModelSchema, Router, Schema, Status
from ninja.errors import HttpError
from ninja.files import UploadedFile

from ingest.access import kb_manageable, kb_readable, kbs_readable
from ingest.estimates import QueueSnapshot, queue_snapshot
from ingest.models import Document, KnowledgeBase
from ingest.pipeline.types import IngestError
from ingest.selectors import documents_page
from ingest.services import (
    KnowledgeBaseExists,
    document_create,
    document_delete,
    document_reindex,
    document_tag_set,
    documents_bulk_delete,
    documents_bulk_reindex,
    kb_create,
    kb_delete,
    kb_update,
)
from ingest.services.bulk import MAX_BULK_IDS
from ingest.services.lifecycle import document_cancel
from ingest.store import get_store

router = Router(tags=["documents"])


class KnowledgeBaseOut(ModelSchema):
    document_count: int

    class Meta:
        model = KnowledgeBase
        fields = ["name", "slug", *KnowledgeBase.SETTINGS, "created_at"]

    @staticmethod
    def resolve_document_count(obj: KnowledgeBase) -> int:
        return obj.documents.count()


class KnowledgeBaseIn(ModelSchema):
    class Meta:
        model = KnowledgeBase
        fields = ["name", *KnowledgeBase.SETTINGS]
        fields_optional = list(KnowledgeBase.SETTINGS)


class KnowledgeBasePatch(ModelSchema):
    class Meta:
        model = KnowledgeBase
        fields = ["name", *KnowledgeBase.SETTINGS]
        fields_optional = "__all__"


class DocumentOut(Schema):
    id: int
    kb: str
    filename: str
    kind: str
    tag: str  # a free-form label admins set; questions can be limited to it (filters.tags)
    source: str  # where a synced document came from: its file's path; "" for an upload
    mime_type: str
    size_bytes: int
    sha256: str
    page_count: int | None
    status: str
    stage: str
    progress: int
    progress_detail: str  # how far, in words: "page 12 of 117", "embedding 340 of 1,200 passages"
    error: str
    retryable: bool  # whether re-indexing can succeed now (Document.retryable)
    queue_position: int | None  # 1-based among queued documents; None unless queued
    eta_seconds: int | None  # estimated seconds until ready; None if not measurable
    chunk_count: int
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None
    url: str

    @staticmethod
    def resolve_kb(obj: Document) -> str:
        return obj.kb.slug

    @staticmethod
    def resolve_queue_position(obj: Document, context) -> int | None:
        return _queue(context).queue_position(obj)

    @staticmethod
    def resolve_eta_seconds(obj: Document, context) -> int | None:
        return _queue(context).eta_seconds(obj)

    @staticmethod
    def resolve_url(obj: Document) -> str:
        return f"/documents/{obj.pk}/"


def _queue(context) -> QueueSnapshot:
    """One queue snapshot per request, shared by every document in the response."""
    request = (context or {}).get("request")
    snapshot = getattr(request, "_docent_queue", None)
    if snapshot is None:
        snapshot = queue_snapshot()
        if request is not None:
            request._docent_queue = snapshot
    return snapshot


class UploadOut(Schema):
    document: DocumentOut
    created: bool


class ChunkOut(Schema):
    ordinal: int
    page: int | None
    heading: str
    text: str
    token_count: int


def caller(request) -> tuple[object | None, object | None]:
    """(user, api key) behind a request; exactly one of them authenticates it."""
    key = getattr(request, "api_key", None)
    return (None, key) if key is not None else (request.user, None)


def kb_for(request, slug: str, *, manage: bool = False) -> KnowledgeBase:
    """The knowledge base if this caller may read it (404 otherwise, so others' names don't
    leak), and may manage it when `manage` (403 otherwise)."""
    user, key = caller(request)
    kb = KnowledgeBase.objects.filter(slug=slug).first()
    if kb is None or not kb_readable(kb=kb, user=user, key=key):
        raise HttpError(404, "Not Found")
    if manage and not kb_manageable(kb=kb, user=user, key=key):
        raise HttpError(403, "This key or account may not change this knowledge base.")
    return kb


def document_for(request, pk: int, *, manage: bool = False) -> Document:
    document = Document.objects.select_related("kb").filter(pk=pk).first()
    if document is None:
        raise HttpError(404, "Not Found")
    kb_for(request, document.kb.slug, manage=manage)
    return document


def staff_only(request) -> None:
    user, key = caller(request)
    if key is not None or not getattr(user, "is_staff", False):
        raise HttpError(403, "Only staff accounts may manage knowledge bases.")


@router.get("/kbs", response=list[KnowledgeBaseOut], summary="List knowledge bases")
def kb_list_endpoint(request):
    user, key = caller(request)
    return list(kbs_readable(user=user, key=key))


@router.post("/kbs", response={201: KnowledgeBaseOut}, summary="Create a knowledge base")
def kb_create_endpoint(request, payload: KnowledgeBaseIn):
    staff_only(request)
    try:
        kb = kb_create(**payload.dict(exclude_unset=True))
    except KnowledgeBaseExists as exc:
        raise HttpError(409, str(exc)) from exc
    except ValueError as exc:
        raise HttpError(422, str(exc)) from exc
    return Status(201, kb)


@router.get("/kbs/{slug}", response=KnowledgeBaseOut, summary="One knowledge base")
def kb_detail_endpoint(request, slug: str):
    return kb_for(request, slug)


@router.patch("/kbs/{slug}", response=KnowledgeBaseOut, summary="Rename or change settings")
def kb_update_endpoint(request, slug: str, payload: KnowledgeBasePatch):
    staff_only(request)
    kb = kb_for(request, slug)
    try:
        return kb_update(kb=kb, **payload.dict(exclude_unset=True))
    except KnowledgeBaseExists as exc:
        raise HttpError(409, str(exc)) from exc
    except ValueError as exc:
        raise HttpError(422, str(exc)) from exc


@router.delete("/kbs/{slug}", response={204: None}, summary="Delete with all documents")
def kb_remove(request, slug: str):
    staff_only(request)
    kb_delete(kb=kb_for(request, slug), store=get_store())
    return Status(204, None)


MAX_OFFSET = 10**12  # rows; any list offset beyond this returns nothing anyway


class DocumentRow(DocumentOut):
    """A document as the list shows it: DocumentOut plus who uploaded it."""

    uploaded_by: str | None  # the uploader's username; None for API keys, the CLI, the admin

    @staticmethod
    def resolve_uploaded_by(obj: Document) -> str | None:
        return obj.uploaded_by.get_username() if obj.uploaded_by else None


class DocumentPageOut(Schema):
    items: list[DocumentRow]
    total: int  # documents matching the filters, on all pages
    limit: int
    offset: int


class BulkIn(Schema):
    action: Literal["delete", "reindex"]
    ids: list[int] = Field(..., min_length=1, max_length=MAX_BULK_IDS)


class SkippedOut(Schema):
    id: int
    reason: str


class BulkOut(Schema):
    action: str
    done: list[int]  # ids deleted or queued again
    skipped: list[SkippedOut]  # ids left alone, each with why


@router.get("/kbs/{slug}/documents", response=DocumentPageOut, summary="List documents")
def document_list(
    request,
    slug: str,
    status: str = "",
    kind: str = "",
    q: str = "",
    sort: str = "-uploaded",
    limit: int = 50,
    offset: int = 0,
):
    """A page of documents: `items`, the `total` matching, and the `limit` and `offset` used.

    Anyone who may read the knowledge base may list it. `q` searches names, errors and
    the documents' text; `sort` is name, size, pages, chunks, uploaded or status, with a
    leading "-" for descending (default -uploaded: newest first); `limit` is 1-200.
    """
    kb = kb_for(request, slug)
    limit = max(1, min(limit, 200))
    offset = max(0, min(offset, MAX_OFFSET))  # past SQLite's 64-bit integers is a 500
    try:
        page = documents_page(
            kb=kb, q=q, status=status, kind=kind, sort=sort, limit=limit, offset=offset
        )
    except ValueError as exc:
        raise HttpError(422, str(exc)) from exc
    return {"items": page.items, "total": page.total, "limit": limit, "offset": offset}


@router.post("/kbs/{slug}/documents", response={201: list[UploadOut]}, summary="Upload files")
def document_upload(request, slug: str, files: list[UploadedFile] = File(...)):  # noqa: B008
    """One result per file, all 201: `created` false for bytes already in the knowledge base
    (the existing document), and a rejected file is a document with status "failed"."""
    kb = kb_for(request, slug, manage=True)
    user, _ = caller(request)
    uploader = user if getattr(user, "is_authenticated", False) else None
    results = []
    for upload in files:
        result = document_create(
            kb=kb, filename=upload.name or "upload", content=upload, uploaded_by=uploader
        )
        results.append({"document": result.document, "created": result.created})
    return Status(201, results)


@router.post("/kbs/{slug}/documents/bulk", response=BulkOut, summary="Delete or re-index many")
def document_bulk(request, slug: str, payload: BulkIn):
    """Delete or re-index up to 1000 documents of this knowledge base in one call; ids that
    are not in it, or can't be re-indexed now, come back in `skipped` with the reason."""
    kb = kb_for(request, slug, manage=True)
    if payload.action == "delete":
        result = documents_bulk_delete(kb=kb, ids=payload.ids, store=get_store())
    else:
        result = documents_bulk_reindex(kb=kb, ids=payload.ids)
    return {"action": payload.action, "done": result.done, "skipped": result.skipped}


@router.get("/documents/{pk}", response=DocumentOut, summary="Document status")
def document_detail(request, pk: int):
    return document_for(request, pk, manage=True)


class DocumentPatchIn(Schema):
    tag: str  # at most 64 characters; "" removes it


@router.patch("/documents/{pk}", response=DocumentOut, summary="Set a document's tag")
def document_patch(request, pk: int, payload: DocumentPatchIn):
    try:
        return document_tag_set(document=document_for(request, pk, manage=True), tag=payload.tag)
    except IngestError as exc:
        raise HttpError(422, str(exc)) from exc


@router.delete("/documents/{pk}", response={204: None}, summary="Delete a document")
def document_remove(request, pk: int):
    document_delete(document=document_for(request, pk, manage=True), store=get_store())
    return Status(204, None)


@router.post("/documents/{pk}/reindex", response={202: DocumentOut}, summary="Re-index / retry")
def document_retry(request, pk: int):
    document = document_for(request, pk, manage=True)
    try:  # refused (409, in words) unless document.retryable
        return Status(202, document_reindex(document=document))
    except IngestError as exc:
        raise HttpError(409, str(exc)) from exc


@router.get("/documents/{pk}/chunks", response=list[ChunkOut], summary="A document's chunks")
def document_chunks(request, pk: int):
    return list(document_for(request, pk, manage=True).chunks.order_by("ordinal"))


@router.post("/documents/{pk}/cancel", response=DocumentOut, summary="Cancel indexing")
def document_cancel_endpoint(request, pk: int):
    document = document_for(request, pk, manage=True)
    if not document_cancel(document_id=document.pk):
        raise HttpError(409, "Only a document that is waiting or being indexed can be cancelled.")
    document.refresh_from_db()
    return document
