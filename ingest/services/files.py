"""Where a document's files live in storage, and removing them (S3 has no rmtree)."""

from __future__ import annotations

import contextlib
import shutil

from django.core.files.storage import default_storage


def asset_prefix(kb_id: int, document_id: int, generation: int | None = None) -> str:
    """Storage folder of a document's image assets (of one index generation, if given)."""
    base = f"kb/{kb_id}/assets/{document_id}"
    return base if generation is None else f"{base}/g{generation}"


def storage_delete_tree(prefix: str) -> None:
    """Delete every stored file under a folder, through the storage API (S3 has no rmtree)."""
    try:
        folders, files = default_storage.listdir(prefix)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in files:
        default_storage.delete(f"{prefix}/{name}")
    for folder in folders:
        storage_delete_tree(f"{prefix}/{folder}")
    with contextlib.suppress(NotImplementedError):  # object stores have no folders
        shutil.rmtree(default_storage.path(prefix), ignore_errors=True)
