"""Build a ``tf.data`` input pipeline from an image index.

An index is a pandas DataFrame with at least the columns ``path`` (a local path
or fsspec URL) and ``label`` (a class name), one row per valid image. An evaluation
pipeline is::

    (path, label id) -> parallel decode + resize (read_image, order kept)
      -> cache -> batch -> uint8 to float32 -> prefetch

and a training pipeline is a stream of epochs ``first_epoch .. epochs - 1``, each::

    cached images -> shuffle (seeded by seed and epoch) -> batch -> uint8 to float32
      -> augment (each batch seeded by seed, epoch and batch number)

tf.data's autotuner is on only when TensorFlow sees a GPU (see ``_options``).

Images are cached as uint8 (a quarter of the float32 size) and converted to
float32 per batch. With ``cache=False`` a training pipeline shuffles the
(path, label) pairs before decoding instead, so that the shuffle buffer holds
file names rather than decoded images.

Randomness (shuffle order and augmentation) is a function of ``seed`` and the epoch
number alone, unless a TensorFlow global seed is set (``tf.random.set_seed`` /
``keras.utils.set_random_seed``), in which case it depends on both. So epoch ``k`` is the
same whether the stream starts at epoch 0 or at ``k`` (a resumed fit), and every epoch
gets its own order and augmentation.
"""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from imgclf.datasets.image_directory import BOX_COLUMNS
from imgclf.imaging.augment import AugmentationConfig, augment_batch, parse_augmentation
from imgclf.imaging.decode import channels_for, read_image, size_tuple
from imgclf.imaging.index_files import check_index_files
from imgclf.lazy import lazy_module

tf = lazy_module("tensorflow")

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
    first_epoch: int = 0,
    epochs: int = 1,
    boxes: bool = False,
) -> tf.data.Dataset:
    """Build a batched ``tf.data.Dataset`` of ``(images, labels)`` from an index.

    Args:
        index: DataFrame with columns ``path`` and ``label``.
        classes: class names; a label's id is its position in this sequence.
        image_size: output size, an int (square) or ``(height, width)``.
        color_mode: "rgb" (3 channels) or "grayscale" (1 channel).
        batch_size: images per batch; the last batch may be smaller.
        training: a stream of shuffled, augmented epochs (see ``first_epoch`` and
            ``epochs``). When False, one pass in index order, nothing augmented.
        augmentation: augmentation settings (see
            :func:`imgclf.imaging.augment.parse_augmentation`); validated even
            when ``training`` is False, used only when it is True.
        seed: seed of the shuffle order and the augmentation.
        shuffle_buffer: shuffle buffer size; default the whole index.
        cache: True caches decoded images in memory, a str caches them to that
            file prefix (reused if it already exists: remove it when the index
            changes), False does not cache.
        background: grey level that transparent pixels are composited over.
        first_epoch: training only: the number (from 0) of the stream's first epoch.
        epochs: training only: the stream ends before epoch ``epochs``, so it holds
            ``epochs - first_epoch`` epochs of ``ceil(len(index) / batch_size)`` batches.
        boxes: the labels are ``{"class": ids, "box": boxes}``, the boxes float32
            ``(batch, 4)`` from the index's ``box_x_min`` … ``box_y_max`` (fractions),
            moved with their images by the augmentation.

    Returns:
        A dataset yielding float32 images ``(batch, height, width, channels)``
        with values in [0, 255] and int32 labels ``(batch,)`` (or the dict above).

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

    if training:
        _check_epochs(first_epoch, epochs)

    paths = [str(path) for path in index["path"]]
    decode = functools.partial(
        _decode_element,
        read=functools.partial(
            read_image, color_mode=color_mode, size=(height, width), background=background
        ),
        shape=(height, width, channels),
    )
    targets = {"class": label_ids, "box": index_boxes(index)} if boxes else label_ids
    elements = tf.data.Dataset.from_tensor_slices((paths, targets))
    # Without a cache, shuffle the file names and decode afterwards: the shuffle buffer
    # then holds names, not images.
    decode_after_shuffle = training and cache is False
    if not decode_after_shuffle:
        elements = _cached(_decode(elements, decode), cache)
    if training:
        batches_per_epoch = math.ceil(len(index) / batch_size)
        dataset = epoch_stream(
            elements,
            seed=seed,
            first_epoch=first_epoch,
            epochs=epochs,
            shuffle_buffer=buffer_size,
            batch_size=batch_size,
            before_batching=(lambda shuffled: _decode(shuffled, decode))
            if decode_after_shuffle
            else None,
        )
        dataset = _augment(
            _to_float(dataset),
            augmentation_config,
            seed=seed,
            first_epoch=first_epoch,
            batches_per_epoch=batches_per_epoch,
        )
    else:
        dataset = _to_float(elements.batch(batch_size))
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


def index_boxes(index: pd.DataFrame) -> np.ndarray:
    """The index's boxes, float32 ``(n, 4)``: ``x_min, y_min, x_max, y_max`` as fractions.

    Raises:
        ValueError: if the index has no boxes, or an image has none.
    """
    missing = [column for column in BOX_COLUMNS if column not in index.columns]
    if missing:
        raise ValueError(
            "this variant predicts boxes, but the image index has none: give raw_images a "
            "`boxes` table in conf/<env>/catalog.yml (docs/datasets.md) and run ingest again"
        )
    values = index[BOX_COLUMNS].to_numpy(dtype=np.float32)
    if not np.isfinite(values).all():
        raise ValueError("some images of the index have no box; run ingest again")
    return values


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


def epoch_stream(
    elements: tf.data.Dataset,
    *,
    seed: int,
    first_epoch: int,
    epochs: int,
    shuffle_buffer: int,
    batch_size: int,
    before_batching: Callable[[tf.data.Dataset], tf.data.Dataset] | None = None,
) -> tf.data.Dataset:
    """Batches of epochs ``first_epoch .. epochs - 1`` of ``elements``, one epoch after
    the other, each shuffled with the seed :func:`epoch_seed` ``(seed, epoch)`` and batched
    on its own (``before_batching`` is applied to the shuffled elements first, e.g. to
    decode them).

    Epoch ``k`` is therefore the same in every stream that holds it: a fit resumed at epoch
    ``k`` sees what the uninterrupted fit saw. Give Keras' ``fit``
    ``steps_per_epoch=ceil(len(elements) / batch_size)`` and ``initial_epoch=first_epoch``.
    """
    _check_epochs(first_epoch, epochs)

    def one_epoch(epoch: int) -> tf.data.Dataset:
        shuffled = elements.shuffle(
            shuffle_buffer, seed=epoch_seed(seed, epoch), reshuffle_each_iteration=False
        )
        if before_batching is not None:
            shuffled = before_batching(shuffled)
        return shuffled.batch(batch_size)

    def epochs_from(first: int, stop: int) -> tf.data.Dataset:
        # A balanced tree of concatenations: each epoch's iterator (and so its read of a
        # cache) starts only when the epoch before it has ended.
        if stop - first == 1:
            return one_epoch(first)
        middle = (first + stop) // 2
        return epochs_from(first, middle).concatenate(epochs_from(middle, stop))

    return epochs_from(first_epoch, epochs)


def epoch_seed(seed: int, epoch: int) -> int:
    """The seed of epoch ``epoch`` (from 0) of a stream seeded ``seed``."""
    return seed * _EPOCH_SEED_STRIDE + epoch


# Epoch seeds of different seeds never meet for runs of fewer epochs than this.
_EPOCH_SEED_STRIDE = 1_000_003


def _check_epochs(first_epoch: object, epochs: object) -> None:
    _check_positive_int(epochs, "epochs")
    if isinstance(first_epoch, bool) or not isinstance(first_epoch, int | np.integer):
        raise ValueError(f"first_epoch must be an int; got {first_epoch!r}")
    if not 0 <= first_epoch < epochs:
        raise ValueError(f"first_epoch must be in [0, epochs={epochs}); got {first_epoch}")


def _decode(elements: tf.data.Dataset, decode: Callable) -> tf.data.Dataset:
    return elements.map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)


def _to_float(batches: tf.data.Dataset) -> tf.data.Dataset:
    return batches.map(
        lambda images, labels: (tf.cast(images, tf.float32), labels),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def _augment(
    batches: tf.data.Dataset,
    config: AugmentationConfig,
    *,
    seed: int,
    first_epoch: int,
    batches_per_epoch: int,
) -> tf.data.Dataset:
    """Augment batch ``b`` of epoch ``e`` with the seed ``[epoch_seed(seed, e), b]``."""
    if config.is_identity:
        return batches
    numbers = tf.data.Dataset.range(first_epoch * batches_per_epoch, tf.int64.max)

    def augment(batch: tuple[tf.Tensor, Any], number: tf.Tensor):
        images, labels = batch
        epoch, batch_in_epoch = number // batches_per_epoch, number % batches_per_epoch
        batch_seed = tf.stack([epoch_seed(seed, epoch), batch_in_epoch])
        if isinstance(labels, dict):
            images, moved = augment_batch(images, batch_seed, config, labels["box"])
            return images, {**labels, "box": moved}
        return augment_batch(images, batch_seed, config), labels

    return tf.data.Dataset.zip(batches, numbers).map(
        augment, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
    )
