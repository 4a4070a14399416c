"""Django admin for conversations, feedback and API keys; changes go through the services."""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.template.response import TemplateResponse
from django.utils.html import format_html
from django.utils.safestring import mark_safe

from assistant.keys import api_key_create
from assistant.models import ApiKey, Conversation, Feedback, Message, Usage, Widget
from assistant.origins import origins_normalise


class MessageInline(admin.TabularInline):
    model = Message
    extra = 0
    fields = ("role", "content", "status", "prompt_tokens", "completion_tokens", "cost")
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


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    list_display = ["message", "rating", "comment", "user", "created_at"]
    list_filter = ["rating", "message__conversation__kb"]
    readonly_fields = [f.name for f in Feedback._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


class ApiKeyForm(forms.ModelForm):
    class Meta:
        model = ApiKey
        fields = ["name", "knowledge_bases", "can_write", "revoked"]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    form = ApiKeyForm
    list_display = [
        "name",
        "prefix",
        "can_write",
        "revoked",
        "created_by",
        "created_at",
        "last_used_at",
    ]
    list_filter = ["revoked", "can_write"]
    filter_horizontal = ["knowledge_bases"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at"]

    def get_fields(self, request, obj=None):
        return (
            ["name", "knowledge_bases", "can_write"]
            if obj is None
            else [
                "name",
                "prefix",
                "knowledge_bases",
                "can_write",
                "revoked",
                "created_by",
                "created_at",
                "last_used_at",
            ]
        )

    def save_model(self, request, obj, form, change) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        key, token = api_key_create(
            name=form.cleaned_data["name"],
            knowledge_bases=form.cleaned_data["knowledge_bases"],
            can_write=form.cleaned_data["can_write"],
            created_by=request.user,
        )
        obj.pk, obj.prefix, obj.hashed = key.pk, key.prefix, key.hashed
        obj._state.adding = False
        obj.plaintext = token  # shown once by response_add, never stored or put in a cookie

    def response_add(self, request, obj, post_url_continue=None):
        """The new key on this response's page only: not in a redirect, a message or a cookie."""
        context = {**self.admin_site.each_context(request), "key": obj, "token": obj.plaintext}
        context["opts"] = self.model._meta
        response = TemplateResponse(request, "admin/assistant/apikey/created.html", context)
        response["Cache-Control"] = "no-store"
        return response

    def save_related(self, request, form, formsets, change) -> None:
        if change:
            super().save_related(request, form, formsets, change)


WIDGET_EXPOSES = (
    "What a widget exposes: anyone on the Internet can ask this knowledge base questions "
    "through it, even members-only ones (the allowed sites below bind browsers; other "
    "programs can claim any site), up to the daily quotas. Answers quote the knowledge "
    "base, and each citation opens, for an hour, only the pages it cites. Visitors can "
    "rate the answers in their own conversations (thumbs up or down), which you read "
    "under Feedback. Nothing else of the knowledge base is reachable through the widget."
)
_NOT_SAVED = "(given when you save)"


class ColorInput(forms.TextInput):
    """The browser's colour picker; it always sends #rrggbb, and the model checks it too."""

    input_type = "color"


class WidgetForm(forms.ModelForm):
    class Meta:
        model = Widget
        fields = [
            "name",
            "kb",
            "enabled",
            "allowed_origins",
            "title",
            "greeting",
            "starter_questions",
            "color",
            "position",
            "accept_screenshots",
            "daily_quota_per_visitor",
            "daily_quota_per_ip",
            "max_message_chars",
        ]
        widgets = {"color": ColorInput()}

    def clean_allowed_origins(self) -> str:
        """One origin per line, as browsers send them; an error names each bad line."""
        return "\n".join(origins_normalise(self.cleaned_data["allowed_origins"]))

    def clean_color(self) -> str:
        return self.cleaned_data["color"].lower()


@admin.register(Widget)
class WidgetAdmin(admin.ModelAdmin):
    form = WidgetForm
    list_display = ["name", "public_id", "kb", "enabled", "created_at"]
    list_filter = ["enabled", "kb"]
    readonly_fields = ["public_id", "embed_snippet", "look_preview", "created_at"]
    fieldsets = [
        (
            None,
            {
                "fields": ["name", "kb", "enabled", "public_id", "embed_snippet"],
                "description": WIDGET_EXPOSES,
            },
        ),
        ("Where it may appear", {"fields": ["allowed_origins"]}),
        (
            "Look",
            {
                "fields": [
                    "title",
                    "greeting",
                    "starter_questions",
                    "color",
                    "position",
                    "look_preview",
                ]
            },
        ),
        (
            "Limits",
            {
                "fields": [
                    "accept_screenshots",
                    "daily_quota_per_visitor",
                    "daily_quota_per_ip",
                    "max_message_chars",
                ]
            },
        ),
    ]

    @admin.display(description="Embed snippet")
    def embed_snippet(self, obj) -> str:
        """The <script> tag for the site's pages (widget_admin.js keeps the line under it
        in step with the form); before the first save, its shape with the id to come."""
        saved = bool(obj.pk)
        note = (
            "Paste it into the HTML of each page that should offer help, just before </body>."
            if saved
            else "The widget gets its id when you save; the snippet works after that."
        )
        return format_html(
            '<div class="docent-snippet" data-saved="{}"><pre><code id="docent-snippet">'
            '&lt;script src="{}/static/docent/widget.js" data-widget="{}" async&gt;&lt;/script&gt;'
            '</code></pre><button type="button" class="button" id="docent-snippet-copy" hidden>'
            'Copy</button><p class="help">{}</p><p class="help" id="docent-snippet-where" '
            'aria-live="polite"></p></div>',
            "1" if saved else "0",
            self._origin,
            obj.public_id if saved else _NOT_SAVED,
            note,
        )

    @admin.display(description="Preview")
    def look_preview(self, obj) -> str:
        return mark_safe(  # constant markup; widget.js draws the preview into it
            '<div id="docent-widget-preview" class="docent-widget-preview" role="group" '
            'aria-label="Preview of the widget as visitors see it"></div>'
            '<p class="help">How visitors see it, with a made-up answer: it follows the fields '
            "above as you type, before you save. Nothing is sent to the model.</p>"
        )

    def get_fieldsets(self, request, obj=None):
        """No public id before the first save: the one shown would not be the one saved."""
        fieldsets = super().get_fieldsets(request, obj)
        if obj is not None:
            return fieldsets
        first = {**fieldsets[0][1], "fields": ["name", "kb", "enabled", "embed_snippet"]}
        return [(None, first), *fieldsets[1:]]

    def get_readonly_fields(self, request, obj=None):
        self._origin = request.build_absolute_uri("/").rstrip("/")
        return super().get_readonly_fields(request, obj)


@admin.register(Usage)
class UsageAdmin(admin.ModelAdmin):
    list_display = ["scope", "key", "window_start", "count"]
    list_filter = ["scope"]
    search_fields = ["key"]
    readonly_fields = ["scope", "key", "window_start", "count"]

    def has_add_permission(self, request) -> bool:
        return False


from . import evaluation_admin  # noqa: E402, F401  (question sets and evaluation runs)
