"""A model's predictions on an image index, as a table: one row per image with its true
label, the predicted label, the confidence, the margin over the runner-up and the
probability of every class (columns ``p:<class>``)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgclf.evaluation.boxes import box_columns
from imgclf.imaging.dataset import labels_to_ids, make_dataset
from imgclf.lazy import lazy_module

box_models = lazy_module("imgclf.models.boxes")
keras = lazy_module("keras")

logger = logging.getLogger(__name__)

PROBABILITY_PREFIX = "p:"


def predict_index(
    model: keras.Model,
    index: pd.DataFrame,
    classes: Sequence[str],
    *,
    image: Mapping[str, Any],
    batch_size: int,
) -> np.ndarray:
    """Class probabilities ``(len(index), len(classes))`` of ``model`` on the images of
    ``index`` (decoded and resized as in training, in index order).

    Raises:
        ValueError: if the model's output does not have one unit per class.
    """
    return predict_outputs(model, index, classes, image=image, batch_size=batch_size)[0]


def predict_outputs(
    model: keras.Model,
    index: pd.DataFrame,
    classes: Sequence[str],
    *,
    image: Mapping[str, Any],
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`predict_index`'s probabilities, and the boxes ``(len(index), 4)`` of a model
    with a box output (else None), from one pass over the images."""
    check_output_classes(model, classes)
    dataset = make_dataset(
        index,
        classes,
        image_size=image["size"],
        color_mode=image["color_mode"],
        batch_size=batch_size,
        cache=False,
    )
    outputs = model.predict(dataset.map(lambda images, labels: images), verbose=0)
    return split_outputs(outputs)


def split_outputs(outputs: np.ndarray | Mapping[str, np.ndarray]) -> tuple[np.ndarray, Any]:
    """A model's outputs as ``(class probabilities, boxes or None)``; see
    :func:`class_probabilities`."""
    if isinstance(outputs, Mapping):
        return class_probabilities(outputs["class"]), np.asarray(outputs["box"], np.float64)
    return class_probabilities(outputs), None


def class_probabilities(outputs: np.ndarray) -> np.ndarray:
    """A model's outputs as one probability per class: a single sigmoid unit ``p`` (two
    classes) becomes ``[1 - p, p]``."""
    outputs = np.asarray(outputs, dtype=np.float64)
    return np.concatenate([1 - outputs, outputs], axis=1) if outputs.shape[1] == 1 else outputs


def check_output_classes(model: keras.Model, classes: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``model`` outputs one probability per class (or a
    single sigmoid unit for two classes)."""
    units = box_models.class_units(model)
    if units != len(classes) and not (units == 1 and len(classes) == 2):
        raise ValueError(
            f"model {model.name!r} outputs {units} class probabilities but `classes` has "
            f"{len(classes)} classes ({', '.join(map(str, classes[:12]))}"
            f"{', ...' if len(classes) > 12 else ''}): was it trained on another data set or "
            "split? Re-train it, or point `classes` at the classes it was trained with"
        )


def prediction_table(
    index: pd.DataFrame,
    probabilities: np.ndarray,
    classes: Sequence[str],
    boxes: np.ndarray | None = None,
    mean_box: np.ndarray | None = None,
) -> pd.DataFrame:
    """``path``, ``label`` (true, when ``index`` has one), ``predicted``, ``confidence``,
    ``margin`` (top-1 minus top-2 probability), ``correct`` (with a label), then
    ``p:<class>`` for every class; with predicted ``boxes``, the box columns of
    :func:`imgclf.evaluation.boxes.box_columns`."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    order = np.argsort(-probabilities, axis=1, kind="stable")
    rows = np.arange(len(probabilities))
    top = probabilities[rows, order[:, 0]]
    runner_up = probabilities[rows, order[:, 1]] if len(classes) > 1 else np.zeros(len(rows))
    table = pd.DataFrame({"path": index["path"].astype(str).to_numpy()})
    if "label" in index:
        table["label"] = index["label"].astype(str).to_numpy()
    table["predicted"] = np.asarray(classes, dtype=object)[order[:, 0]]
    table["confidence"] = top
    table["margin"] = top - runner_up
    if "label" in index:
        table["correct"] = table["label"] == table["predicted"]
    for i, name in enumerate(classes):
        table[f"{PROBABILITY_PREFIX}{name}"] = probabilities[:, i]
    if boxes is not None:
        table = pd.concat(
            [table, box_columns(index.reset_index(drop=True), boxes, mean_box)], axis=1
        )
    return table


def table_probabilities(
    table: pd.DataFrame, classes: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The probabilities and true class ids stored in a :func:`prediction_table`.

    Raises:
        ValueError: if a class's probability column is missing or a label is not a class.
    """
    columns = [f"{PROBABILITY_PREFIX}{name}" for name in classes]
    missing = [column for column in columns if column not in table]
    if missing:
        raise ValueError(
            f"the prediction table has no column {missing[0]!r}: it was made with other "
            "classes than the ones given"
        )
    return table[columns].to_numpy(dtype=np.float64), labels_to_ids(table["label"], classes)
