"""Box scores without TensorFlow: intersection over union of ``x_min, y_min, x_max,
y_max`` boxes (fractions of the image), the columns a box model's prediction table adds,
and the test metrics they give."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from imgclf.datasets.image_directory import BOX_COLUMNS

PREDICTED_BOX_COLUMNS = [f"predicted_{column}" for column in BOX_COLUMNS]
IOU_THRESHOLD = 0.5


def box_iou(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """The IoU of each pair of rows of two ``(n, 4)`` arrays of boxes; 0 where the union is
    empty. A box with min > max counts as empty."""
    first, second = np.asarray(first, np.float64), np.asarray(second, np.float64)
    width = np.minimum(first[:, 2], second[:, 2]) - np.maximum(first[:, 0], second[:, 0])
    height = np.minimum(first[:, 3], second[:, 3]) - np.maximum(first[:, 1], second[:, 1])
    intersection = np.clip(width, 0, None) * np.clip(height, 0, None)
    union = _area(first) + _area(second) - intersection
    return np.divide(intersection, union, out=np.zeros_like(union), where=union > 0)


def box_columns(
    index: pd.DataFrame, predicted: np.ndarray, mean_box: np.ndarray | None
) -> pd.DataFrame:
    """A box model's columns of the prediction table: the true box (when the index has
    one), ``predicted_box_x_min`` … , the ``iou`` of the two, and ``mean_box_iou``, the IoU
    of ``mean_box`` (the training images' mean box: what always guessing it scores)."""
    columns = pd.DataFrame(np.asarray(predicted, np.float64), columns=PREDICTED_BOX_COLUMNS)
    if not set(BOX_COLUMNS) <= set(index.columns):
        return columns
    truth = index[BOX_COLUMNS].to_numpy(np.float64)
    columns = pd.concat([pd.DataFrame(truth, columns=BOX_COLUMNS), columns], axis=1)
    columns["iou"] = box_iou(truth, columns[PREDICTED_BOX_COLUMNS].to_numpy())
    if mean_box is not None:
        columns["mean_box_iou"] = box_iou(truth, np.broadcast_to(mean_box, truth.shape))
    return columns


def box_scores(predictions: pd.DataFrame) -> dict[str, Any] | None:
    """``mean_iou``, ``share_iou_at_least_0.5`` and ``mean_box_iou`` (always guessing the
    training images' mean box) of a prediction table with boxes; None without."""
    if "iou" not in predictions:
        return None
    scores = {
        "mean_iou": float(predictions["iou"].mean()),
        f"share_iou_at_least_{IOU_THRESHOLD}": float((predictions["iou"] >= IOU_THRESHOLD).mean()),
    }
    if "mean_box_iou" in predictions:
        scores["mean_box_iou"] = float(predictions["mean_box_iou"].mean())
    return scores


def mean_box(index: pd.DataFrame) -> np.ndarray | None:
    """The mean box of an index's images; None for an index without boxes."""
    if not set(BOX_COLUMNS) <= set(index.columns):
        return None
    return index[BOX_COLUMNS].to_numpy(np.float64).mean(axis=0)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)
