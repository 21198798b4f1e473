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

from imgclf.lazy import lazy_exports

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


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
