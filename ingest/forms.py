"""Forms for the staff pages; they validate input, the services do the work."""

from __future__ import annotations

from django import forms
from django.contrib.auth import get_user_model

from ingest.models import KnowledgeBase


class MemberPicker(forms.CheckboxSelectMultiple):
    """Members as checkboxes: the current ones first and checked, everyone else under
    "Add a member" with a filter box (static/docent/members.js). A click changes one
    person; a <select multiple> dropped every other member on a plain click."""

    template_name = "ingest/member_picker.html"

    def optgroups(self, name, value, attrs=None):
        options = [
            option for _, group, _ in super().optgroups(name, value, attrs) for option in group
        ]
        return [
            ("current", [option for option in options if option["selected"]], 0),
            ("others", [option for option in options if not option["selected"]], 1),
        ]


class MemberChoiceField(forms.ModelMultipleChoiceField):
    def label_from_instance(self, obj) -> str:
        full = obj.get_full_name()
        return f"{full} ({obj.get_username()})" if full else obj.get_username()


class KnowledgeBaseForm(forms.ModelForm):
    """The knowledge-base settings, as the model declares them (KnowledgeBase.SETTINGS)."""

    class Meta:
        model = KnowledgeBase
        fields = ["name", "members", *KnowledgeBase.SETTINGS]
        field_classes = {"members": MemberChoiceField}
        widgets = {
            "description": forms.Textarea(attrs={"rows": 2}),
            "system_prompt": forms.Textarea(attrs={"rows": 4}),
            "stop_sequences": forms.Textarea(attrs={"rows": 2}),
            "starter_questions": forms.Textarea(attrs={"rows": 3}),
            "members": MemberPicker,
        }
        help_texts = {
            "model": "Blank: the site default model.",
            "retrieval_budget": "Tokens of sources per question.",
            "members": "Who may read it when it is members only. Submitting keeps exactly "
            "the people ticked.",
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
