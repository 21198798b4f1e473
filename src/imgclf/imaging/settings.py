"""The ``image`` parameter block: the size and colour mode images are read at.

``color_mode: auto`` (the default) is decided by the data: grayscale when every image of
the index is grayscale, RGB otherwise (ingest records, per image, whether its pixels hold
any colour). :func:`image_settings` resolves it, in each resolver that reads the project's
block (:func:`imgclf.pipelines.family.with_image_settings`, with the training index); a
variant's own ``image`` keys then go over the result (:func:`resolve_image`).

Free of TensorFlow: ingest reads it too.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from imgclf.config import block_items
from imgclf.imaging.decode import image_shape

IMAGE_KEYS = ("size", "color_mode")
AUTO = "auto"


def image_settings(image: Mapping[str, Any], index: pd.DataFrame) -> dict[str, Any]:
    """The project's ``image`` block validated, ``color_mode: auto`` decided by ``index``.

    Raises:
        ValueError: for unknown keys or invalid values, naming the block; or for ``auto``
            with an index made before ingest recorded colour (re-run ``ingest``).
    """
    settings = block_items(image, IMAGE_KEYS, "image")
    if settings.get("color_mode") == AUTO:
        settings["color_mode"] = color_mode_of(index)
    _check(settings, "image")
    return {key: settings.get(key) for key in IMAGE_KEYS}


def color_mode_of(index: pd.DataFrame) -> str:
    """``grayscale`` when every image of ``index`` is grayscale, else ``rgb``."""
    if "grayscale" not in index.columns:
        raise ValueError(
            "image.color_mode is auto, but the image index has no `grayscale` column: it was "
            "made by an older version. Re-run `kedro run --pipelines ingest,split`, or set "
            "image.color_mode to grayscale or rgb."
        )
    return "grayscale" if bool(index["grayscale"].all()) else "rgb"


def resolve_image(
    shared: Mapping[str, Any], own: Mapping[str, Any] | None, name: str
) -> dict[str, Any]:
    """The resolved project ``image`` settings (:func:`image_settings`) with a variant's
    own ``image`` keys over them, validated.

    Raises:
        ValueError: for keys other than size and color_mode, or invalid values (``auto``
            is for the project-wide block only), naming the variant.
    """
    image = {**shared, **block_items(own, IMAGE_KEYS, f"the image of {name}")}
    _check(image, f"{name}: image")
    return {key: image[key] for key in IMAGE_KEYS}


def _check(image: Mapping[str, Any], where: str) -> None:
    if image.get("color_mode") == AUTO:
        raise ValueError(
            f"{where}: color_mode auto is decided once for the project, in the shared `image` "
            "block; a variant sets grayscale or rgb"
        )
    try:
        image_shape(image.get("size"), image.get("color_mode"))
    except ValueError as error:
        raise ValueError(f"{where}: {error}") from None
