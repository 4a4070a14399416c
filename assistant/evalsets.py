"""Question sets staff upload to measure a knowledge base: CSV, or BEIR files in a zip.

CSV: a header row naming `question` and `expected_documents` (or `expected`). Expected
documents are file names in the knowledge base, separated by `|` or `;`, with or without
their extension; an empty cell marks an off-topic question that should get "no match".
An `id` column is kept when present.

BEIR (zip): `queries.jsonl` and `qrels/test.tsv` (or `qrels.tsv`), where a corpus id is a
document's file name, with or without its extension. An optional `negatives.jsonl`, in the
queries format, holds off-topic questions.
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath

from ingest.models import Document, KnowledgeBase

MAX_BYTES = 5 * 1024 * 1024  # an uploaded set, and each file inside a zip
MAX_QUESTIONS = 5_000


class QuestionSetError(ValueError):
    """Why an uploaded set can't be used, in words for the person who uploaded it."""


@dataclass(frozen=True)
class SetQuestion:
    id: str
    text: str
    expected: tuple[str, ...]  # document file names; () for off-topic

    def as_json(self) -> dict:
        return {"id": self.id, "text": self.text, "expected": list(self.expected)}


def question_set_parse(*, kb: KnowledgeBase, filename: str, data: bytes) -> list[SetQuestion]:
    """The questions of an uploaded file, their expected documents named as in `kb`."""
    if len(data) > MAX_BYTES:
        raise QuestionSetError(f"The file is over {MAX_BYTES // (1024 * 1024)} MB.")
    suffix = PurePosixPath(filename.lower()).suffix
    if suffix == ".zip":
        raw = _beir(data)
    elif suffix in (".csv", ".tsv", ".txt"):
        raw = _csv(_text(data, filename))
    else:
        raise QuestionSetError("Upload a .csv file, or a .zip of BEIR files.")
    if not raw:
        raise QuestionSetError("The file holds no questions.")
    if len(raw) > MAX_QUESTIONS:
        raise QuestionSetError(f"The file holds {len(raw):,} questions; at most {MAX_QUESTIONS:,}.")
    names = _document_names(kb)
    unknown = sorted({name for q in raw for name in q.expected if _key(name) not in names})
    if unknown:
        shown = ", ".join(unknown[:5]) + (
            f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
        )
        raise QuestionSetError(f"No document in {kb.name} is named {shown}.")
    return [
        SetQuestion(q.id, q.text, tuple(dict.fromkeys(names[_key(n)] for n in q.expected)))
        for q in raw
    ]


def _key(name: str) -> str:
    return name.strip().lower()


def _document_names(kb: KnowledgeBase) -> dict[str, str]:
    """Each way a set may name a document (lower case, with or without its extension) ->
    the document's file name."""
    names: dict[str, str] = {}
    for filename in Document.objects.filter(kb=kb).values_list("filename", flat=True):
        names.setdefault(_key(PurePosixPath(filename).stem), filename)
        names[_key(filename)] = filename
    return names


def _text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise QuestionSetError(f"{name} is not UTF-8 text.") from exc


def _csv(text: str) -> list[SetQuestion]:
    sample = text[:4096]
    try:
        dialect: type[csv.Dialect] | csv.Dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.DictReader(io.StringIO(text), dialect=dialect)
    fields = {(f or "").strip().lower(): f for f in reader.fieldnames or []}
    question = fields.get("question")
    expected = fields.get("expected_documents") or fields.get("expected")
    if question is None or expected is None:
        raise QuestionSetError(
            "The first row must name the columns question and expected_documents."
        )
    found = []
    for line, row in enumerate(reader, start=2):
        text_ = (row.get(question) or "").strip()
        if not text_:
            continue
        cell = (row.get(expected) or "").replace(";", "|")
        names = tuple(n.strip() for n in cell.split("|") if n.strip())
        given = (row.get(fields["id"]) or "").strip() if "id" in fields else ""
        found.append(SetQuestion(given or str(line), text_, names))
    return found


def _beir(data: bytes) -> list[SetQuestion]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile as exc:
        raise QuestionSetError("The .zip file can't be opened.") from exc
    with archive:
        nested = _nested(archive)
        members = {
            info.filename.split("/", 1)[1] if nested else info.filename: info
            for info in archive.infolist()
            if not info.is_dir()
        }
        if any(i.file_size > MAX_BYTES for i in members.values()):
            raise QuestionSetError(f"A file in the zip is over {MAX_BYTES // (1024 * 1024)} MB.")

        def read(name: str) -> str | None:
            info = members.get(name)
            return _text(archive.read(info), name) if info else None

        queries_text = read("queries.jsonl")
        qrels_text = read("qrels/test.tsv") or read("qrels.tsv")
        if queries_text is None or qrels_text is None:
            raise QuestionSetError("The zip must hold queries.jsonl and qrels/test.tsv.")
        queries = _queries(queries_text, "queries.jsonl")
        negatives_text = read("negatives.jsonl")
        negatives = _queries(negatives_text, "negatives.jsonl") if negatives_text else {}
    relevant: dict[str, list[str]] = {}
    for line in qrels_text.splitlines():
        parts = line.strip().split("\t")
        if len(parts) >= 3 and parts[2].lstrip("-").isdigit() and int(parts[2]) > 0:
            relevant.setdefault(parts[0], []).append(parts[1])
    found = [
        SetQuestion(q, queries[q], tuple(docs)) for q, docs in relevant.items() if q in queries
    ]
    if not found:
        raise QuestionSetError("No question in qrels/test.tsv has a relevant document.")
    return found + [SetQuestion(f"negative-{q}", text, ()) for q, text in negatives.items()]


def _nested(archive: zipfile.ZipFile) -> bool:
    """Zipped as one folder (dataset/queries.jsonl): names are read inside that folder."""
    tops = {name.split("/", 1)[0] for name in archive.namelist()}
    return len(tops) == 1 and all("/" in name for name in archive.namelist())


def _queries(text: str, name: str) -> dict[str, str]:
    queries = {}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            queries[str(row["_id"])] = str(row["text"]).strip()
        except (json.JSONDecodeError, KeyError, TypeError) as exc:
            raise QuestionSetError(f"{name} line {line_no} is not a BEIR query: {exc}") from exc
    return queries
