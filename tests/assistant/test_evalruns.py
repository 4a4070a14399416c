"""Evaluation runs: question sets parsed from CSV and BEIR zips, a run through the real
retrieval, its metrics, and two runs compared question by question."""

from __future__ import annotations

import io
import json
import zipfile

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from assistant.evalruns import evaluation_run_execute, evaluation_run_queue, runs_compare
from assistant.evalsets import QuestionSetError, question_set_parse
from assistant.models import EvaluationRun, QuestionSet
from assistant.tools import chat_tools

pytestmark = pytest.mark.django_db

ROUTER = (
    "# Router\n\n## Reset\n\nHold the reset pin for fifteen seconds to restore factory settings."
)
PRINTER = (
    "# Printer\n\n## Paper jams\n\nError E-42 means paper is stuck in tray two; open the rear door."
)
LIGHTS = "# Status lights\n\nThe amber light means the router is updating its firmware."
CSV = (
    "question,expected_documents\n"
    "How do I restore factory settings?,router.md\n"
    "What does error E-42 mean?,printer\n"
    "Why is the light amber?,lights.md|router.md\n"
    "Who won the football world cup in 1954?,\n"
)


@pytest.fixture
def docs(kb, ingest_text):
    for name, text in (("router.md", ROUTER), ("printer.md", PRINTER), ("lights.md", LIGHTS)):
        ingest_text(kb, name, text)
    return kb


def beir_zip(files: dict[str, str], folder: str = "") -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(folder + name, text)
    return out.getvalue()


def test_a_csv_names_documents_with_or_without_their_extension(docs):
    questions = question_set_parse(kb=docs, filename="set.csv", data=CSV.encode())
    assert [q.expected for q in questions] == [
        ("router.md",),
        ("printer.md",),
        ("lights.md", "router.md"),
        (),
    ]
    assert questions[0].id == "2"  # its line, without an id column


def test_a_beir_zip_in_a_folder_with_negatives(docs):
    data = beir_zip(
        {
            "queries.jsonl": '{"_id": "q1", "text": "How do I reset it?"}\n'
            '{"_id": "q2", "text": "Unjudged question"}\n',
            "qrels/test.tsv": "query-id\tcorpus-id\tscore\nq1\trouter\t1\n",
            "negatives.jsonl": json.dumps({"_id": "n1", "text": "Best pizza in Rome?"}),
        },
        folder="myset/",
    )
    questions = question_set_parse(kb=docs, filename="set.zip", data=data)
    assert [(q.id, q.expected) for q in questions] == [
        ("q1", ("router.md",)),
        ("negative-n1", ()),
    ]


@pytest.mark.parametrize(
    ("filename", "data", "message"),
    [
        ("set.csv", b"question,expected_documents\nHow?,manual.pdf\n", "is named manual.pdf"),
        ("set.csv", b"q,docs\nHow?,router\n", "must name the columns"),
        ("set.csv", b"\xff\xfe\x00", "not UTF-8"),
        ("set.xlsx", b"PK", "Upload a .csv file"),
        ("set.zip", b"not a zip", "can't be opened"),
        ("set.zip", beir_zip({"queries.jsonl": ""}), "must hold queries.jsonl"),
    ],
)
def test_a_set_that_cant_be_used_says_why(docs, filename, data, message):
    with pytest.raises(QuestionSetError, match=message):
        question_set_parse(kb=docs, filename=filename, data=data)


def run_once(question_set, mode: str = "hybrid") -> EvaluationRun:
    run = evaluation_run_queue(question_set=question_set, mode=mode)
    return evaluation_run_execute(run=run, tools=chat_tools(question_set.kb))


@pytest.fixture
def smoke_set(docs) -> QuestionSet:
    """The CSV's four questions (three answerable, one off-topic), saved for `docs`."""
    questions = question_set_parse(kb=docs, filename="set.csv", data=CSV.encode())
    return QuestionSet.objects.create(
        kb=docs, name="Smoke", questions=[q.as_json() for q in questions]
    )


def test_a_run_scores_its_questions_and_keeps_its_settings(smoke_set, settings):
    settings.LLM_BASE_URL = ""
    question_set = smoke_set
    run = run_once(question_set)
    assert run.status == "done" and run.done == run.total == 4
    assert run.metrics["recall_at_1"] == 1.0 and run.metrics["mrr_at_10"] == 1.0
    assert run.metrics["negatives_refused"] == 1.0
    assert run.metrics["no_match_accuracy"] == 1.0
    assert run.snapshot["mode"] == "hybrid" and run.snapshot["documents_ready"] == 3
    assert [r["rank"] for r in run.results] == [1, 1, 1, None]
    assert run.results[1]["ranked"][0] == "printer.md"

    words = run_once(question_set, mode="lexical")
    comparison = runs_compare(a=run, b=words)
    assert ("mode", "hybrid", "lexical") in comparison.settings
    changed = {d.text: d.change for d in comparison.questions}
    assert comparison.same + len(changed) == 4
    # Word search alone can't tell the off-topic question from the rest.
    assert changed.get("Who won the football world cup in 1954?") in (None, "worse")


def test_a_run_that_fails_keeps_the_reason(docs, settings):
    settings.LLM_BASE_URL = ""
    question_set = QuestionSet.objects.create(
        kb=docs,
        name="Broken",
        questions=[{"id": "1", "text": "How?"}],  # no "expected"
    )
    run = run_once(question_set)
    assert run.status == "failed" and "KeyError" in run.error


def test_staff_upload_a_set_and_queue_a_run_in_the_admin(docs):
    boss = get_user_model().objects.create_superuser("boss", password="pw-123456789")
    client = Client()
    client.force_login(boss)
    bad = io.BytesIO(b"question,expected_documents\nHow?,nowhere.md\n")
    bad.name = "bad.csv"
    response = client.post(
        "/admin/assistant/questionset/add/", {"kb": docs.pk, "name": "Bad", "upload": bad}
    )
    assert response.status_code == 200
    assert f"No document in {docs.name} is named nowhere.md." in response.content.decode()
    good = io.BytesIO(CSV.encode())
    good.name = "smoke.csv"
    client.post(
        "/admin/assistant/questionset/add/", {"kb": docs.pk, "name": "Smoke", "upload": good}
    )
    question_set = QuestionSet.objects.get(name="Smoke")
    assert (question_set.answerable, question_set.off_topic, question_set.source_name) == (
        3,
        1,
        "smoke.csv",
    )
    page = client.get(f"/admin/assistant/questionset/{question_set.pk}/change/").content.decode()
    assert "Run these 4 questions against" in page
    response = client.post(
        f"/admin/assistant/questionset/{question_set.pk}/run/",
        {"mode": "dense", "note": "baseline"},
    )
    run = EvaluationRun.objects.get()
    assert response["Location"] == f"/admin/assistant/evaluationrun/{run.pk}/change/"
    assert (run.status, run.mode, run.note, run.total) == ("queued", "dense", "baseline", 4)
    assert "Waiting for the worker" in client.get(response["Location"]).content.decode()


def test_a_threshold_staff_set_is_used_and_a_run_shows_what_it_changed(docs, smoke_set, settings):
    from ingest.services import kb_update

    settings.LLM_BASE_URL = ""
    question_set = smoke_set
    before = run_once(question_set)
    with pytest.raises(ValueError, match="No match threshold: Ensure this value is less than"):
        kb_update(kb=docs, no_match_threshold=1.5)
    kb_update(kb=docs, no_match_threshold=0.99)  # nothing is that close
    after = run_once(QuestionSet.objects.get(pk=question_set.pk))
    # All refused but the E-42 question: an error code found verbatim is always a match.
    assert [r["matched"] for r in after.results] == [False, True, False, False]
    assert after.metrics["positives_refused"] == 0.667
    assert after.snapshot["no_match_threshold_from"] == "staff"
    comparison = runs_compare(a=before, b=after)
    assert (
        "no_match_threshold",
        before.snapshot["no_match_threshold"],
        0.99,
    ) in comparison.settings
    refused = next(m for m in comparison.metrics if m.label == "Real questions refused")
    assert refused.better is False
