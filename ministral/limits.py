"""What one request to a Ministral 3 / Mistral Large 3 model may carry.

Mistral's vision docs: at most 8 images per request and 10 MB per image; images larger
than 1540 px on a side are scaled down by the model's preprocessor, so sending more
pixels is waste. Each image token covers a 28 x 28 pixel cell (patch 14 x merge 2).
"""

from __future__ import annotations

MAX_IMAGES = 8  # images per request
MAX_IMAGE_BYTES = 10 * 1024 * 1024  # bytes per encoded image
MAX_IMAGE_SIDE_PX = 1540  # pixels, longest side the model sees
IMAGE_CELL_PX = 28  # pixels per image-token side
