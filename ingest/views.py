"""Document pages: read a source at its page, or download the original file."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.files.storage import default_storage
from django.db.models import Count
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from ingest.access import kb_manageable, kb_readable, kbs_readable
from ingest.forms import KnowledgeBaseForm
from ingest.models import Asset, Document, DocumentKind, DocumentStatus, KnowledgeBase
from ingest.pdfpages import PageUnavailable, pdf_page_image
from ingest.pipeline.detect import ACCEPTED_EXTENSIONS
from ingest.pipeline.types import human_bytes
from ingest.services import kb_create, kb_delete, kb_update
from ingest.store import get_store
from ingest.viewer import (
    ImageUrl,
    viewer_chunk_rows,
    viewer_cited_chunks,
    viewer_pages,
    viewer_selected_page,
)

# Only these are shown in the browser; anything else (HTML above all) is a download,
# so an uploaded page can never run script on Docent's origin.
_INLINE_TYPES = {"application/pdf", "image/png", "image/jpeg", "image/webp", "image/gif"}
# Whatever is shown runs no script and can't be framed, even if a browser misreads it.
_FILE_CSP = (
    "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'none'"
)


def stored_file(name: str, mime_type: str, filename: str | None = None) -> FileResponse:
    """An uploaded (or derived) file: inline only if it is a PDF or an image, else a download."""
    inline = mime_type in _INLINE_TYPES
    response = FileResponse(
        default_storage.open(name, "rb"),
        as_attachment=not inline,
        filename=filename or "",
        content_type=mime_type if inline else "application/octet-stream",
    )
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = _FILE_CSP
    return response


def _readable_document(request: HttpRequest, pk: int) -> Document:
    document = get_object_or_404(Document.objects.select_related("kb"), pk=pk)
    if not kb_readable(kb=document.kb, user=request.user):
        raise Http404("No such document")
    return document


def _document_gone(request: HttpRequest) -> HttpResponse:
    """A citation to a document that is gone, or that this reader may not see: the same
    page for both, so it never tells whether a document exists in a knowledge base."""
    return render(request, "ingest/document_gone.html", {}, status=404)


@require_GET
def document_view(request: HttpRequest, pk: int) -> HttpResponse:
    try:
        document = _readable_document(request, pk)
    except Http404:
        return _document_gone(request)
    cited = viewer_cited_chunks(document=document, raw=request.GET.get("chunks", ""))
    inspect = request.GET.get("view") == "chunks" and request.user.is_staff
    context = {
        "document": document,
        "pages": viewer_pages(document=document, cited=cited, image_url=_page_image_url(pk)),
        "selected": viewer_selected_page(raw=request.GET.get("page", ""), cited=cited),
        "assets": document.assets.filter(source=Asset.Source.UPLOAD),
    }
    if inspect:
        context["chunks"], context["store_up"] = viewer_chunk_rows(
            document=document, store=get_store()
        )
    return render(request, "ingest/document.html", context)


def _page_image_url(pk: int) -> ImageUrl:
    return lambda page: reverse("document-page-image", args=[pk, page])


@require_GET
def document_page_image(request: HttpRequest, pk: int, page: int) -> FileResponse:
    """Page `page` of a PDF as a PNG, with the same access check and headers as the file."""
    document = _readable_document(request, pk)
    try:
        name = pdf_page_image(document=document, page=page)
    except PageUnavailable as exc:
        raise Http404("No such page") from exc
    return stored_file(name, "image/png")


@require_GET
def document_file(request: HttpRequest, pk: int) -> FileResponse:
    document = _readable_document(request, pk)
    if not document.file:
        raise Http404("This upload was rejected, so no file was kept.")
    return stored_file(str(document.file.name), document.mime_type, document.filename)


@require_GET
def asset_file(request: HttpRequest, pk: int) -> FileResponse:
    asset = get_object_or_404(Asset.objects.select_related("kb"), pk=pk)
    if not kb_readable(kb=asset.kb, user=request.user):
        raise Http404("No such image")
    return stored_file(str(asset.file.name), asset.mime_type)


@login_required
@require_GET
def documents_page(request: HttpRequest, slug: str) -> HttpResponse:
    """The documents of a knowledge base: managed by staff, read-only for its other readers."""
    kbs = kbs_readable(user=request.user)
    kb = kbs.filter(slug=slug).first()
    if kb is None:
        raise Http404("No such knowledge base")
    context = {
        "kb": kb,
        "kbs": kbs,
        "manage": kb_manageable(kb=kb, user=request.user),
        "max_upload_bytes": settings.MAX_UPLOAD_BYTES,
        "max_upload": human_bytes(settings.MAX_UPLOAD_BYTES),
        "accepted": ",".join(ACCEPTED_EXTENSIONS),
        "kinds": DocumentKind.choices,
        "statuses": DocumentStatus.choices,
    }
    return render(request, "ingest/documents.html", context)


@staff_member_required
@require_http_methods(["GET", "POST"])
def kb_list_page(request: HttpRequest) -> HttpResponse:
    """Knowledge bases: list them and create a new one."""
    form = KnowledgeBaseForm(data=request.POST or None, initial={"visibility": "members"})
    if request.method == "POST" and form.is_valid():
        try:
            kb = kb_create(**form.cleaned_data)
        except ValueError as exc:
            form.add_error("name", str(exc))
        else:
            return redirect("documents", slug=kb.slug)
    kbs = KnowledgeBase.objects.annotate(document_total=Count("documents")).order_by("name")
    return render(request, "ingest/kbs.html", {"kbs": kbs, "form": form})


@staff_member_required
@require_http_methods(["GET", "POST"])
def kb_settings_page(request: HttpRequest, slug: str) -> HttpResponse:
    """Rename a knowledge base, change its settings, or delete it with everything in it."""
    kb = get_object_or_404(KnowledgeBase, slug=slug)
    if request.method == "POST" and request.POST.get("action") == "delete":
        if request.POST.get("confirm") != kb.name:
            messages.error(request, "Type the knowledge base's exact name to delete it.")
            return redirect("kb-settings", slug=kb.slug)
        kb_delete(kb=kb, store=get_store())
        messages.success(request, f"Deleted {kb.name} and everything in it.")
        return redirect("kb-list")
    form = KnowledgeBaseForm.for_kb(kb, data=request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            kb_update(kb=kb, **form.cleaned_data)
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, "Saved.")
            return redirect("kb-settings", slug=kb.slug)
    return render(request, "ingest/kb_settings.html", {"kb": kb, "form": form})
