"""`manage.py evaluate` on a small BEIR set: real ingest (OCR for images), retrieval, packing."""

from __future__ import annotations

import json
import subprocess

import pytest

from ingest.models import KnowledgeBase
from tests import factories
from tests.conftest import manage_run

pytestmark = pytest.mark.django_db(transaction=True)

CORPUS = [
    {
        "_id": "d1",
        "title": "Paper jams",
        "text": "Error E-42 means paper is jammed in tray 2. Open cover B.",
    },
    {
        "_id": "d2",
        "title": "Wi-Fi",
        "text": "The printer joins wireless networks from Settings > Network.",
    },
    {
        "_id": "d3",
        "title": "Toner",
        "text": "Replace the toner cartridge when the amber light blinks twice.",
    },
    {"_id": "d4", "title": "", "text": "", "image": "img/dialog.png"},
]
QUERIES = [
    ("q1", "What does error E-42 mean?", "d1"),
    ("q2", "How do I connect the printer to wireless?", "d2"),
    ("q3", "When should the toner be replaced?", "d3"),
    ("q4", "Why does the backup say quota exceeded?", "d4"),
]


@pytest.fixture
def beir(tmp_path):
    root = tmp_path / "set"
    (root / "qrels").mkdir(parents=True)
    (root / "img").mkdir()
    (root / "img/dialog.png").write_bytes(
        factories.text_image(["Backup failed", "Disk quota exceeded"])
    )
    (root / "corpus.jsonl").write_text("\n".join(json.dumps(row) for row in CORPUS))
    (root / "queries.jsonl").write_text(
        "\n".join(json.dumps({"_id": q, "text": t}) for q, t, _ in QUERIES)
    )
    (root / "qrels/test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "".join(f"{q}\t{d}\t1\n" for q, _, d in QUERIES)
    )
    return root


def evaluate(*args: str) -> subprocess.CompletedProcess:
    return manage_run("evaluate", *args, timeout=600)


def test_evaluate_scores_a_small_set_and_cleans_up(beir, tmp_path):
    noise = tmp_path / "noise"
    noise.mkdir()
    (noise / "other.md").write_text("# Holidays\n\nThe office closes on public holidays.")
    (noise / "ignored.bin").write_bytes(b"\x00\x01")
    result = evaluate(
        "--beir", str(beir), "--json", "--distractors", str(noise), "--budgets", "1000,4000"
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["queries"] == 4 and report["documents"] == 4 and report["distractors"] == 1
    assert report["failed_documents"] == []
    assert (
        report["recall_at_1"] == 1.0 and report["mrr_at_10"] == 1.0 and report["ndcg_at_10"] == 1.0
    )
    assert report["context_recall"] == {"1000": 1.0, "4000": 1.0}
    assert not KnowledgeBase.objects.exists()  # the throwaway knowledge base is gone


@pytest.mark.parametrize("mode", ["dense", "lexical"])
def test_each_mode_runs_and_prints_a_table(beir, mode):
    result = evaluate("--beir", str(beir), "--mode", mode)
    assert result.returncode == 0, result.stderr
    assert (
        f"mode {mode}" in result.stdout
        and "Recall@5" in result.stdout
        and "Context recall" in result.stdout
    )


OFF_TOPIC = [
    "Who won the football world cup in 1954?",
    "How long should sourdough bread rise before baking?",
    "What is the capital city of Peru?",
    "How do I patch the inner tube of a bicycle tyre?",
]


def test_off_topic_questions_are_counted_as_refused_and_real_ones_not(beir, tmp_path):
    negatives = tmp_path / "negatives.jsonl"
    negatives.write_text(
        "\n".join(json.dumps({"_id": f"n{i}", "text": t}) for i, t in enumerate(OFF_TOPIC))
    )
    result = evaluate("--beir", str(beir), "--negatives", str(negatives), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["negatives"] == 4 and report["negatives_refused"] == 1.0
    assert report["positives_refused"] == 0.0 and 0.25 <= report["match_threshold"] <= 0.4
    text = evaluate("--beir", str(beir), "--negatives", str(negatives)).stdout
    assert "positives_refused 0.000  negatives_refused 1.000 of 4" in text


def test_not_a_beir_folder_is_a_clear_error(tmp_path):
    result = evaluate("--beir", str(tmp_path))
    assert result.returncode != 0 and "corpus.jsonl is missing" in result.stderr
