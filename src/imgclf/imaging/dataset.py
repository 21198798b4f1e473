"""Build a ``tf.data`` input pipeline from an image index.

An index is a pandas DataFrame with at least the columns ``path`` (a local path
or fsspec URL) and ``label`` (a class name), one row per valid image. The
pipeline is::

    (path, label id) -> parallel decode + resize (read_image, order kept)
      -> cache -> [training: shuffle] -> batch -> uint8 to float32
      -> [training: augment with per-batch seeds] -> prefetch

tf.data's autotuner is on only when TensorFlow sees a GPU (see ``_options``).

Images are cached as uint8 (a quarter of the float32 size) and converted to
float32 per batch. With ``cache=False`` a training pipeline shuffles the
(path, label) pairs before decoding instead, so that the shuffle buffer holds
file names rather than decoded images.

Randomness (shuffle order and augmentation) is a function of ``seed`` alone,
unless a TensorFlow global seed is set (``tf.random.set_seed`` /
``keras.utils.set_random_seed``), in which case it depends on both. Each new
iteration over the dataset (each epoch) gets a new, equally reproducible order
and augmentation.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from imgclf.imaging.augment import AugmentationConfig, augment_batch, parse_augmentation
from imgclf.imaging.decode import channels_for, read_image, size_tuple
from imgclf.imaging.index_files import check_index_files

logger = logging.getLogger(__name__)

REQUIRED_COLUMNS = ("path", "label")


def labels_to_ids(labels: Iterable[str], classes: Sequence[str]) -> np.ndarray:
    """Map class names to their positions in ``classes`` as an int32 array.

    Raises:
        ValueError: if ``classes`` is empty or has duplicates, or if a label is
            not in ``classes`` (the message names the unknown labels).
    """
    class_ids = _class_ids(classes)
    labels = list(labels)
    unknown = sorted({str(label) for label in labels if label not in class_ids})
    if unknown:
        shown = ", ".join(repr(label) for label in unknown[:20])
        more = f" and {len(unknown) - 20} more" if len(unknown) > 20 else ""
        raise ValueError(f"labels not in classes: {shown}{more}; classes are {list(classes)}")
    return np.asarray([class_ids[label] for label in labels], dtype=np.int32)


def make_dataset(
    index: pd.DataFrame,
    classes: Sequence[str],
    *,
    image_size: int | Sequence[int],
    color_mode: str = "rgb",
    batch_size: int = 32,
    training: bool = False,
    augmentation: Mapping[str, Any] | AugmentationConfig | None = None,
    seed: int = 0,
    shuffle_buffer: int | None = None,
    cache: bool | str = True,
    background: int = 255,
) -> tf.data.Dataset:
    """Build a batched ``tf.data.Dataset`` of ``(images, labels)`` from an index.

    Args:
        index: DataFrame with columns ``path`` and ``label``.
        classes: class names; a label's id is its position in this sequence.
        image_size: output size, an int (square) or ``(height, width)``.
        color_mode: "rgb" (3 channels) or "grayscale" (1 channel).
        batch_size: images per batch; the last batch may be smaller.
        training: shuffle each epoch and apply ``augmentation``. When False the
            index order is kept and nothing is augmented.
        augmentation: augmentation settings (see
            :func:`imgclf.imaging.augment.parse_augmentation`); validated even
            when ``training`` is False, used only when it is True.
        seed: seed of the shuffle order and the augmentation.
        shuffle_buffer: shuffle buffer size; default the whole index.
        cache: True caches decoded images in memory, a str caches them to that
            file prefix (reused if it already exists: remove it when the index
            changes), False does not cache.
        background: grey level that transparent pixels are composited over.

    Returns:
        A dataset yielding float32 images ``(batch, height, width, channels)``
        with values in [0, 255] and int32 labels ``(batch,)``.

    Raises:
        ValueError: for an empty index, missing columns, labels not in
            ``classes``, invalid arguments, or files missing or changed since ingest
            (:func:`imgclf.imaging.index_files.check_index_files`).
    """
    _check_index(index)
    check_index_files(index)
    label_ids = labels_to_ids(index["label"], classes)
    height, width = size_tuple(image_size)
    channels = channels_for(color_mode)
    _check_positive_int(batch_size, "batch_size")
    _check_seed(seed)
    _check_cache(cache)
    augmentation_config = parse_augmentation(augmentation)
    buffer_size = len(index) if shuffle_buffer is None else shuffle_buffer
    _check_positive_int(buffer_size, "shuffle_buffer")

    paths = [str(path) for path in index["path"]]
    dataset = tf.data.Dataset.from_tensor_slices((paths, label_ids))
    shuffle_paths = training and cache is False
    if shuffle_paths:
        dataset = dataset.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    decode = functools.partial(
        _decode_element,
        read=functools.partial(
            read_image, color_mode=color_mode, size=(height, width), background=background
        ),
        shape=(height, width, channels),
    )
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    dataset = _cached(dataset, cache)
    if training and not shuffle_paths:
        dataset = dataset.shuffle(buffer_size, seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    dataset = _to_float_and_augment(dataset, training, augmentation_config, seed)
    logger.info(
        "Built %s dataset: %d images, %d classes, %dx%dx%d, batch %d, augmentation %s",
        "training" if training else "evaluation",
        len(index),
        len(classes),
        height,
        width,
        channels,
        batch_size,
        "on" if training and not augmentation_config.is_identity else "off",
    )
    return dataset.prefetch(tf.data.AUTOTUNE).with_options(_options())


def _options() -> tf.data.Options:
    """tf.data's autotuner only where a GPU trains: on a CPU it takes cores from training.

    Without the autotuner, ``AUTOTUNE`` parallelism means one call per CPU core. Measured
    by ``benchmarks/train_input.py`` on 2 cores (S0's shallow CNN at 64 px, 1,920 images):
    the median epoch after the first took 2.56 s with the autotuner (some second epochs
    stalled at 4.8 s) and 2.22 s without it.
    """
    options = tf.data.Options()
    options.autotune.enabled = bool(tf.config.list_physical_devices("GPU"))
    return options


def _class_ids(classes: Sequence[str]) -> dict[str, int]:
    if isinstance(classes, str) or len(classes) == 0:
        raise ValueError(f"classes must be a non-empty sequence of class names; got {classes!r}")
    class_ids = {name: position for position, name in enumerate(classes)}
    if len(class_ids) != len(classes):
        duplicates = sorted({str(name) for name in classes if list(classes).count(name) > 1})
        raise ValueError(f"classes must be unique; duplicated: {', '.join(duplicates)}")
    return class_ids


def _check_index(index: pd.DataFrame) -> None:
    if not isinstance(index, pd.DataFrame):
        raise ValueError(f"index must be a pandas DataFrame; got {type(index).__name__}")
    missing = [column for column in REQUIRED_COLUMNS if column not in index.columns]
    if missing:
        raise ValueError(
            f"index is missing column(s) {', '.join(missing)}; it has {list(index.columns)}"
        )
    if index.empty:
        raise ValueError("index is empty: there are no images to build a dataset from")


def _check_positive_int(value: object, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value <= 0:
        raise ValueError(f"{name} must be a positive int; got {value!r}")


def _check_seed(seed: object) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise ValueError(f"seed must be a non-negative int; got {seed!r}")


def _check_cache(cache: object) -> None:
    if not isinstance(cache, bool) and not (isinstance(cache, str) and cache):
        raise ValueError(f"cache must be True, False or a non-empty file prefix; got {cache!r}")


def _decode_element(
    path: tf.Tensor, label: tf.Tensor, *, read: Any, shape: tuple[int, int, int]
) -> tuple[tf.Tensor, tf.Tensor]:
    """Decode one image with Pillow (in a numpy_function) and give it a static shape."""

    def read_path(encoded_path: bytes) -> np.ndarray:
        return read(encoded_path.decode("utf-8"))

    image = tf.numpy_function(read_path, [path], tf.uint8, stateful=False, name="read_image")
    image.set_shape(shape)
    return image, label


def _cached(dataset: tf.data.Dataset, cache: bool | str) -> tf.data.Dataset:
    if cache is True:
        return dataset.cache()
    if isinstance(cache, str):
        if "://" not in cache:
            Path(cache).parent.mkdir(parents=True, exist_ok=True)
        return dataset.cache(cache)
    return dataset


def _to_float_and_augment(
    dataset: tf.data.Dataset, training: bool, config: AugmentationConfig, seed: int
) -> tf.data.Dataset:
    """Convert batches to float32 and, when training, augment them with per-batch seeds."""
    if not training or config.is_identity:
        return dataset.map(
            lambda images, labels: (tf.cast(images, tf.float32), labels),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    batch_seeds = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)

    def augment(batch: tuple[tf.Tensor, tf.Tensor], batch_seed: tf.Tensor):
        images, labels = batch
        return augment_batch(tf.cast(images, tf.float32), batch_seed, config), labels

    return tf.data.Dataset.zip(dataset, batch_seeds).map(
        augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
