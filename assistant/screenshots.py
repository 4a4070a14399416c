"""Images a question carries: pasted screenshots and the image sources retrieval finds."""

from __future__ import annotations

import io
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage

from ingest.models import Asset
from ministral.limits import MAX_IMAGES
from ministral.prompt import Image

from .packing import ImageInput

if TYPE_CHECKING:
    from .models import Message

logger = logging.getLogger("docent.chat")


class ChatInputError(ValueError):
    """The question or an attachment is unusable; the message says why.

    ``status`` is the HTTP status every surface answers with (the CLI exits non-zero).
    """

    status = 422

    def __init__(
        self, message: str, *, status: int | None = None, retry_after: int | None = None
    ) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status
        self.retry_after = retry_after  # seconds, for a 429


class ConversationNotFound(ChatInputError):
    """No conversation with that id belongs to this asker in this knowledge base."""

    status = 404


class Attachment(Protocol):
    """An attached image not read yet: its size is known before its bytes are touched."""

    @property
    def size(self) -> int:
        """The size the sender declared, in bytes (checked before anything is read)."""
        ...

    def read(self) -> bytes: ...


@dataclass(frozen=True)
class AttachedBytes:
    """An attachment already in memory (the command line reads a file)."""

    data: bytes

    @property
    def size(self) -> int:
        return len(self.data)

    def read(self) -> bytes:
        return self.data


def attachments_check(*, attachments: Sequence[Attachment], allowed: bool) -> None:
    """The count and the declared sizes, before any attachment is read."""
    if attachments and not allowed:
        raise ChatInputError("Screenshots are not accepted here.")
    if len(attachments) > MAX_IMAGES:
        raise ChatInputError(f"Attach at most {MAX_IMAGES} screenshots.")
    for attachment in attachments:
        _size_check(attachment.size)


def _size_check(size: int) -> None:
    if not size:
        raise ChatInputError("The attached image is empty.")
    if size > settings.MAX_CHAT_IMAGE_BYTES:
        raise ChatInputError(
            f"The attached image is {size:,} bytes; the limit is "
            f"{settings.MAX_CHAT_IMAGE_BYTES:,} (MAX_CHAT_IMAGE_BYTES).",
            status=413,
        )


@dataclass(frozen=True)
class Screenshot:
    image: ImageInput
    png: bytes  # what is stored with the conversation


def screenshot_prepare(*, data: bytes) -> Screenshot:
    """Validate a pasted image and shrink it for the model (fast; OCR comes later)."""
    from PIL import Image as PILImage

    from ingest.pipeline.images import ImageTooLarge, normalise_for_model, open_image

    _size_check(len(data))
    try:
        pil = open_image(data, max_pixels=settings.MAX_CHAT_IMAGE_PIXELS)
    except ImageTooLarge as exc:
        raise ChatInputError(str(exc)) from exc
    except (OSError, ValueError, PILImage.DecompressionBombError) as exc:
        raise ChatInputError(
            "The attachment is not an image Docent can read (PNG, JPEG, WEBP, GIF)."
        ) from exc
    payload, mime, width, height = normalise_for_model(pil)
    return Screenshot(ImageInput(Image(payload, mime, width, height), label="screenshot"), payload)


def screenshot_read(*, shot: Screenshot) -> Screenshot:
    """The same screenshot with the text OCR finds in it."""
    from PIL import Image as PILImage

    from ingest.pipeline.ocr import get_engine, ocr_image

    if not settings.OCR_ENABLED:
        return shot
    text = ocr_image(PILImage.open(io.BytesIO(shot.png)), engine=get_engine()).text
    return Screenshot(ImageInput(shot.image.image, text, shot.image.label), shot.png)


def asset_image(asset: Asset) -> ImageInput | None:
    """An image source (a figure or screenshot in the knowledge base), ready for the model."""
    try:
        with default_storage.open(str(asset.file.name), "rb") as handle:
            data = handle.read()
    except OSError:
        logger.warning("Asset %s is missing its file", asset.pk)
        return None
    image = Image(data, asset.mime_type, asset.width, asset.height)
    return ImageInput(image, ocr_text=asset.ocr_text, label="source image")


def screenshots_save(*, message: Message, screenshots: Sequence[Screenshot]) -> list[str]:
    """Keep a question's screenshots (as PNG) beside its conversation; their paths."""
    uid = message.conversation.uid
    return [
        default_storage.save(f"conversations/{uid}/{message.pk}-{n}.png", ContentFile(shot.png))
        for n, shot in enumerate(screenshots, start=1)
    ]


def screenshots_saved(*, message: Message) -> list[Attachment]:
    """A question's saved screenshots, read now (asking again deletes the files)."""
    found: list[Attachment] = []
    for path in message.images:
        try:
            with default_storage.open(path, "rb") as stored:
                found.append(AttachedBytes(stored.read()))
        except OSError:
            logger.warning("Screenshot %s of message %s is missing", path, message.pk)
    return found
