"""Validate one image file completely and describe it: what ingest runs for every file.

Kept free of TensorFlow and pandas so that ingest's worker processes start quickly.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

# decode also switches off Pillow's decompression-bomb limit: ingest applies its own,
# ``ingest.max_pixels``, before decoding.
from imgclf.imaging.decode import open_binary

HASH_SIDE = 16  # a 16×16 = 256-bit hash
HASH_THUMBNAIL = 64
HIGH_BIT_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def _dct_basis(size: int, frequencies: int) -> np.ndarray:
    """The first ``frequencies`` rows of the orthonormal DCT-II matrix of ``size`` points."""
    k = np.arange(frequencies)[:, None]
    n = np.arange(size)[None, :]
    basis = np.sqrt(2.0 / size) * np.cos(np.pi * (2 * n + 1) * k / (2 * size))
    basis[0] /= np.sqrt(2.0)
    return basis


DCT_BASIS = _dct_basis(HASH_THUMBNAIL, HASH_SIDE)
MEDIAN_RANK = (HASH_SIDE * HASH_SIDE - 1) // 2


def inspect_image(path: str, max_pixels: int) -> dict[str, Any]:
    """Read ``path`` whole, decode every pixel and return what the index records.

    The result always has ``path`` and ``reason`` (``None`` for a good image; otherwise one
    of ``empty file``, ``not an image``, ``too many pixels``, ``corrupt or truncated``,
    ``unreadable``) with a human-readable ``detail``. A good image also has ``width``,
    ``height``, ``mode``, ``format``, ``frames``, ``sha256`` and ``phash`` (a 256-bit
    perceptual hash as 64 hex digits).
    """
    result: dict[str, Any] = {"path": path, "reason": None, "detail": None}
    try:
        with open_binary(path) as file:
            data = file.read()
    except OSError as error:
        return {**result, "reason": "unreadable", "detail": f"cannot read the file: {error}"}
    if not data:
        return {**result, "reason": "empty file", "detail": "the file has 0 bytes"}
    result["sha256"] = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            if width * height > max_pixels:
                return {
                    **result,
                    "reason": "too many pixels",
                    "detail": (
                        f"{width}x{height} = {width * height:,} pixels is over "
                        f"ingest.max_pixels = {max_pixels:,} (a possible decompression bomb)"
                    ),
                }
            image.load()
            result.update(
                width=width,
                height=height,
                mode=image.mode,
                format=image.format,
                frames=int(getattr(image, "n_frames", 1)),
                phash=perceptual_hash(image),
            )
    except UnidentifiedImageError:
        return {
            **result,
            "reason": "not an image",
            "detail": "Pillow recognises no image format in this file, whatever its extension",
        }
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as error:
        return {**result, "reason": "corrupt or truncated", "detail": f"decoding failed: {error}"}
    return result


def perceptual_hash(image: Image.Image) -> str:
    """256-bit DCT perceptual hash: which of the 16×16 lowest frequencies of a 64×64
    grayscale thumbnail lie above their median.

    Copies, re-encodings and resized or slightly brightened versions of one picture differ in
    a few bits (≤ 16 of 256 in our checks); distinct pictures, even of one class, in many more.
    """
    thumbnail = _luminance_thumbnail(image)
    frequencies = (DCT_BASIS @ thumbnail @ DCT_BASIS.T).ravel()
    median = np.partition(frequencies[1:], MEDIAN_RANK)[MEDIAN_RANK]  # without the mean (DC)
    return np.packbits(frequencies > median).tobytes().hex()


def _luminance_thumbnail(image: Image.Image) -> np.ndarray:
    """64×64 grayscale of any mode as floats, high-bit-depth values scaled to 0–255."""
    if image.mode in HIGH_BIT_DEPTH_MODES:
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if values.max(initial=0) <= 65535 else float(values.max())
        image = Image.fromarray((values * (255.0 / top)).astype(np.float32))
    else:
        image = image.convert("L")
    factors = (max(1, image.width // HASH_THUMBNAIL), max(1, image.height // HASH_THUMBNAIL))
    if factors != (1, 1):
        image = image.reduce(factors)  # fast whole-pixel box averaging
    if image.size != (HASH_THUMBNAIL, HASH_THUMBNAIL):
        image = image.resize((HASH_THUMBNAIL, HASH_THUMBNAIL), Image.BOX)
    return np.asarray(image, dtype=np.float64)
