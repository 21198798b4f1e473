"""Compile and fit a Keras image classifier on an image index, resumably.

:func:`train_model` is the fit loop every training pipeline shares: it builds
the ``tf.data`` pipelines from the split indexes, compiles the model with the
configured optimizer and schedule (the loss follows the model's head),
weights classes, adds the configured callbacks and returns the trained model
with its history. With a backup folder, every finished epoch is checkpointed
(:mod:`imgclf.training.checkpoint`) and a fit that is killed resumes after its
last finished epoch when it is run again with the same inputs, as if it had not
been stopped; the folder is removed once training ends. With
``training.restore_best`` the model ends on its best epoch's weights.

Call :func:`set_seeds` before building the model, so that weight
initialisation and dropout repeat; shuffling and augmentation follow the
``seed`` given to :func:`train_model` and the epoch number.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import logging
import math
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from imgclf.imaging.augment import check_box_augmentation
from imgclf.imaging.dataset import epoch_stream, index_boxes, labels_to_ids, make_dataset
from imgclf.imaging.decode import image_shape
from imgclf.models.boxes import BoxIoU, box_layer, box_loss, class_units
from imgclf.models.summary import BYTES_PER_MB, count_parameters
from imgclf.training.callbacks import (
    BestEpoch,
    ClassMetricNames,
    EpochLog,
    callback_counters,
    lower_is_better,
    restore_callback_counters,
)
from imgclf.training.checkpoint import (
    Checkpoint,
    Checkpointer,
    best_variables,
    resume_point,
)
from imgclf.training.config import TrainingConfig, parse_training_config

logger = logging.getLogger(__name__)


def set_seeds(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow (weight initialisation, dropout)."""
    keras.utils.set_random_seed(seed)


def build_optimizer(training: TrainingConfig, steps_per_epoch: int) -> keras.optimizers.Optimizer:
    """The configured optimizer, its learning rate following the configured schedule."""
    settings = training.optimizer
    schedule = training.schedule
    learning_rate: float | keras.optimizers.schedules.LearningRateSchedule
    if schedule.name == "exponential":
        learning_rate = keras.optimizers.schedules.ExponentialDecay(
            settings.learning_rate,
            decay_steps=max(1, round(schedule.decay_epochs * steps_per_epoch)),
            decay_rate=schedule.decay_rate,
        )
    elif schedule.name == "cosine":
        learning_rate = keras.optimizers.schedules.CosineDecay(
            settings.learning_rate,
            decay_steps=max(1, training.epochs * steps_per_epoch),
            alpha=schedule.alpha,
        )
    else:
        learning_rate = settings.learning_rate
    if settings.name == "sgd":
        return keras.optimizers.SGD(
            learning_rate, momentum=settings.momentum, nesterov=settings.nesterov
        )
    if settings.name == "rmsprop":
        return keras.optimizers.RMSprop(learning_rate, momentum=settings.momentum)
    return keras.optimizers.Adam(learning_rate)


def compile_model(
    model: keras.Model, training: TrainingConfig, num_classes: int, steps_per_epoch: int
) -> None:
    """Compile with the configured optimizer; the loss follows the head.

    A softmax head with one unit per class gets sparse categorical
    cross-entropy; a single sigmoid unit (two classes, as the seed's S1) gets
    binary cross-entropy. Both report ``accuracy``. A model with a box output adds its
    weighted box loss and reports the box's mean IoU (see :mod:`imgclf.models.boxes`).

    Raises:
        ValueError: if the head's units do not match the number of classes.
    """
    boxes = box_layer(model)
    units = class_units(model)
    if units == 1 and num_classes == 2:
        loss: keras.losses.Loss = keras.losses.BinaryCrossentropy()
        accuracy: keras.metrics.Metric = keras.metrics.BinaryAccuracy(name="accuracy")
    elif units == num_classes:
        loss = keras.losses.SparseCategoricalCrossentropy()
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
    else:
        raise ValueError(
            f"the model's head has {units} output unit(s) but there are {num_classes} classes: "
            "a softmax head needs one unit per class (a sigmoid head one unit for 2 classes)"
        )
    optimizer = build_optimizer(training, steps_per_epoch)
    if boxes is None:
        model.compile(
            optimizer=optimizer, loss=loss, metrics=[accuracy], jit_compile=training.jit_compile
        )
        return
    box, weight = box_loss(boxes)
    model.compile(
        optimizer=optimizer,
        loss={"class": loss, "box": box},
        loss_weights={"class": 1.0, "box": weight},
        metrics={"class": [accuracy], "box": [BoxIoU(name="iou")]},
        jit_compile=training.jit_compile,
    )


@dataclasses.dataclass(frozen=True)
class ArraySplit:
    """Model inputs computed beforehand (e.g. a frozen backbone's features), one row per
    image, with their class ids: what :func:`train_model` takes instead of an image index."""

    inputs: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if len(self.inputs) != len(self.labels) or len(self.inputs) == 0:
            raise ValueError(
                f"an ArraySplit needs as many labels as inputs, at least one; got "
                f"{len(self.inputs)} inputs and {len(self.labels)} labels"
            )

    def __len__(self) -> int:
        return len(self.labels)


Split = pd.DataFrame | ArraySplit
"""An image index (``path``, ``label``) or precomputed inputs."""


def balanced_class_weights(train: Split, classes: Sequence[str]) -> dict[int, float]:
    """``n_images / (n_classes * n_images_of_class)`` per class id, as scikit-learn's
    "balanced"; a class with no training images gets weight 1."""
    counts = np.bincount(_label_ids(train, classes), minlength=len(classes))
    present = counts > 0
    weights = np.ones(len(classes))
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return {class_id: float(weight) for class_id, weight in enumerate(weights)}


def train_model(
    model: keras.Model,
    train_index: Split,
    val_index: Split,
    classes: Sequence[str],
    *,
    image: Mapping[str, Any] | None,
    training: TrainingConfig | Mapping[str, Any],
    seed: int,
    backup_dir: str | Path | None = None,
    fingerprint: Any = None,
    extra_callbacks: Sequence[keras.callbacks.Callback] = (),
    tensorboard_dir: str | Path | None = None,
) -> tuple[keras.Model, dict[str, Any]]:
    """Compile and fit ``model`` on the train index, validating on the val index.

    Args:
        model: an uncompiled (or to be recompiled) Keras model taking raw pixels.
        train_index: DataFrame with ``path`` and ``label`` of the training images, or
            an :class:`ArraySplit` of precomputed inputs (which cannot be augmented).
        val_index: the same for the validation images.
        classes: class names; a label's id is its position here.
        image: ``{"size": ..., "color_mode": ...}``, the project's ``image`` parameters
            (unused for ArraySplits).
        training: a ``training`` block (see :mod:`imgclf.training.config`).
        seed: seed of the shuffle order and the augmentation.
        backup_dir: the run's checkpoint folder when ``training.callbacks.
            backup_and_restore`` is on; None trains without checkpoints.
        fingerprint: anything JSON-serialisable that identifies the run's
            settings (e.g. the model's parameters). Checkpoints made with other
            settings, data, seed or starting weights are discarded, not resumed.
        extra_callbacks: more callbacks (e.g. an Optuna pruning callback).
        tensorboard_dir: the folder of this run's TensorBoard logs (``train/`` and
            ``validation/``, per epoch) when ``training.callbacks.tensorboard`` is on;
            None writes none.

    Returns:
        The trained model (with its best epoch's weights when
        ``training.restore_best``) and its history (see :func:`summarise_history`),
        plus ``classes`` (what the model's outputs mean) and ``wall_seconds_this_run``.

    Raises:
        ValueError: for a bad ``training`` block, an image shape that does not
            match the model's input, or a head that does not match ``classes``.
        OSError: when a checkpoint cannot be written (a full disk, a read-only
            folder); the message names the file (see :mod:`imgclf.atomic`).
    """
    training = parse_training_config(training)
    if training.deterministic:
        # Bit-identical repeats at some speed cost; once on, on for the rest of the process.
        tf.config.experimental.enable_op_determinism()
    _check_inputs(model, train_index, val_index, image, training)
    boxes = box_layer(model) is not None
    if boxes:
        _check_box_training(train_index, val_index, training)
    steps_per_epoch = math.ceil(len(train_index) / training.batch_size)
    compile_model(model, training, len(classes), steps_per_epoch)
    folder = (
        Path(backup_dir)
        if backup_dir is not None and training.callbacks.backup_and_restore
        else None
    )
    run = checkpoint = None
    if folder is not None:
        run = _run_fingerprint(
            {
                "settings": fingerprint,
                "training": dataclasses.asdict(training),
                "seed": seed,
                "train": split_digest(train_index),
                "val": split_digest(val_index),
                "starting_weights": weights_digest(model),
            }
        )
        checkpoint = resume_point(folder, run, model)
    first_epoch = checkpoint.epochs_done if checkpoint else 0
    verbose = keras_verbosity(training.verbose)
    epoch_log = EpochLog(
        training.epochs, checkpoint.state["rows"] if checkpoint else (), log_lines=verbose == 0
    )
    best = BestEpoch(training.monitor, keep_weights=training.restore_best)
    configured = _configured_callbacks(training)
    callbacks = [*([ClassMetricNames()] if boxes else []), epoch_log, *configured, *extra_callbacks]
    if training.callbacks.tensorboard and tensorboard_dir is not None:
        callbacks.append(keras.callbacks.TensorBoard(str(tensorboard_dir)))
    callbacks.append(best)
    if checkpoint is not None:
        _resume(checkpoint, folder, model, best, restore_best=training.restore_best)
    if folder is not None:
        # Last: an epoch's checkpoint holds what every other callback changed.
        callbacks.append(
            _checkpointer(
                folder,
                run,
                checkpoint=checkpoint,
                epoch_log=epoch_log,
                best=best,
                configured=configured,
            )
        )
    class_weight = balanced_class_weights(train_index, classes) if training.class_weight else None
    started = time.perf_counter()
    if checkpoint is not None and (first_epoch >= training.epochs or checkpoint.state["stopped"]):
        logger.info("%s had finished training before it was stopped", model.name)
    else:
        logger.info(
            "Training %s (%s trainable parameters) for %d epochs on %d images, validating on %d",
            model.name,
            f"{count_parameters(model)['trainable']:,}",
            training.epochs,
            len(train_index),
            len(val_index),
        )
        model.fit(
            _dataset(
                train_index, classes, image, training, seed,
                is_training=True, first_epoch=first_epoch, boxes=boxes,
            ),
            validation_data=_dataset(
                val_index, classes, image, training, seed, is_training=False, boxes=boxes
            ),
            epochs=training.epochs,
            initial_epoch=first_epoch,
            steps_per_epoch=steps_per_epoch,
            class_weight=class_weight,
            callbacks=callbacks,
            verbose=verbose,
            shuffle=False,  # the training stream shuffles each epoch, seeded
        )  # fmt: skip
    rows = epoch_log.rows
    weights_from_epoch = rows[-1]["epoch"] if rows else None
    if training.restore_best and best.restore(model):
        weights_from_epoch = best.epoch
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)
    history = summarise_history(
        model,
        rows,
        monitor=training.monitor,
        planned_epochs=training.epochs,
        resumed_at_epoch=first_epoch,
        weights_from_epoch=weights_from_epoch,
    )
    history["classes"] = list(classes)
    history["wall_seconds_this_run"] = round(time.perf_counter() - started, 3)
    return model, history


def _resume(
    checkpoint: Checkpoint, folder: Path, model: keras.Model, best: BestEpoch, *, restore_best: bool
) -> None:
    """Put the checkpoint's model and optimizer state back, and its best epoch."""
    checkpoint.restore(model)
    best.epoch, best.value = checkpoint.state["best_epoch"], checkpoint.state["best_value"]
    if restore_best:
        best.variables = best_variables(checkpoint, folder, model)
        if best.variables is None:
            best.epoch = best.value = None


def _checkpointer(
    folder: Path,
    run: str,
    *,
    checkpoint: Checkpoint | None,
    epoch_log: EpochLog,
    best: BestEpoch,
    configured: list[keras.callbacks.Callback],
) -> Checkpointer:
    """The callback that checkpoints each epoch of run ``run`` (and, resuming from
    ``checkpoint``, gives the configured callbacks their counters back)."""
    return Checkpointer(
        folder,
        lambda: {
            "fingerprint": run,
            "rows": epoch_log.rows,
            "callbacks": callback_counters(configured),
            "best_epoch": best.epoch,
            "best_value": best.value,
        },
        on_resume=(
            functools.partial(restore_callback_counters, configured, checkpoint.state["callbacks"])
            if checkpoint is not None
            else None
        ),
        keep_best=best.keep_weights,
    )


def summarise_history(
    model: keras.Model,
    rows: list[dict[str, Any]],
    *,
    monitor: str,
    planned_epochs: int,
    resumed_at_epoch: int = 0,
    weights_from_epoch: int | None = None,
) -> dict[str, Any]:
    """The history a training pipeline saves (see :mod:`imgclf.training.summary`).

    Keys: ``epochs`` (one row per epoch: epoch, loss, accuracy, val_loss,
    val_accuracy, learning_rate, seconds), ``epochs_run``, ``planned_epochs``,
    ``stopped_early``, ``monitor``, ``best_epoch`` and ``best_value`` (by
    ``monitor``: lowest for a loss, highest otherwise), ``total_seconds`` and
    ``seconds_per_epoch`` (over every epoch, resumed ones included),
    ``resumed_at_epoch`` (0 for a fresh run), ``weights_from_epoch`` (the epoch whose
    weights the model ends with: the best one with ``training.restore_best``, else the
    last), ``parameters`` (total,
    trainable, non_trainable) and ``model_size_mb`` (weights, MiB).
    """
    best_epoch, best_value = _best_epoch(rows, monitor)
    total_seconds = sum(row["seconds"] for row in rows)
    return {
        "epochs": rows,
        "epochs_run": len(rows),
        "planned_epochs": planned_epochs,
        "stopped_early": len(rows) < planned_epochs,
        "monitor": monitor,
        "best_epoch": best_epoch,
        "best_value": best_value,
        "total_seconds": round(total_seconds, 3),
        "seconds_per_epoch": round(total_seconds / len(rows), 3) if rows else None,
        "resumed_at_epoch": resumed_at_epoch,
        "weights_from_epoch": weights_from_epoch,
        "parameters": count_parameters(model),
        "model_size_mb": round(weights_bytes(model) / BYTES_PER_MB, 3),
    }


def weights_bytes(model: keras.Model) -> int:
    """Bytes of all the model's weights."""
    return sum(
        int(np.prod(weight.shape)) * np.dtype(weight.dtype).itemsize for weight in model.weights
    )


def _best_epoch(rows: list[dict[str, Any]], monitor: str) -> tuple[int | None, float | None]:
    scored = [row for row in rows if row.get(monitor) is not None]
    if not scored:
        if rows:
            logger.warning("metric %r was not logged; no best epoch is reported", monitor)
        return None, None
    choose = min if lower_is_better(monitor) else max
    best = choose(scored, key=lambda row: row[monitor])
    return best["epoch"], best[monitor]


def _check_inputs(
    model: keras.Model,
    train: Split,
    val: Split,
    image: Mapping[str, Any] | None,
    training: TrainingConfig,
) -> None:
    actual = tuple(model.input_shape[1:])
    if isinstance(train, ArraySplit) or isinstance(val, ArraySplit):
        if not (isinstance(train, ArraySplit) and isinstance(val, ArraySplit)):
            raise ValueError("train and val must both be image indexes or both ArraySplits")
        if not training.augmentation.is_identity:
            raise ValueError(
                "precomputed inputs (ArraySplit) cannot be augmented: set training.augmentation "
                "to {} or train on images"
            )
        for name, split in (("train", train), ("val", val)):
            if tuple(split.inputs.shape[1:]) != actual:
                raise ValueError(
                    f"the model takes inputs of shape {actual} but the {name} inputs have shape "
                    f"{tuple(split.inputs.shape[1:])}"
                )
        return
    if image is None:
        raise ValueError("training on image indexes needs the image parameters (size, color_mode)")
    expected = image_shape(image["size"], image["color_mode"])
    if actual != expected:
        raise ValueError(
            f"the model takes images of shape {actual} but the image parameters give {expected} "
            f"(image.size={image['size']!r}, image.color_mode={image['color_mode']!r})"
        )


def _dataset(
    split: Split,
    classes: Sequence[str],
    image: Mapping[str, Any] | None,
    training: TrainingConfig,
    seed: int,
    *,
    is_training: bool,
    first_epoch: int = 0,
    boxes: bool = False,
) -> tf.data.Dataset:
    """The validation pass, or the training stream of epochs ``first_epoch ..``; with
    ``boxes``, each image's labels are its class and its box."""
    if isinstance(split, ArraySplit):
        elements = tf.data.Dataset.from_tensor_slices((split.inputs, split.labels.astype(np.int32)))
        if not is_training:
            return elements.batch(training.batch_size).prefetch(tf.data.AUTOTUNE)
        return epoch_stream(
            elements,
            seed=seed,
            first_epoch=first_epoch,
            epochs=training.epochs,
            shuffle_buffer=len(split),
            batch_size=training.batch_size,
        ).prefetch(tf.data.AUTOTUNE)
    return make_dataset(
        split,
        classes,
        image_size=image["size"],
        color_mode=image["color_mode"],
        batch_size=training.batch_size,
        training=is_training,
        augmentation=training.augmentation,
        seed=seed,
        cache=training.cache,
        first_epoch=first_epoch,
        epochs=training.epochs,
        boxes=boxes,
    )


def check_box_training(training: TrainingConfig | Mapping[str, Any], where: str) -> None:
    """Raise ``ValueError`` (naming ``where`` and the setting) for what a model with a box
    output cannot train with: rotation or shear, balanced class weights."""
    training = parse_training_config(training)
    check_box_augmentation(training.augmentation, where)
    if training.class_weight:
        raise ValueError(
            f"{where}: training.class_weight: balanced is not available with a box output "
            "(Keras weighs classes only for single-output models); set it to null"
        )


def _check_box_training(train: Split, val: Split, training: TrainingConfig) -> None:
    """Before compiling: a box model trains on image indexes that have boxes."""
    if isinstance(train, ArraySplit):
        raise ValueError("a model with a box output trains on images, not on ArraySplits")
    check_box_training(training, "training")
    for split in (train, val):
        index_boxes(split)  # raises, naming the fix, for an index without boxes


def _label_ids(split: Split, classes: Sequence[str]) -> np.ndarray:
    if isinstance(split, ArraySplit):
        return np.asarray(split.labels, dtype=np.int64)
    return labels_to_ids(split["label"], classes)


def _configured_callbacks(training: TrainingConfig) -> list[keras.callbacks.Callback]:
    callbacks: list[keras.callbacks.Callback] = []
    early = training.callbacks.early_stopping
    if early is not None:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor=early.monitor,
                mode=early.mode,
                patience=early.patience,
                min_delta=early.min_delta,
            )
        )
    plateau = training.callbacks.reduce_lr_on_plateau
    if plateau is not None:
        callbacks.append(
            keras.callbacks.ReduceLROnPlateau(
                monitor=plateau.monitor,
                mode=plateau.mode,
                factor=plateau.factor,
                patience=plateau.patience,
                min_lr=plateau.min_lr,
            )
        )
    return callbacks


def keras_verbosity(verbose: str | int) -> int:
    """``auto``: Keras' progress bar on a terminal, else our one log line per epoch."""
    if verbose == "auto":
        return 1 if sys.stdout.isatty() else 0
    return int(verbose)


def split_digest(split: Split) -> str:
    """A digest of an index's paths, labels and (where ingest recorded them) file contents'
    SHA-256, in order; or of an ArraySplit's arrays."""
    digest = hashlib.sha256()
    if isinstance(split, ArraySplit):
        for array in (split.inputs, split.labels):
            digest.update(np.ascontiguousarray(array).tobytes())
        return digest.hexdigest()
    contents = split["sha256"].astype(str) if "sha256" in split else [""] * len(split)
    for path, label, content in zip(
        split["path"].astype(str), split["label"].astype(str), contents
    ):
        digest.update(f"{path}\0{label}\0{content}\n".encode())
    return digest.hexdigest()


def _run_fingerprint(identity: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(identity, sort_keys=True, default=str).encode()).hexdigest()


def weights_digest(model: keras.Model) -> str:
    """A digest of the model's weights (a run's starting point)."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()
