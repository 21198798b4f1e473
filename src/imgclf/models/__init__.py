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

import importlib
from typing import Any

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


def __getattr__(name: str) -> Any:
    """Import the exporting module on first access to one of its names."""
    module_name = _EXPORTS.get(name)
    if module_name is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module_name}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
