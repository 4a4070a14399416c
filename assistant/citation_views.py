"""Signed citation links for API clients: /cite/<signed>/ opens the cited pages of one
document, with no session or key in the URL (see assistant.citelinks)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from ingest.access import kb_readable
from ingest.models import Chunk, Document
from ingest.pdfpages import PageUnavailable, pdf_page_image
from ingest.viewer import viewer_image_pages, viewer_pages
from ingest.views import stored_file

from .citelinks import CitationDenied, citation_open
from .models import ApiKey


def cited_for_key(*, signed: str) -> tuple[Document, list[Chunk]]:
    """The document and chunks a key's link names, while the key lives and may read them."""
    citation = citation_open(signed=signed, max_age=settings.API_CITATION_SECONDS)
    kind, _, key_id = citation.holder.partition(":")
    key = ApiKey.objects.filter(pk=int(key_id), revoked=False).first() if kind == "key" else None
    document = Document.objects.select_related("kb").filter(pk=citation.document_id).first()
    if key is None or document is None or not kb_readable(kb=document.kb, user=None, key=key):
        raise CitationDenied("No such source.", status=404)
    cited = list(Chunk.objects.filter(document=document, pk__in=citation.chunk_ids))
    if not cited:
        raise CitationDenied("This source is no longer in the knowledge base.", status=404)
    return document, cited


@dataclass(frozen=True)
class Reader:
    """The bar of a citation page opened outside Docent: whose it is, in which colour."""

    title: str
    color: str = "#3056d3"  # Docent's accent, as a widget's default colour


def citation_page(
    request: HttpRequest, *, document: Document, cited: list[Chunk], base: str, reader: Reader
) -> HttpResponse:
    """The cited pages (or passages) only, with page images under `base`, on a plain
    reading page with none of Docent's navigation (no sign-in, no way into the site)."""
    pages = viewer_pages(
        document=document,
        cited=cited,
        only_cited=True,
        image_url=lambda page: f"{base}pages/{page}.png",
    )
    context = {**_reading(reader), "document": document, "pages": pages}
    return render(request, "ingest/document.html", {**context, "selected": _first(pages)})


def citation_gone(request: HttpRequest, *, reader: Reader) -> HttpResponse:
    return render(request, "ingest/document_gone.html", _reading(reader), status=404)


def _reading(reader: Reader) -> dict:
    return {"base_template": "widget/reader.html", "embedded": True, "reader": reader}


def _first(pages: list) -> int:
    return pages[0].number if pages else 0


def citation_page_image(*, document: Document, cited: list[Chunk], page: int) -> HttpResponseBase:
    """A page image of a citation: only a page its chunks are on."""
    if page not in viewer_image_pages(cited=cited):
        raise Http404("This page is not part of the citation.")
    try:
        name = pdf_page_image(document=document, page=page)
    except PageUnavailable as exc:
        raise Http404("No such page") from exc
    return stored_file(name, "image/png")


def denied(exc: CitationDenied) -> HttpResponse:
    return HttpResponse(str(exc), status=exc.status, content_type="text/plain; charset=utf-8")


@require_GET
def key_citation(request: HttpRequest, signed: str) -> HttpResponse:
    try:
        document, cited = cited_for_key(signed=signed)
    except CitationDenied as exc:
        return denied(exc)
    base = reverse("cite", args=[signed])
    reader = Reader(title=f"{document.kb.name} · cited source")
    return citation_page(request, document=document, cited=cited, base=base, reader=reader)


@require_GET
def key_citation_page_image(request: HttpRequest, signed: str, page: int) -> HttpResponseBase:
    try:
        document, cited = cited_for_key(signed=signed)
    except CitationDenied as exc:
        return denied(exc)
    return citation_page_image(document=document, cited=cited, page=page)
