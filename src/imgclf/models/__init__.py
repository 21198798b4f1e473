"""Keras models for image classification, built from plain (Kedro parameter) dicts.

Modules:

* :mod:`imgclf.models.cnn`: ``build_cnn`` builds a plain convolutional network
  (Conv2D blocks, then a dense head) that takes raw [0, 255] pixels;
  ``parse_architecture`` validates its architecture dict and
  ``minimum_input_size`` gives the smallest input side it can take.
* :mod:`imgclf.models.summary`: ``count_parameters`` counts a model's total,
  trainable and non-trainable parameters. No TensorFlow import.

The names below are exported lazily, so ``import imgclf.models`` does not
import TensorFlow or Keras.
"""

from __future__ import annotations

from imgclf.lazy import lazy_exports

_EXPORTS = {
    "CnnArchitecture": "cnn",
    "build_cnn": "cnn",
    "minimum_input_size": "cnn",
    "parse_architecture": "cnn",
    "count_parameters": "summary",
}

__all__ = [
    "CnnArchitecture",
    "build_cnn",
    "count_parameters",
    "minimum_input_size",
    "parse_architecture",
]


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
