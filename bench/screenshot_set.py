"""Build a screenshot retrieval set in BEIR format: real pages, each asked for by what it shows.

Two kinds of screenshot, 61 in all:

- 40 pages of Debian's packaged Python documentation (`apt-get install python3.11-doc`),
  rendered by Chromium at 1366x768 and captured as the visible window only, the way a
  person takes a screenshot (some scrolled to a section). `bench/eval/screenshots.tsv`
  holds each page and a one-line description of what the capture shows.
- Docent's own README screenshots (docs/screenshots, from scripts/screenshots.py): real
  application screens with navigation, buttons and forms.

Ids are opaque (`shot-07`), so no file name gives the answer away. The folder it writes
is scored with the product's own command:

    .venv/bin/python bench/screenshot_set.py /tmp/screenshot-set
    .venv/bin/python manage.py evaluate --beir /tmp/screenshot-set [--mode dense]
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from pathlib import Path

from _setup import REPO
from screenshot_similarity import DESCRIPTIONS

DOCS = Path("/usr/share/doc/python3.11/html")
PAGES = REPO / "bench" / "eval" / "screenshots.tsv"
OWN = REPO / "docs" / "screenshots"
# What each of Docent's own screenshots shows, as a person looking for it would say it:
# bench/screenshot_similarity.py's descriptions, and the screens added since.
OWN_DESCRIPTIONS = {
    **DESCRIPTIONS,
    "analytics-desktop.png": "charts of questions per day and the share answered from sources",
    "evaluation-run-desktop.png": "an evaluation run report with recall and MRR figures",
    "evaluation-compare-desktop.png": "two evaluation runs side by side, metrics better or worse",
    "widget-admin-phone.png": "editing a help widget's settings on a phone",
    "viewer-pdf-phone.png": "a PDF page on a phone with the cited text marked",
    "analytics-phone.png": "analytics on a phone with unanswered questions",
    "evaluation-run-phone.png": "evaluation run results on a small screen",
    "evaluation-compare-phone.png": "comparing two runs on a phone",
    "viewer-phone.png": "reading a markdown document on a phone",
    "widget-phone.png": "the help widget taking the whole phone screen",
}


def pages() -> list[tuple[str, str]]:
    with PAGES.open(newline="") as f:
        return [(row["page"], row["description"]) for row in csv.DictReader(f, delimiter="\t")]


def shoot(out: Path, entries: list[tuple[str, str]]) -> list[Path]:
    from playwright.sync_api import sync_playwright

    files = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path="/usr/bin/chromium")
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        for n, (relative, _) in enumerate(entries):
            page.goto((DOCS / relative.split("#")[0]).as_uri() + _fragment(relative))
            files.append(out / f"docs-{n:02d}.png")
            page.screenshot(path=str(files[-1]))
        browser.close()
    return files


def _fragment(relative: str) -> str:
    return "#" + relative.split("#", 1)[1] if "#" in relative else ""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path, help="folder to write (BEIR layout)")
    args = parser.parse_args()
    if not DOCS.is_dir():
        print(f"{DOCS} is missing: apt-get install python3.11-doc", file=sys.stderr)
        return 2
    images = args.out / "images"
    images.mkdir(parents=True, exist_ok=True)
    entries = pages()
    shots = list(zip(shoot(images, entries), (d for _, d in entries), strict=True))
    for name, description in OWN_DESCRIPTIONS.items():
        if (OWN / name).is_file():
            target = images / f"app-{len(shots):02d}.png"
            target.write_bytes((OWN / name).read_bytes())
            shots.append((target, description))
    corpus, queries, qrels = [], [], ["query-id\tcorpus-id\tscore"]
    for n, (path, description) in enumerate(shots):
        shot_id = f"shot-{n:02d}"
        corpus.append({"_id": shot_id, "image": f"images/{path.name}"})
        queries.append({"_id": f"q{n:02d}", "text": description})
        qrels.append(f"q{n:02d}\t{shot_id}\t1")
    (args.out / "qrels").mkdir(exist_ok=True)
    _lines(args.out / "corpus.jsonl", [json.dumps(row) for row in corpus])
    _lines(args.out / "queries.jsonl", [json.dumps(row) for row in queries])
    _lines(args.out / "qrels" / "test.tsv", qrels)
    print(f"{len(shots)} screenshots and questions in {args.out}")
    return 0


def _lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    sys.exit(main())
