"""The admin's evaluation runs: upload a question set, run it, read a run, compare two."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.html import format_html

from .evalruns import (
    METRICS,
    evaluation_run_queue,
    evaluation_run_stalled,
    run_misses,
    run_wrong_matches,
    runs_compare,
)
from .evalsets import QuestionSetError, question_set_parse
from .models import SEARCH_MODES, EvaluationRun, QuestionSet


class QuestionSetForm(forms.ModelForm):
    upload = forms.FileField(
        help_text=(
            "CSV with the columns question and expected_documents (file names in the "
            "knowledge base, separated by |; empty for an off-topic question that should "
            "get no match), or a .zip of BEIR files: queries.jsonl, qrels/test.tsv and "
            "optionally negatives.jsonl."
        )
    )

    class Meta:
        model = QuestionSet
        fields = ["kb", "name"]

    def clean(self) -> dict:
        data = super().clean() or {}
        upload, kb = data.get("upload"), data.get("kb")
        if upload is not None and kb is not None:
            try:
                self.parsed = question_set_parse(kb=kb, filename=upload.name, data=upload.read())
            except QuestionSetError as exc:
                raise forms.ValidationError({"upload": str(exc)}) from exc
        return data


class RunForm(forms.Form):
    mode = forms.ChoiceField(choices=SEARCH_MODES)
    note = forms.CharField(max_length=200, required=False, help_text="What you changed")


@admin.register(QuestionSet)
class QuestionSetAdmin(admin.ModelAdmin):
    list_display = ["name", "kb", "answerable", "off_topic", "created_at", "runs_link"]
    list_filter = ["kb"]
    readonly_fields = ["kb", "name", "source_name", "answerable", "off_topic", "created_at"]
    change_form_template = "admin/assistant/questionset/change_form.html"

    def get_form(self, request, obj=None, change=False, **kwargs):
        if obj is None:
            kwargs["form"] = QuestionSetForm
        return super().get_form(request, obj, change, **kwargs)

    def get_readonly_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else []

    def get_fields(self, request, obj=None):
        return self.readonly_fields if obj is not None else ["kb", "name", "upload"]

    def save_model(self, request, obj, form, change) -> None:
        if not change:
            obj.questions = [q.as_json() for q in form.parsed]
            obj.source_name = form.cleaned_data["upload"].name[:255]
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    @admin.display(description="Runs")
    def runs_link(self, obj: QuestionSet) -> str:
        url = reverse("admin:assistant_evaluationrun_changelist")
        return format_html(
            '<a href="{}?question_set__id__exact={}">{}</a>', url, obj.pk, obj.runs.count()
        )

    def get_urls(self):
        run = self.admin_site.admin_view(self.run_view)
        return [path("<int:pk>/run/", run, name="assistant_questionset_run"), *super().get_urls()]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra = {"run_form": RunForm(), **(extra_context or {})}
        return super().change_view(request, object_id, form_url, extra)

    def run_view(self, request: HttpRequest, pk: int) -> HttpResponse:
        question_set = get_object_or_404(QuestionSet, pk=pk)
        if request.method != "POST" or not self.has_view_permission(request, question_set):
            raise PermissionDenied
        form = RunForm(request.POST)
        if not form.is_valid():
            messages.error(request, "Choose how to search: hybrid, dense only or words only.")
            return HttpResponseRedirect(reverse("admin:assistant_questionset_change", args=[pk]))
        run = evaluation_run_queue(
            question_set=question_set, user=request.user, **form.cleaned_data
        )
        messages.success(request, f"Run {run.pk} is queued: the worker asks {run.total} questions.")
        return HttpResponseRedirect(reverse("admin:assistant_evaluationrun_change", args=[run.pk]))


@admin.register(EvaluationRun)
class EvaluationRunAdmin(admin.ModelAdmin):
    list_display = [
        "pk",
        "question_set",
        "mode",
        "note",
        "progress",
        "recall_5",
        "mrr",
        "no_match",
        "created_at",
    ]
    list_filter = ["question_set__kb", "question_set", "status"]
    actions = ["compare"]

    def has_add_permission(self, request) -> bool:
        return False  # a run starts from its question set's page

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # a run is a record: read it, compare it, or delete it

    @admin.display(description="Status")
    def progress(self, run: EvaluationRun) -> str:
        if evaluation_run_stalled(run=run):
            return "Stopped: the worker went away"
        if run.status == EvaluationRun.Status.RUNNING:
            return f"Running {run.done}/{run.total}"
        return run.get_status_display()

    @admin.display(description="Recall@5")
    def recall_5(self, run: EvaluationRun):
        return run.metrics.get("recall_at_5", "–")

    @admin.display(description="MRR@10")
    def mrr(self, run: EvaluationRun):
        return run.metrics.get("mrr_at_10", "–")

    @admin.display(description="No-match accuracy")
    def no_match(self, run: EvaluationRun):
        return run.metrics.get("no_match_accuracy", "–")

    @admin.action(description="Compare the two selected runs")
    def compare(self, request, queryset):
        runs = list(queryset.order_by("created_at", "pk")[:3])
        if len(runs) != 2:
            self.message_user(request, "Select exactly two runs to compare.", messages.WARNING)
            return None
        url = reverse("admin:assistant_evaluationrun_compare")
        return HttpResponseRedirect(f"{url}?a={runs[0].pk}&b={runs[1].pk}")

    def get_urls(self):
        compare = self.admin_site.admin_view(self.compare_view)
        return [
            path("compare/", compare, name="assistant_evaluationrun_compare"),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        run = get_object_or_404(
            EvaluationRun.objects.select_related("question_set__kb"), pk=object_id
        )
        if not self.has_view_permission(request, run):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "run": run,
            "title": str(run),
            "stalled": evaluation_run_stalled(run=run),
            "metrics": [(label, run.metrics.get(key)) for label, key, _ in METRICS],
            "misses": run_misses(results=run.results),
            "wrong_matches": run_wrong_matches(results=run.results),
            "others": EvaluationRun.objects.filter(
                question_set=run.question_set, status="done"
            ).exclude(pk=run.pk)[:20],
        }
        return render(request, "admin/assistant/evaluationrun/report.html", context)

    def compare_view(self, request: HttpRequest) -> HttpResponse:
        runs = EvaluationRun.objects.select_related("question_set__kb")
        a = get_object_or_404(runs, pk=request.GET.get("a") or 0)
        b = get_object_or_404(runs, pk=request.GET.get("b") or 0)
        if not self.has_view_permission(request, a):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Run {a.pk} and run {b.pk}",
            "a": a,
            "b": b,
            "comparison": runs_compare(a=a, b=b),
            "same_set": a.question_set_id == b.question_set_id,
        }
        return render(request, "admin/assistant/evaluationrun/compare.html", context)
