"""Decode any image Pillow can read into a canonical uint8 array.

This module deliberately does not import TensorFlow: it is used by ingest and
reporting code that must stay light. :func:`read_image` turns every image mode
Pillow produces into ``uint8`` arrays of shape ``(height, width, channels)``:

* EXIF orientation is applied, so the array is the upright picture.
* Transparency (RGBA, LA, PA, palette with a transparent entry, ...) is
  composited over a flat grey ``background`` level, not dropped.
* 16- and 32-bit integer greyscale is rescaled by its bit depth (65535 -> 255),
  never clipped; floating point greyscale is rescaled (see :func:`read_image`).
* CMYK, YCbCr, LAB, HSV, 1-bit and palette images are converted to RGB / L.
* ``size`` resizes with an antialiasing bilinear filter (reduced first by
  box-averaging when shrinking a lot, and by DCT scaling for JPEG).

Importing this module switches off Pillow's decompression-bomb limit
(``Image.MAX_IMAGE_PIXELS``) for the process: indexed images were already
size-checked by ingest.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import IO

import fsspec
import numpy as np
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

# Indexed images were already checked by ingest against its own pixel limit
# (``ingest.max_pixels``, which may exceed Pillow's), so Pillow's
# decompression-bomb check would only reject images ingest accepted.
# imgclf.imaging.inspect relies on this too.
Image.MAX_IMAGE_PIXELS = None

COLOR_MODE_CHANNELS: dict[str, int] = {"rgb": 3, "grayscale": 1}
"""Supported colour modes and the number of channels each produces."""

REDUCING_GAP = 2.0
"""Pillow ``reducing_gap``: shrink by whole factors first while the image is
more than this many times the target size (as ``Image.thumbnail`` does)."""

_PREMULTIPLIED_TO_STRAIGHT = {"RGBa": "RGBA", "La": "LA", "PA": "RGBA"}
_SIXTEEN_BIT_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N"})
_FORMATS_WITH_SIXTEEN_BIT_INTEGER_MODE = frozenset({"PNG", "PPM"})
_TIFF_BITS_PER_SAMPLE_TAG = 258
_TIFF_SAMPLE_FORMAT_TAG = 339
_TIFF_SIGNED_INTEGER_SAMPLE_FORMAT = 2


def channels_for(color_mode: str) -> int:
    """Return the channel count of ``color_mode`` ("rgb" -> 3, "grayscale" -> 1).

    Raises:
        ValueError: if ``color_mode`` is not one of :data:`COLOR_MODE_CHANNELS`.
    """
    try:
        return COLOR_MODE_CHANNELS[color_mode]
    except (KeyError, TypeError):
        valid = ", ".join(repr(mode) for mode in COLOR_MODE_CHANNELS)
        raise ValueError(f"color_mode must be one of {valid}; got {color_mode!r}") from None


def size_tuple(size: int | Sequence[int]) -> tuple[int, int]:
    """Validate an image size and return it as ``(height, width)``.

    Args:
        size: a positive int (square images) or a pair ``[height, width]`` of
            positive ints.

    Raises:
        ValueError: if ``size`` is not a positive int or a pair of them.
    """
    if _is_positive_int(size):
        return int(size), int(size)  # type: ignore[arg-type]
    is_pair = isinstance(size, Sequence) and not isinstance(size, str) and len(size) == 2
    if is_pair and all(_is_positive_int(side) for side in size):  # type: ignore[union-attr]
        height, width = size  # type: ignore[misc]
        return int(height), int(width)
    raise ValueError(
        f"image size must be a positive int or a [height, width] pair of positive ints; "
        f"got {size!r}"
    )


def image_shape(size: int | Sequence[int], color_mode: str) -> tuple[int, int, int]:
    """The ``(height, width, channels)`` of images read at ``size`` in ``color_mode``: a
    model's input shape.

    Raises:
        ValueError: for an invalid size or colour mode.
    """
    return (*size_tuple(size), channels_for(color_mode))


def open_binary(path: str) -> IO[bytes]:
    """Open a local path or any fsspec URL for reading bytes. Local paths use the built-in
    ``open``, much cheaper per file than fsspec's, which counts over thousands of images."""
    if "://" in path:
        return fsspec.open(path, "rb").open()
    return open(path, "rb")  # the caller closes it (``with``)


def read_image(
    path: str,
    *,
    color_mode: str = "rgb",
    size: int | tuple[int, int] | None = None,
    background: int = 255,
) -> np.ndarray:
    """Read one image file into a ``uint8`` array of shape ``(height, width, channels)``.

    Args:
        path: a local path or any fsspec URL (``s3://...``, ``memory://...``).
        color_mode: "rgb" (3 channels) or "grayscale" (1 channel, ITU-R 601 luma).
        size: if given, resize to this size: an int for a square, or
            ``(height, width)``. The aspect ratio is not preserved.
        background: grey level 0-255 that transparent pixels are composited over.

    Returns:
        A C-contiguous ``uint8`` array. The first frame of animated images is used.

    Notes:
        Integer greyscale wider than 8 bits is scaled by its bit depth: from the
        TIFF BitsPerSample/SampleFormat tags, 16 for PNG/PPM, otherwise the
        smallest of 8/16/32 bits that holds the largest value. Negative values
        become 0. Float greyscale ("F") is taken as [0, 1] if its largest value
        is at most 1, as [0, 255] if at most 255, and otherwise min-max scaled to
        [0, 255]; NaN becomes 0. CMYK is converted without colour management.

    Raises:
        ValueError: for an unknown ``color_mode``, bad ``size`` or ``background``.
    """
    channels = channels_for(color_mode)
    target_size = None if size is None else size_tuple(size)
    _check_background(background)
    with open_binary(path) as file:
        with Image.open(file) as image:
            if target_size is not None:
                _request_jpeg_draft(image, target_size)
            image.load()
            integer_bit_depth = _integer_bit_depth(image)
            ImageOps.exif_transpose(image, in_place=True)
            pixels = _to_eight_bit(image, integer_bit_depth)
    pixels = _composite_over_background(pixels, background)
    pixels = _convert_channels(pixels, channels)
    if target_size is not None:
        pixels = _resize(pixels, target_size)
    return np.ascontiguousarray(pixels.reshape(*pixels.shape[:2], channels))


def _is_positive_int(value: object) -> bool:
    is_integer = isinstance(value, int | np.integer) and not isinstance(value, bool)
    return is_integer and int(value) > 0  # type: ignore[call-overload]


def _check_background(background: int) -> None:
    is_integer = isinstance(background, int | np.integer) and not isinstance(background, bool)
    if not is_integer or not 0 <= background <= 255:
        raise ValueError(f"background must be an int grey level in [0, 255]; got {background!r}")


def _request_jpeg_draft(image: Image.Image, target_size: tuple[int, int]) -> None:
    """Let the JPEG decoder scale down by 1/2, 1/4 or 1/8 when much larger than needed.

    The requested box is square on the longer target side so that a later EXIF
    rotation (which swaps width and height) cannot leave it too small.
    """
    if image.format != "JPEG":
        return
    longer_side = math.ceil(max(target_size) * REDUCING_GAP)
    image.draft(None, (longer_side, longer_side))


def _integer_bit_depth(image: Image.Image) -> tuple[int, bool] | None:
    """Return ``(bits, signed)`` for integer greyscale wider than 8 bits, else None."""
    if image.mode in _SIXTEEN_BIT_MODES:
        return 16, False
    if image.mode != "I":
        return None
    if image.format == "TIFF":
        tags = getattr(image, "tag_v2", {})
        bits = _first_tag_value(tags.get(_TIFF_BITS_PER_SAMPLE_TAG))
        sample_format = _first_tag_value(tags.get(_TIFF_SAMPLE_FORMAT_TAG))
        if bits in (16, 32):
            return bits, sample_format == _TIFF_SIGNED_INTEGER_SAMPLE_FORMAT
    if image.format in _FORMATS_WITH_SIXTEEN_BIT_INTEGER_MODE:
        return 16, False
    return None


def _first_tag_value(value: object) -> object:
    if isinstance(value, tuple):
        return value[0] if value else None
    return value


def _to_eight_bit(image: Image.Image, integer_bit_depth: tuple[int, bool] | None) -> np.ndarray:
    """Convert any Pillow mode to a uint8 array with 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels."""
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        return _scale_integer_greyscale(np.asarray(image), integer_bit_depth)
    if mode == "F":
        return _scale_float_greyscale(np.asarray(image, dtype=np.float64))
    if mode in _PREMULTIPLIED_TO_STRAIGHT:
        image = image.convert(_PREMULTIPLIED_TO_STRAIGHT[mode])
    elif mode == "P":
        image = image.convert("RGBA" if image.has_transparency_data else "RGB")
    elif mode in ("L", "1") and "transparency" in image.info:
        image = image.convert("LA")
    elif mode == "RGB" and "transparency" in image.info:
        image = image.convert("RGBA")
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        image = image.convert("L" if mode == "1" else "RGB")
    return _with_channel_axis(np.asarray(image))


def _scale_integer_greyscale(
    values: np.ndarray, integer_bit_depth: tuple[int, bool] | None
) -> np.ndarray:
    """Scale integer greyscale to 0-255 by its bit depth (max value -> 255), rounding."""
    values = values.astype(np.float64)
    if integer_bit_depth is None:
        largest = float(values.max(initial=0))
        bits = next(bits for bits in (8, 16, 32) if largest <= 2**bits - 1)
        integer_bit_depth = (bits, False)
    bits, signed = integer_bit_depth
    maximum = 2 ** (bits - 1) - 1 if signed else 2**bits - 1
    scaled = np.clip(values, 0, maximum) * (255.0 / maximum)
    return _with_channel_axis(np.rint(scaled).astype(np.uint8))


def _scale_float_greyscale(values: np.ndarray) -> np.ndarray:
    """Scale float greyscale to 0-255 (see :func:`read_image` for the rule)."""
    values = np.nan_to_num(values, nan=0.0, posinf=0.0, neginf=0.0)
    largest = float(values.max(initial=0.0))
    if largest <= 1.0:
        scaled = values * 255.0
    elif largest <= 255.0:
        scaled = values
    else:
        smallest = float(values.min())
        scaled = (values - smallest) * (255.0 / (largest - smallest))
    return _with_channel_axis(np.rint(np.clip(scaled, 0.0, 255.0)).astype(np.uint8))


def _with_channel_axis(pixels: np.ndarray) -> np.ndarray:
    return pixels[:, :, np.newaxis] if pixels.ndim == 2 else pixels


def _composite_over_background(pixels: np.ndarray, background: int) -> np.ndarray:
    """Blend LA / RGBA pixels over a flat grey ``background``; others pass through."""
    if pixels.shape[2] not in (2, 4):
        return pixels
    colour = pixels[:, :, :-1].astype(np.uint32)
    alpha = pixels[:, :, -1:].astype(np.uint32)
    blended = (colour * alpha + background * (255 - alpha) + 127) // 255
    return blended.astype(np.uint8)


def _convert_channels(pixels: np.ndarray, channels: int) -> np.ndarray:
    """Turn 1- or 3-channel uint8 pixels into ``channels`` channels."""
    if pixels.shape[2] == channels:
        return pixels
    if channels == 3:
        return np.repeat(pixels, 3, axis=2)
    luma = Image.fromarray(np.ascontiguousarray(pixels)).convert("L")
    return _with_channel_axis(np.asarray(luma))


def _resize(pixels: np.ndarray, target_size: tuple[int, int]) -> np.ndarray:
    """Resize to ``(height, width)`` with Pillow's antialiasing bilinear filter."""
    height, width = target_size
    if pixels.shape[:2] == (height, width):
        return pixels
    image = Image.fromarray(
        np.ascontiguousarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)
    )
    resized = image.resize((width, height), Image.Resampling.BILINEAR, reducing_gap=REDUCING_GAP)
    return _with_channel_axis(np.asarray(resized))
