"""Keras models for image classification, built from plain (Kedro parameter) dicts.

Modules:

* :mod:`imgclf.models.cnn`: ``build_cnn`` builds a plain convolutional network
  (Conv2D blocks, then a dense head) that takes raw [0, 255] pixels;
  ``parse_architecture`` validates its architecture dict and
  ``minimum_input_size`` gives the smallest input side it can take.
* :mod:`imgclf.models.conv`: convolution blocks (the CNN's and a head's), parsed and
  checked to fit their input.
* :mod:`imgclf.models.head`: the head every family shares and its ``output`` (a class,
  or a class and a box: :mod:`imgclf.models.boxes`, with the box loss and IoU metric).
* :mod:`imgclf.models.backbones`: any ``keras.applications`` model by name, its
  preprocessing, and where to cut it; :mod:`imgclf.models.transfer` puts a head on it
  and unfreezes it for fine-tuning.
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
