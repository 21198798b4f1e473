"""Label new images with a trained model: files that cannot be read are listed with the
reason, never fatal."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from imgclf.datasets.image_directory import BOX_COLUMNS
from imgclf.evaluation.predictions import check_output_classes, split_outputs
from imgclf.imaging.decode import open_binary, read_image
from imgclf.imaging.inspect import inspect_image
from imgclf.lazy import lazy_module

box_models = lazy_module("imgclf.models.boxes")
keras = lazy_module("keras")

logger = logging.getLogger(__name__)

UNREADABLE_COLUMNS = ["path", "reason", "detail"]
PROGRESS_EVERY = 20
"""Batches between two progress lines in the log."""


def check_model_classes(
    model: keras.Model, trained_classes: Sequence[str] | None, classes: Sequence[str]
) -> None:
    """Raise ``ValueError`` when the model was trained with other classes than ``classes``
    (by name and order, when its history recorded them), or outputs another number."""
    if trained_classes is not None and list(trained_classes) != list(classes):
        missing = [name for name in trained_classes if name not in classes]
        extra = [name for name in classes if name not in trained_classes]
        difference = (
            f"only the model has {missing}; only `classes` has {extra}"
            if missing or extra
            else "the same names in another order"
        )
        raise ValueError(
            f"model {model.name!r} was trained on the classes {list(trained_classes)}, but "
            f"`classes` is {list(classes)} ({difference}). Predict with a model trained on "
            "this split, or point `classes` at the classes.json the model was trained with"
        )
    check_output_classes(model, classes)


def predict_images(
    model: keras.Model,
    images: pd.DataFrame,
    classes: Sequence[str],
    *,
    image: Mapping[str, Any],
    batch_size: int,
    top_k: int,
    max_pixels: int,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Predict the class of every image listed in ``images`` (a ``path`` column; a
    ``label`` column, where known, is kept as ``true_label``).

    Returns:
        The predictions, one row per readable image: ``path``, ``label`` (the predicted
        class), ``confidence``, then ``label_2``, ``confidence_2`` ... up to ``top_k``, and
        ``true_label`` and ``correct`` when ``images`` has labels; a model with a box
        output adds the box as fractions of the image (``box_x_min``, ``box_y_min``,
        ``box_x_max``, ``box_y_max``) and in pixels of the file (``box_x_min_px`` …); and
        the unreadable files: ``path``, ``reason`` (as ingest words it) and ``detail``.

    Raises:
        ValueError: if ``images`` has no ``path`` column or ``top_k`` is not positive.
    """
    if "path" not in images:
        raise ValueError(
            f"the images to predict need a 'path' column; got columns {list(images.columns)}"
        )
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValueError(f"predict.top_k must be a positive int; got {top_k!r}")
    top_k = min(top_k, len(classes))
    paths = images["path"].astype(str).tolist()
    readable: list[int] = []
    pixels: list[np.ndarray] = []
    sizes: list[tuple[int, int]] = []
    problems: list[dict[str, Any]] = []
    for position, path in enumerate(paths):
        try:
            read, size = _read(path, image, max_pixels)
            pixels.append(read)
            sizes.append(size)
            readable.append(position)
        except _Unreadable as problem:
            problems.append({"path": path, **problem.args[0]})
    for problem in problems:
        logger.warning(
            "cannot predict %s: %s (%s)", problem["path"], problem["reason"], problem["detail"]
        )
    probabilities, boxes = (
        _predict_batches(model, pixels, batch_size)
        if pixels
        else (
            np.zeros((0, len(classes))),
            np.zeros((0, 4)) if box_models.box_layer(model) else None,
        )
    )
    table = _top_k_table([paths[i] for i in readable], probabilities, classes, top_k)
    if boxes is not None:
        table = pd.concat([table, _box_table(boxes, sizes)], axis=1)
    if "label" in images:
        known = images["label"].iloc[readable].to_numpy()
        if pd.notna(known).any():
            table["true_label"] = known
            table["correct"] = np.where(pd.notna(known), table["label"] == known, None)
    logger.info(
        "predicted %d image(s) with %s; %d unreadable",
        len(table),
        model.name,
        len(problems),
    )
    return table, pd.DataFrame(problems, columns=UNREADABLE_COLUMNS)


def model_image_settings(model: keras.Model) -> dict[str, Any]:
    """The ``image`` settings a model takes, from its input shape ``(batch, height, width,
    channels)``: ``{"size": [height, width], "color_mode": "grayscale" | "rgb"}``."""
    _, height, width, channels = model.input_shape
    return {"size": [height, width], "color_mode": "grayscale" if channels == 1 else "rgb"}


class _Unreadable(Exception):
    """Raised with ``{"reason": ..., "detail": ...}`` for a file that cannot be predicted."""


def _read(
    path: str, image: Mapping[str, Any], max_pixels: int
) -> tuple[np.ndarray, tuple[int, int]]:
    """The image's pixels as in training, decoded once, and the file's width and height.
    Its size is read from the header first, so a decompression bomb is refused before
    decoding. A file that fails is inspected again to word the reason as ingest does."""
    try:
        with open_binary(path) as file, Image.open(file) as header:
            width, height = header.size
        if width * height <= max_pixels:
            pixels = read_image(path, color_mode=image["color_mode"], size=image["size"])
            return pixels, (width, height)
    except (OSError, ValueError, SyntaxError, EOFError) as error:
        failure = f"decoding failed: {error}"
    else:
        failure = f"{width}x{height} pixels is over max_pixels = {max_pixels:,}"
    result = inspect_image(path, max_pixels)
    raise _Unreadable(
        {
            "reason": result["reason"] or "corrupt or truncated",
            "detail": result["detail"] or failure,
        }
    )


def _predict_batches(
    model: keras.Model, pixels: list[np.ndarray], batch_size: int
) -> tuple[np.ndarray, np.ndarray | None]:
    probabilities, boxes = [], []
    batches = range(0, len(pixels), batch_size)
    for number, start in enumerate(batches, 1):
        batch = np.stack(pixels[start : start + batch_size]).astype(np.float32)
        batch_probabilities, batch_boxes = split_outputs(model.predict_on_batch(batch))
        probabilities.append(batch_probabilities)
        boxes.append(batch_boxes)
        if number % PROGRESS_EVERY == 0 or number == len(batches):
            logger.info("predicted batch %d of %d", number, len(batches))
    return np.concatenate(probabilities), None if boxes[0] is None else np.concatenate(boxes)


def _box_table(boxes: np.ndarray, sizes: list[tuple[int, int]]) -> pd.DataFrame:
    """The predicted boxes as fractions and in pixels of each file (width, height)."""
    table = pd.DataFrame(boxes, columns=BOX_COLUMNS)
    scale = np.asarray([[w, h, w, h] for w, h in sizes], np.float64).reshape(-1, 4)
    pixels = pd.DataFrame((boxes * scale).round(1), columns=[f"{c}_px" for c in BOX_COLUMNS])
    return pd.concat([table, pixels], axis=1)


def _top_k_table(
    paths: list[str], probabilities: np.ndarray, classes: Sequence[str], top_k: int
) -> pd.DataFrame:
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    names = np.asarray(classes, dtype=object)
    table = pd.DataFrame({"path": paths})
    for rank in range(top_k):
        suffix = "" if rank == 0 else f"_{rank + 1}"
        table[f"label{suffix}"] = names[order[:, rank]]
        table[f"confidence{suffix}"] = np.take_along_axis(
            probabilities, order[:, rank : rank + 1], axis=1
        )[:, 0]
    return table
