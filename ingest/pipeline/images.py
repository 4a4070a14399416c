"""Safe image decoding and the one re-encoding every image gets before a model sees it."""

from __future__ import annotations

import io

from PIL import Image, ImageOps

from ministral.limits import MAX_IMAGE_BYTES as MODEL_MAX_BYTES
from ministral.limits import MAX_IMAGE_SIDE_PX as MODEL_MAX_SIDE_PX


class ImageTooLarge(ValueError):
    pass


def open_image(data: bytes, *, max_pixels: int) -> Image.Image:
    """Decode the first frame of an image, refusing decompression bombs before decoding.

    max_pixels bounds width x height; the check reads only the header.
    """
    try:
        pil = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # Pillow's own, cruder limit tripped first
        raise ImageTooLarge(
            f"This image has more than {_megapixels(max_pixels)} pixels, the limit; "
            "it may be a decompression bomb."
        ) from exc
    width, height = pil.size
    if width * height > max_pixels:
        raise ImageTooLarge(
            f"This image is {width:,} x {height:,} pixels ({_megapixels(width * height)}); "
            f"the limit is {_megapixels(max_pixels)}. It may be a decompression bomb."
        )
    if getattr(pil, "n_frames", 1) > 1:
        pil.seek(0)
    pil.load()
    return ImageOps.exif_transpose(pil) or pil


def _megapixels(pixels: int) -> str:
    millions = pixels / 1_000_000
    return f"{millions:.1f} million" if millions < 10 else f"{millions:,.0f} million"


def flatten(pil: Image.Image) -> Image.Image:
    """RGB with any transparency composited onto white, as the model's preprocessor does."""
    if pil.mode in {"RGBA", "LA"} or (pil.mode == "P" and "transparency" in pil.info):
        rgba = pil.convert("RGBA")
        background = Image.new("RGB", rgba.size, "white")
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return pil.convert("RGB") if pil.mode != "RGB" else pil


def normalise_for_model(pil: Image.Image) -> tuple[bytes, str, int, int]:
    """Downscale to at most 1540 px on the longest side and encode under 10 MB.

    Returns (bytes, mime type, width px, height px). PNG keeps screenshot text crisp;
    photos that PNG cannot hold under the byte cap fall back to JPEG.
    """
    rgb = flatten(pil)
    scale = MODEL_MAX_SIDE_PX / max(rgb.size)
    if scale < 1:
        size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
        rgb = rgb.resize(size, Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    rgb.save(buffer, format="PNG", optimize=False)
    if buffer.tell() > 2 * 1024 * 1024:
        for quality in (90, 80, 65):
            buffer = io.BytesIO()
            rgb.save(buffer, format="JPEG", quality=quality)
            if buffer.tell() <= MODEL_MAX_BYTES:
                return buffer.getvalue(), "image/jpeg", rgb.width, rgb.height
        raise ValueError("image cannot be encoded under 10 MB")
    return buffer.getvalue(), "image/png", rgb.width, rgb.height
