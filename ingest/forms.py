"""Forms for the staff pages; they validate input, the services do the work."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from ingest.models import KnowledgeBase


class KnowledgeBaseForm(forms.Form):
    name = forms.CharField(max_length=100)
    description = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    visibility = forms.ChoiceField(choices=KnowledgeBase.Visibility.choices)
    members = forms.ModelMultipleChoiceField(
        queryset=get_user_model().objects.filter(is_active=True).order_by("username"),
        required=False,
    )
    system_prompt = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}),
        required=False,
        help_text="Extra instructions for the assistant, added after Docent's own rules.",
    )
    model = forms.CharField(
        max_length=200, required=False, help_text="Blank: the site default model."
    )
    temperature = forms.FloatField(min_value=0, max_value=2, required=False)
    retrieval_budget = forms.IntegerField(
        min_value=256,
        max_value=256_000,
        required=False,
        help_text="Tokens of sources per question.",
    )

    @classmethod
    def for_kb(cls, kb: KnowledgeBase, data=None) -> KnowledgeBaseForm:
        initial = {
            "name": kb.name,
            "description": kb.description,
            "visibility": kb.visibility,
            "members": list(kb.members.all()),
            "system_prompt": kb.system_prompt,
            "model": kb.model,
            "temperature": kb.temperature,
            "retrieval_budget": kb.retrieval_budget,
        }
        return cls(data=data, initial=initial)
