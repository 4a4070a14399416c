"""Forms for the staff pages; they validate input, the services do the work."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from ingest.models import KnowledgeBase


class KnowledgeBaseForm(forms.ModelForm):
    """The knowledge-base settings, as the model declares them (KnowledgeBase.SETTINGS)."""

    class Meta:
        model = KnowledgeBase
        fields = ["name", "members", *KnowledgeBase.SETTINGS]
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "system_prompt": forms.Textarea(attrs={"rows": 4}),
            "stop_sequences": forms.Textarea(attrs={"rows": 2}),
            "starter_questions": forms.Textarea(attrs={"rows": 3}),
        }
        help_texts = {
            "model": "Blank: the site default model.",
            "retrieval_budget": "Tokens of sources per question.",
        }

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        members = self.fields["members"]
        assert isinstance(members, forms.ModelMultipleChoiceField)
        members.queryset = get_user_model().objects.filter(is_active=True).order_by("username")

    def validate_unique(self) -> None:
        """Name clashes are kb_create's and kb_update's to report (ignoring case)."""

    @classmethod
    def for_kb(cls, kb: KnowledgeBase, data=None) -> KnowledgeBaseForm:
        return cls(data=data, instance=KnowledgeBase.objects.get(pk=kb.pk))
