"""Document pages: read a source at its page, or download the original file."""

from __future__ import annotations

from itertools import groupby

from django.contrib.admin.views.decorators import staff_member_required
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_GET

from ingest.models import Document
from ingest.pipeline.chunk import merge_chunk_texts

# Only these are shown in the browser; anything else (HTML above all) is a download,
# so an uploaded page can never run script on Docent's origin.
_INLINE_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/webp", "image/gif"}


@require_GET
def document_view(request: HttpRequest, pk: int) -> HttpResponse:
    document = get_object_or_404(Document.objects.select_related("kb"), pk=pk)
    chunks = document.chunks.order_by("ordinal").only("page", "text", "heading")
    pages = [
        {"number": page, "text": merge_chunk_texts([c.text for c in group])}
        for page, group in groupby(chunks, key=lambda c: c.page)
    ]
    try:
        selected = int(request.GET.get("page", "0"))
    except ValueError:
        selected = 0
    context = {
        "document": document,
        "pages": pages,
        "selected": selected,
        "assets": document.assets.all(),
    }
    return render(request, "ingest/document.html", context)


@require_GET
def document_file(request: HttpRequest, pk: int) -> FileResponse:
    document = get_object_or_404(Document, pk=pk)
    if not document.file:
        from django.http import Http404

        raise Http404("This upload was rejected, so no file was kept.")
    inline = document.mime_type in _INLINE_TYPES
    response = FileResponse(
        default_storage.open(document.file.name, "rb"),
        as_attachment=not inline,
        filename=document.filename,
        content_type=document.mime_type if inline else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = (
        "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"
    )
    return response


@require_GET
def asset_file(request: HttpRequest, pk: int) -> FileResponse:
    from ingest.models import Asset

    asset = get_object_or_404(Asset, pk=pk)
    response = FileResponse(
        default_storage.open(asset.file.name, "rb"), content_type=asset.mime_type
    )
    response["X-Content-Type-Options"] = "nosniff"
    return response


@staff_member_required
@require_GET
def documents_page(request: HttpRequest, slug: str) -> HttpResponse:
    from ingest.models import KnowledgeBase

    kb = get_object_or_404(KnowledgeBase, slug=slug)
    return render(request, "ingest/documents.html", {"kb": kb, "kbs": KnowledgeBase.objects.all()})
