"""How close a description of a screenshot gets to the screenshot's OCR text, in cosine.

Each of Docent's own README screenshots (docs/screenshots, taken by
scripts/screenshots.py) is OCRed by the product's OCR and embedded by the product's
embedder, then asked for by a one-line description of what it shows. Printed per
screenshot: the cosine of the description to its own screenshot's text and to the best
other one; then the spread, against the match threshold questions about text must reach.

This is why assistant/relevance.py doesn't judge screenshots by that threshold.

    .venv/bin/python bench/screenshot_similarity.py
"""

from __future__ import annotations

import sys

import numpy as np
from _setup import REPO, django_setup, machine

DESCRIPTIONS = {
    "chat-desktop.png": "chat page answering how to clear error E-42 with cited sources",
    "chat-dark-desktop.png": "dark mode chat with an answer about the paper tray",
    "chat-phone.png": "phone chat screen with an answer and a list of sources",
    "chat-drawer-phone.png": "the conversations drawer on a phone with knowledge bases",
    "documents-desktop.png": "documents page listing files with size, pages, chunks and status",
    "documents-phone.png": "document list on a phone with re-index and delete buttons",
    "menu-phone.png": "account menu with sign out and password change",
    "viewer-desktop.png": "document viewer showing a markdown manual with headings",
    "viewer-pdf-desktop.png": "PDF viewer with the cited passage highlighted on the page",
    "widget-desktop.png": "help widget open on a customer website answering a question",
    "widget-admin-desktop.png": "widget settings form with allowed origins, colour and snippet",
}


def main() -> int:
    django_setup()
    from django.conf import settings
    from PIL import Image

    from ingest.pipeline.embed import get_embedder
    from ingest.pipeline.ocr import get_engine, ocr_image
    from ingest.services.calibration import MATCH_DEFAULT

    folder = REPO / "docs" / "screenshots"
    names = [n for n in DESCRIPTIONS if (folder / n).is_file()]
    if len(names) < 2:
        print(f"need the screenshots in {folder} (scripts/screenshots.py)", file=sys.stderr)
        return 2
    embedder = get_embedder(settings.EMBEDDING_MODEL_PATH, settings.EMBEDDING_BACKEND)
    engine = get_engine()
    texts = [ocr_image(Image.open(folder / n).convert("RGB"), engine=engine).text for n in names]
    shots = embedder.encode([t[:2000] for t in texts])
    asks = embedder.encode([DESCRIPTIONS[n] for n in names])
    similarity = asks @ shots.T
    print(f"Screenshot descriptions against their OCR text ({embedder.name}), {machine()}")
    print(f"{'screenshot':28}{'own':>7}{'best other':>12}{'OCR chars':>11}")
    for i, name in enumerate(names):
        other = float(np.max(np.delete(similarity[i], i)))
        print(f"{name:28}{similarity[i, i]:7.3f}{other:12.3f}{len(texts[i]):11d}")
    own = np.diag(similarity)
    found = int(np.sum(np.argmax(similarity, axis=1) == np.arange(len(names))))
    below = int(np.sum(own < MATCH_DEFAULT))
    print(
        f"own: min {own.min():.3f}  median {np.median(own):.3f}  max {own.max():.3f}; "
        f"{below} of {len(names)} below the default match threshold {MATCH_DEFAULT}; "
        f"own screenshot ranked first for {found} of {len(names)}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
