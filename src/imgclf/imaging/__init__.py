"""Image decoding, augmentation and ``tf.data`` input pipelines.

Modules:

* :mod:`imgclf.imaging.decode`: ``read_image`` turns any image file (local
  path or fsspec URL) into a canonical uint8 array. No TensorFlow import.
* :mod:`imgclf.imaging.augment`: ``parse_augmentation`` validates an
  augmentation dict; ``augment_batch`` applies seeded per-image random
  augmentation to float32 batches.
* :mod:`imgclf.imaging.dataset`: ``make_dataset`` builds the batched
  ``tf.data`` pipeline from an index DataFrame (path, label).

The names below are exported lazily, so ``import imgclf.imaging.decode`` (or
``from imgclf.imaging import read_image``) does not import TensorFlow.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "COLOR_MODE_CHANNELS": "decode",
    "channels_for": "decode",
    "image_shape": "decode",
    "read_image": "decode",
    "size_tuple": "decode",
    "AugmentationConfig": "augment",
    "VALID_KEYS": "augment",
    "augment_batch": "augment",
    "parse_augmentation": "augment",
    "labels_to_ids": "dataset",
    "make_dataset": "dataset",
}

__all__ = [
    "COLOR_MODE_CHANNELS",
    "VALID_KEYS",
    "AugmentationConfig",
    "augment_batch",
    "channels_for",
    "image_shape",
    "labels_to_ids",
    "make_dataset",
    "parse_augmentation",
    "read_image",
    "size_tuple",
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
