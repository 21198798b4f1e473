"""The training summary ("history"): what every model's training writes as
``<family>.<variant>.history`` and what ``evaluate`` and its leaderboard read.

Five producers write it: a scratch CNN (:func:`imgclf.pipelines.scratch_cnn.nodes.train_cnn`),
a transfer head on cached features or on images
(:mod:`imgclf.pipelines.transfer.nodes`), a fine-tuned model
(:func:`imgclf.pipelines.finetune.nodes.finetune`) and the baselines
(:func:`imgclf.evaluation.baseline.train_pixel_classifier`). Networks get the keys from
:func:`imgclf.training.fit.train_model`; every producer writes at least
:data:`REQUIRED_KEYS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypedDict


class EpochRow(TypedDict, total=False):
    """One epoch: ``epoch`` (from 1), ``seconds``, ``learning_rate`` and every metric Keras
    logged (``loss``, ``accuracy``, ``val_loss``, ``val_accuracy``)."""

    epoch: int
    loss: float
    accuracy: float
    val_loss: float
    val_accuracy: float
    learning_rate: float
    seconds: float


class ParameterCounts(TypedDict):
    """Weights counted at the end of training (fine-tuned: with the unfrozen layers)."""

    total: int
    trainable: int
    non_trainable: int


class TrainingSummary(TypedDict, total=False):
    """The training summary.

    Every producer:
        variant: the model's name, ``<family>.<variant>``.
        classes: the class names, in the order of the model's outputs.
        epochs: one :class:`EpochRow` per epoch (none for the baseline).
        epochs_run: epochs trained, resumed ones included (None for the baseline).
        monitor: the metric that picks the best epoch, e.g. ``val_accuracy``.
        best_epoch, best_value: the best epoch by ``monitor`` and its value (the baseline:
            no epoch, its val accuracy).
        total_seconds: training wall-clock seconds, resumed epochs included.
        seconds_per_epoch: their mean (None for the baseline).
        parameters: :class:`ParameterCounts` of the whole model.
        model_size_mb: the weights, MiB.

    Networks (:func:`imgclf.training.fit.train_model`) also write ``planned_epochs``,
    ``stopped_early``, ``resumed_at_epoch`` (0 for a fresh run), ``weights_from_epoch``
    (the epoch whose weights the model ends with: the best one with
    ``training.restore_best``, else the last) and ``wall_seconds_this_run``; transfer
    variants ``backbone_features`` (``cached`` or ``computed every epoch``); fine-tuned
    ones ``source`` (the transfer variant) and ``backbone_parameters`` (the backbone's
    counts after unfreezing); the baseline ``iterations`` (of its solver).
    """

    variant: str
    classes: list[str]
    epochs: list[EpochRow]
    epochs_run: int | None
    monitor: str
    best_epoch: int | None
    best_value: float | None
    total_seconds: float
    seconds_per_epoch: float | None
    parameters: ParameterCounts
    model_size_mb: float
    planned_epochs: int
    stopped_early: bool
    resumed_at_epoch: int
    weights_from_epoch: int | None
    wall_seconds_this_run: float
    backbone_features: str
    source: str
    backbone_parameters: ParameterCounts
    iterations: int


REQUIRED_KEYS = (
    "variant",
    "classes",
    "epochs",
    "epochs_run",
    "monitor",
    "best_epoch",
    "best_value",
    "total_seconds",
    "seconds_per_epoch",
    "parameters",
    "model_size_mb",
)


def check_summary(summary: Mapping[str, Any], where: str) -> None:
    """Raise ``ValueError`` naming the :data:`REQUIRED_KEYS` that ``summary`` (the history
    of ``where``) lacks: a history written by another version of imgclf."""
    missing = [key for key in REQUIRED_KEYS if key not in summary]
    if missing:
        raise ValueError(
            f"{where}: its training history lacks {', '.join(missing)} (written by another "
            "version of imgclf?): train it again with its pipeline"
        )
