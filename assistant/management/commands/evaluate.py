"""`manage.py evaluate --beir DIR`: retrieval quality through the real pipeline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from ingest.management.database import database_prepare


class Command(BaseCommand):
    help = "Ingest a BEIR dataset into a throwaway knowledge base and score retrieval on it."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--beir", required=True, type=Path, help="BEIR folder (corpus, queries, qrels)"
        )
        parser.add_argument("--mode", choices=["dense", "lexical", "hybrid"], default="hybrid")
        parser.add_argument(
            "--distractors", type=Path, help="Folder of extra files ingested as noise"
        )
        parser.add_argument(
            "--negatives",
            type=Path,
            help="Off-topic questions (BEIR queries.jsonl format) that should get no match",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON object")
        parser.add_argument(
            "--budgets",
            default="4000,16000,64000",
            help="Context-recall budgets, tokens (comma-separated)",
        )

    def handle(
        self,
        *args,
        beir: Path,
        mode: str,
        distractors: Path | None,
        negatives: Path | None,
        json: bool,
        budgets: str,
        **options,
    ):
        from assistant.evaluation import DatasetError, beir_load, beir_queries, evaluation_run
        from assistant.services import chat_tools
        from ingest.services import ingest_tools

        if distractors is not None and not distractors.is_dir():
            raise CommandError(f"--distractors {distractors}: not a folder")
        try:
            dataset = beir_load(beir)
            off_topic = beir_queries(negatives) if negatives is not None else None
            budget_list = [int(b) for b in budgets.split(",") if b.strip()]
        except (DatasetError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        database_prepare(stdout=self.stderr)  # stderr: --json keeps stdout to one object
        bars: dict[str, tqdm] = {}

        def progress(stage: str, done: int, total: int) -> None:
            bar = bars.get(stage)
            if bar is None:
                bar = bars[stage] = tqdm(total=total, desc=stage, file=sys.stderr, leave=False)
            bar.n = done
            bar.refresh()

        report = evaluation_run(
            dataset=dataset,
            chat_tools=chat_tools(),
            ingest_tools=ingest_tools(),
            mode=mode,
            distractors=distractors,
            budgets=budget_list,
            negatives=off_topic,
            on_progress=progress,
        )
        for bar in bars.values():
            bar.close()
        if json:
            self.stdout.write(_json_dumps(report.as_dict()))
            return
        self.stdout.write(
            f"{beir.name}: {report.queries} queries, {report.documents} documents"
            + (f", {report.distractors} distractors" if report.distractors else "")
            + f", mode {mode}"
        )
        self.stdout.write(
            f"Recall@1 {report.recall_at_1:.3f}  Recall@5 {report.recall_at_5:.3f}  "
            f"Recall@10 {report.recall_at_10:.3f}  MRR@10 {report.mrr_at_10:.3f}  nDCG@10 {report.ndcg_at_10:.3f}"
        )
        recall = "  ".join(f"{int(b) // 1000}K {v:.3f}" for b, v in report.context_recall.items())
        self.stdout.write(f"Context recall: {recall}")
        no_match = (
            f"No match (threshold {report.match_threshold:.3f}): positives_refused "
            f"{report.positives_refused:.3f}"
        )
        if report.negatives_refused is not None:
            no_match += f"  negatives_refused {report.negatives_refused:.3f} of {report.negatives}"
        self.stdout.write(no_match)
        self.stdout.write(
            f"Ingest {report.ingest_seconds:.0f} s; retrieval p50 {report.query_ms_p50:.0f} ms"
        )
        for failure in report.failed_documents:
            self.stderr.write(f"not ingested: {failure}")


def _json_dumps(data: dict) -> str:
    return json.dumps(data, sort_keys=True)
