"""`manage.py embedder_build`: build the onnx-int8 embedder ahead of its first use.

The build (export to ONNX, int8 quantization; about 10 s on 2 cores) also happens by
itself the first time a process needs it. Run this where DATA_DIR is read-only at run
time, or to keep the first start quick; it never downloads anything.
"""

from __future__ import annotations

import time
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Export the embedding model to ONNX and quantize it to int8, under DATA_DIR/models."

    def handle(self, *args, **options) -> None:
        from ingest.pipeline.embed import default_model_path, get_embedder, onnx_build

        path = Path(settings.EMBEDDING_MODEL_PATH) if settings.EMBEDDING_MODEL_PATH else None
        started = time.monotonic()
        try:
            target, built = onnx_build(
                path or default_model_path(), Path(settings.EMBEDDING_CACHE_DIR)
            )
        except ImproperlyConfigured as refused:
            raise CommandError(str(refused)) from None
        seconds = time.monotonic() - started
        self.stdout.write(
            f"{'Built' if built else 'Already built:'} {target} "
            f"({target.stat().st_size / 1e6:.0f} MB{f', {seconds:.0f} s' if built else ''})."
        )
        embedder = get_embedder(settings.EMBEDDING_MODEL_PATH, "onnx-int8")
        embedder.encode(["check"])
        if settings.EMBEDDING_BACKEND != "onnx-int8":
            self.stdout.write(
                "EMBEDDING_BACKEND is torch, so it is not used yet; knowledge bases indexed "
                "with torch need re-indexing after switching."
            )
