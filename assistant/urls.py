from __future__ import annotations

from django.contrib import admin
from django.urls import path

from assistant import views as chat
from assistant.api import api
from ingest import views as documents

urlpatterns = [
    path("", chat.chat_page, name="chat"),
    path("chat/stream", chat.chat_stream, name="chat-stream"),
    path("kb/<slug:slug>/conversations", chat.conversation_list, name="conversation-list"),
    path("documents/<int:pk>/", documents.document_view, name="document-view"),
    path("documents/<int:pk>/file", documents.document_file, name="document-file"),
    path("assets/<int:pk>", documents.asset_file, name="asset-file"),
    path("kb/<slug:slug>/documents/", documents.documents_page, name="documents"),
    path("api/", api.urls),
    path("admin/", admin.site.urls),
]
