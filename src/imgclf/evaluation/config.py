"""The ``evaluate`` parameter block, validated."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from imgclf.config import block_items
from imgclf.models.checks import fraction, positive_int


@dataclasses.dataclass(frozen=True)
class EvaluationConfig:
    """How models are scored and explained.

    Attributes:
        batch_size: images per prediction batch.
        top_k: the k of each top-k accuracy reported (k below the number of classes).
        gallery_size: images in the misclassified and least-confident galleries.
        least_confident: rows of the least-confident table (smallest margin first).
        grad_cam_images: test images with a Grad-CAM overlay, one class after another.
        grad_cam_layer: the layer Grad-CAM explains, as a path such as
            ``backbone/conv4_block6_out``; None picks the last convolution layer whose
            map is at least ``grad_cam_min_map_size`` pixels high and wide.
        grad_cam_min_map_size: see ``grad_cam_layer``.
        activation_channels: channels shown per activation map (the most active ones).
        tolerance: the leaderboard summary names the quickest model within this much
            test accuracy of the best (0.01 = one point).
    """

    batch_size: int = 64
    top_k: tuple[int, ...] = (3, 5)
    gallery_size: int = 24
    least_confident: int = 20
    grad_cam_images: int = 8
    grad_cam_layer: str | None = None
    grad_cam_min_map_size: int = 4
    activation_channels: int = 16
    tolerance: float = 0.01


VALID_KEYS = tuple(field.name for field in dataclasses.fields(EvaluationConfig))


def parse_evaluation(parameters: Mapping[str, Any] | None) -> EvaluationConfig:
    """An :class:`EvaluationConfig` from the ``evaluate`` parameters (missing keys take
    the defaults).

    Raises:
        ValueError: for unknown keys or bad values.
    """
    parameters = block_items(parameters, EvaluationConfig, "evaluate")
    config = EvaluationConfig(**parameters)
    where = "evaluate"
    for key in (
        "batch_size",
        "gallery_size",
        "least_confident",
        "grad_cam_images",
        "grad_cam_min_map_size",
        "activation_channels",
    ):
        positive_int(getattr(config, key), key, where)
    top_k = config.top_k
    if not isinstance(top_k, list | tuple) or not all(
        isinstance(k, int) and not isinstance(k, bool) and k > 0 for k in top_k
    ):
        raise ValueError(f"{where}: 'top_k' must be a list of positive ints; got {top_k!r}")
    if config.grad_cam_layer is not None and not isinstance(config.grad_cam_layer, str):
        raise ValueError(
            f"{where}: 'grad_cam_layer' must be a layer path such as "
            f"'backbone/conv4_block6_out', or null; got {config.grad_cam_layer!r}"
        )
    fraction(config.tolerance, "tolerance", where)
    return dataclasses.replace(config, top_k=tuple(top_k))
