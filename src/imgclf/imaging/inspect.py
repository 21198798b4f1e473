"""Validate one image file completely and describe it: what ingest runs for every file.

Kept free of TensorFlow and pandas so that ingest's worker processes start quickly.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

# decode also switches off Pillow's decompression-bomb limit: ingest applies its own,
# ``ingest.max_pixels``, before decoding.
from imgclf.imaging.decode import open_binary

HASH_SIDE = 16  # the 16×16 lowest frequencies, less the mean: 255 coefficients
HASH_THUMBNAIL = 64
HASH_DTYPE = np.float16
HIGH_BIT_DEPTH_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")
GRAYSCALE_MODES = frozenset({"1", "L", "LA", "La", *HIGH_BIT_DEPTH_MODES})
# Most grey levels a pixel's channels may differ by (on a thumbnail) in a grayscale picture
# stored in colour: JPEG's chroma noise stays well below it, a sepia tint does not.
COLOUR_SPREAD = 6
_VECTOR = "a vector drawing, which Pillow cannot decode: export it as PNG to include it"
_HEIF = "HEIF/HEIC, which Pillow cannot decode without a plug-in: convert it to JPEG or PNG"
UNSUPPORTED_FORMATS = {".svg": _VECTOR, ".svgz": _VECTOR, ".heic": _HEIF, ".heif": _HEIF}


def _dct_basis(size: int, frequencies: int) -> np.ndarray:
    """The first ``frequencies`` rows of the orthonormal DCT-II matrix of ``size`` points."""
    k = np.arange(frequencies)[:, None]
    n = np.arange(size)[None, :]
    basis = np.sqrt(2.0 / size) * np.cos(np.pi * (2 * n + 1) * k / (2 * size))
    basis[0] /= np.sqrt(2.0)
    return basis


DCT_BASIS = _dct_basis(HASH_THUMBNAIL, HASH_SIDE)


def inspect_image(path: str, max_pixels: int) -> dict[str, Any]:
    """Read ``path`` whole, decode every pixel and return what the index records.

    The result always has ``path`` and ``reason`` (``None`` for a good image; otherwise one
    of ``empty file``, ``not an image``, ``unsupported format``, ``too many pixels``,
    ``corrupt or truncated``, ``unreadable``) with a human-readable ``detail``. A good
    image also has ``width``, ``height``, ``mode``, ``format``, ``frames``, ``sha256``,
    ``phash`` (:func:`perceptual_hash`) and ``grayscale`` (:func:`is_grayscale`).
    """
    result: dict[str, Any] = {"path": path, "reason": None, "detail": None}
    data, problem = _file_bytes(path)
    if problem:
        return {**result, "reason": problem[0], "detail": problem[1]}
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
                grayscale=is_grayscale(image),
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


def _file_bytes(path: str) -> tuple[bytes, tuple[str, str] | None]:
    """The file's bytes, or why there are none to decode: (reason, detail)."""
    extension = posixpath.splitext(path)[1].lower()
    if extension in UNSUPPORTED_FORMATS:
        return b"", ("unsupported format", UNSUPPORTED_FORMATS[extension])
    try:
        with open_binary(path) as file:
            data = file.read()
    except OSError as error:
        return b"", ("unreadable", _unreadable_detail(path, error))
    if not data:
        return b"", ("empty file", "the file has 0 bytes")
    return data, None


def _unreadable_detail(path: str, error: OSError) -> str:
    if os.path.islink(path):
        return f"a link to {os.readlink(path)!r}, which cannot be read: {error}"
    return f"cannot read the file: {error}"


def perceptual_hash(image: Image.Image) -> bytes:
    """The image's 255 lowest spatial frequencies (a 16×16 DCT of a 64×64 grayscale
    thumbnail, less the mean), scaled to unit length: 255 float16 values as bytes.

    Copies of one picture point the same way whatever their size, brightness, contrast or
    encoding: ingest groups images whose vectors are within ``near_duplicate_distance``
    (1 − cosine similarity; :mod:`imgclf.pipelines.ingest.duplicates`).
    """
    frequencies = (DCT_BASIS @ _luminance_thumbnail(image) @ DCT_BASIS.T).ravel()[1:]
    length = np.linalg.norm(frequencies)
    unit = frequencies / length if length > 0 else frequencies
    return unit.astype(HASH_DTYPE).tobytes()


def is_grayscale(image: Image.Image) -> bool:
    """Whether the picture holds no colour: a grayscale mode, or colour channels that agree
    within ``COLOUR_SPREAD`` grey levels everywhere on a thumbnail."""
    if image.mode in GRAYSCALE_MODES:
        return True
    rgb = image.convert("RGB")
    factor = max(1, min(rgb.width, rgb.height) // HASH_THUMBNAIL)
    pixels = np.asarray(rgb.reduce(factor) if factor > 1 else rgb, dtype=np.int16)
    return int((pixels.max(axis=2) - pixels.min(axis=2)).max(initial=0)) <= COLOUR_SPREAD


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
