"""Django admin for knowledge bases and documents; every change goes through the services."""

from __future__ import annotations

from django.contrib import admin, messages

from ingest.models import Asset, Chunk, Document, KnowledgeBase
from ingest.pipeline.types import IngestError
from ingest.services import (
    document_delete,
    document_reindex,
    document_tag_set,
    kb_create,
    kb_delete,
    kb_update,
)
from ingest.services.calibration import kb_match_threshold
from ingest.services.embedders import kb_embedder_note
from ingest.store import get_store


@admin.register(KnowledgeBase)
class KnowledgeBaseAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "visibility", "model", "created_at"]
    search_fields = ["name"]
    readonly_fields = ["uid", "embedder", "index_status", "match", "created_at", "updated_at"]
    filter_horizontal = ["members"]
    fieldsets = [
        (None, {"fields": ["name", "description", "visibility", "members"]}),
        (
            "Chat",
            {
                "fields": [
                    name
                    for name in KnowledgeBase.SETTINGS
                    if name not in {"description", "visibility"}
                ]
            },
        ),
        (
            "Record",
            {"fields": ["uid", "embedder", "index_status", "match", "created_at", "updated_at"]},
        ),
    ]

    @admin.display(description="Index")
    def index_status(self, obj: KnowledgeBase) -> str:
        return kb_embedder_note(kb=obj) or "Indexed with the server's embedder."

    @admin.display(description="No-match threshold")
    def match(self, obj: KnowledgeBase) -> str:
        threshold = kb_match_threshold(kb=obj)
        if obj.no_match_threshold is not None:
            how = "set by staff; clear the setting to use the calibrated one"
        elif obj.match_threshold is not None:
            how = f"calibrated on its {obj.match_calibrated_chunks:,} passages"
        else:
            how = "the default, until it has enough passages to calibrate on"
        return (
            f"{threshold:.3f} ({how}). A question whose best passage is less similar than "
            'this is answered "no match" instead of with the nearest text.'
        )

    def save_model(self, request, obj, form, change) -> None:
        fields = {name: form.cleaned_data.get(name) for name in KnowledgeBase.SETTINGS}
        if change:
            kb_update(
                kb=KnowledgeBase.objects.get(pk=obj.pk), name=form.cleaned_data["name"], **fields
            )
            return
        kb = kb_create(name=form.cleaned_data["name"], **fields)
        obj.pk, obj.uid, obj.slug = kb.pk, kb.uid, kb.slug
        obj._state.adding = False

    def delete_model(self, request, obj) -> None:
        kb_delete(kb=obj, store=get_store())

    def delete_queryset(self, request, queryset) -> None:
        for kb in queryset:
            kb_delete(kb=kb, store=get_store())


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = [
        "filename",
        "kb",
        "kind",
        "status",
        "stage",
        "progress",
        "page_count",
        "chunk_count",
        "tag",
        "created_at",
    ]
    list_filter = ["status", "kind", "kb", "tag"]
    search_fields = ["filename", "error", "sha256", "tag"]
    # Only the tag is edited here; everything else changes through the lifecycle.
    readonly_fields = [f.name for f in Document._meta.fields if f.name != "tag"]
    actions = ["reindex"]

    def save_model(self, request, obj, form, change) -> None:
        try:
            document_tag_set(document=obj, tag=form.cleaned_data.get("tag", ""))
        except IngestError as exc:
            messages.error(request, str(exc))

    def has_add_permission(self, request) -> bool:
        return False  # uploads go through the documents page or the API, which validate them

    @admin.action(description="Re-index selected documents")
    def reindex(self, request, queryset) -> None:
        chosen = list(queryset)
        retryable = [document for document in chosen if document.retryable]
        for document in retryable:
            document_reindex(document=document)
        messages.success(request, f"Queued {len(retryable)} of {len(chosen)} for re-indexing.")
        if len(retryable) < len(chosen):
            messages.warning(
                request,
                "The others are waiting or being indexed already, or re-indexing them "
                "can't succeed (see each one's error).",
            )

    def delete_model(self, request, obj) -> None:
        document_delete(document=obj, store=get_store())

    def delete_queryset(self, request, queryset) -> None:
        for document in queryset:
            document_delete(document=document, store=get_store())


@admin.register(Chunk)
class ChunkAdmin(admin.ModelAdmin):
    list_display = ["document", "ordinal", "page", "token_count"]
    search_fields = ["text", "document__filename"]
    readonly_fields = [f.name for f in Chunk._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # chunks belong to their document's index generation


@admin.register(Asset)
class AssetAdmin(admin.ModelAdmin):
    list_display = ["document", "source", "page", "width", "height"]
    readonly_fields = [f.name for f in Asset._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False
