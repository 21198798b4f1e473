"""Size summaries of Keras models, for logs and reports.

:func:`count_parameters` counts a model's weights the way ``model.summary()``
does: trainable weights, and non-trainable ones such as BatchNormalization
moving statistics or the weights of a frozen backbone. Optimizer variables
and random seed states are not parameters and are not counted. Nothing here
imports Keras: any built Keras model can be passed in.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

BYTES_PER_MB = 1024**2


def count_parameters(model: Any) -> dict[str, int]:
    """Count the scalar parameters of a built Keras model.

    A weight shared by several layers is counted once.

    Args:
        model: a built ``keras.Model`` (or layer).

    Returns:
        ``{"total": ..., "trainable": ..., "non_trainable": ...}``, with total
        the sum of the other two.

    Raises:
        ValueError: if ``model`` is not a Keras model or is not built yet (it
            has no weights to count).
    """
    if not hasattr(model, "trainable_weights") or not hasattr(model, "non_trainable_weights"):
        raise ValueError(f"count_parameters needs a Keras model; got {type(model).__name__}")
    if not getattr(model, "built", True):
        raise ValueError(
            f"model {getattr(model, 'name', '')!r} is not built yet: call it on a batch or "
            "build it with an input shape before counting its parameters"
        )
    trainable = _count(model.trainable_weights)
    non_trainable = _count(model.non_trainable_weights)
    return {
        "total": trainable + non_trainable,
        "trainable": trainable,
        "non_trainable": non_trainable,
    }


def _count(weights: Iterable[Any]) -> int:
    unique = {id(weight): weight for weight in weights}
    return sum(math.prod(int(side) for side in weight.shape) for weight in unique.values())
