from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from assistant import analytics_views as analytics
from assistant import citation_views as citations
from assistant import history_views as history
from assistant import v1
from assistant import views as chat
from assistant import widget_views as widget
from assistant.accounts import (
    PasswordChangeView,
    PasswordResetConfirmView,
    PasswordResetRequestView,
)
from assistant.api import api
from assistant.signin import AdminSigninForm, SigninForm
from ingest import views as documents

admin.site.login_form = AdminSigninForm

urlpatterns = [
    path("", chat.chat_page, name="chat"),
    path("healthz", chat.health, name="health"),
    # Browsers ask for /favicon.ico wherever no page names an icon (files, PDFs).
    path("favicon.ico", RedirectView.as_view(url=static("docent/favicon.svg"), permanent=True)),
    path("chat/stream", chat.chat_stream, name="chat-stream"),
    path("messages/<int:pk>/feedback", chat.message_feedback, name="message-feedback"),
    path("messages/<int:pk>", chat.message_detail, name="message-detail"),
    path("messages/<int:pk>/images/<int:number>", chat.message_image, name="message-image"),
    path("kb/<slug:slug>/conversations", history.conversation_list, name="conversation-list"),
    path(
        "kb/<slug:slug>/conversations/<str:uid>/rename",
        history.conversation_rename_view,
        name="conversation-rename",
    ),
    path(
        "kb/<slug:slug>/conversations/<str:uid>/delete",
        history.conversation_delete_view,
        name="conversation-delete",
    ),
    path("kb/<slug:slug>/review/", chat.conversations_review, name="conversations-review"),
    path("kb/<slug:slug>/review/<str:uid>/", chat.conversation_review, name="conversation-review"),
    path("kb/<slug:slug>/analytics/", analytics.analytics_page, name="analytics"),
    path("kb/<slug:slug>/analytics.csv", analytics.analytics_csv, name="analytics-csv"),
    path("kbs/", documents.kb_list_page, name="kb-list"),
    path("kb/<slug:slug>/settings/", documents.kb_settings_page, name="kb-settings"),
    path("kb/<slug:slug>/documents/", documents.documents_page, name="documents"),
    path("documents/<int:pk>/", documents.document_view, name="document-view"),
    path("documents/<int:pk>/file", documents.document_file, name="document-file"),
    path(
        "documents/<int:pk>/pages/<int:page>.png",
        documents.document_page_image,
        name="document-page-image",
    ),
    path("assets/<int:pk>", documents.asset_file, name="asset-file"),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(authentication_form=SigninForm),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    # A member's own password: change it signed in, or reset it by email (Django's views;
    # the names are the ones they reverse).
    path("accounts/password/change/", PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password/reset/", PasswordResetRequestView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/sent/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/password/reset/<uidb64>/<token>/",
        PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetCompleteView.as_view(),
        name="password_reset_complete",
    ),
    path("widget/api/<str:public_id>/session", widget.widget_session, name="widget-session"),
    path("widget/api/<str:public_id>/chat", widget.widget_chat, name="widget-chat"),
    path(
        "widget/api/<str:public_id>/conversations/<str:uid>",
        widget.widget_conversation,
        name="widget-conversation",
    ),
    path("cite/<str:signed>/", citations.key_citation, name="cite"),
    path(
        "cite/<str:signed>/pages/<int:page>.png",
        citations.key_citation_page_image,
        name="cite-page-image",
    ),
    path(
        "widget/api/<str:public_id>/messages/<int:pk>/feedback",
        widget.widget_feedback,
        name="widget-feedback",
    ),
    path(
        "widget/<str:public_id>/cite/<str:signed>/", widget.widget_citation, name="widget-citation"
    ),
    path(
        "widget/<str:public_id>/cite/<str:signed>/pages/<int:page>.png",
        widget.widget_citation_page_image,
        name="widget-citation-page-image",
    ),
    path("api/", api.urls),
    path("v1/models", v1.models, name="v1-models"),
    path("v1/chat/completions", v1.chat_completions, name="v1-chat-completions"),
    path("admin/", admin.site.urls),
]
