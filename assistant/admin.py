from __future__ import annotations

from django.contrib import admin

from assistant.models import Conversation, Message


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ["role", "content", "status", "prompt_tokens", "completion_tokens", "cost"]
    readonly_fields = fields
    can_delete = False


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["title", "kb", "user", "created_at", "updated_at"]
    list_filter = ["kb"]
    search_fields = ["title", "messages__content"]
    readonly_fields = ["uid", "kb", "user", "owner_key", "created_at", "updated_at"]
    inlines = [MessageInline]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = [
        "conversation",
        "role",
        "status",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "cost",
        "created_at",
    ]
    list_filter = ["role", "status", "model"]
    search_fields = ["content"]
    readonly_fields = [f.name for f in Message._meta.fields]
