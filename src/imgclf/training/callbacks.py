"""Callbacks that ``train_model`` adds to every fit.

* :class:`EpochLog` records each epoch's metrics, learning rate and seconds and logs a
  line per epoch; a resumed fit starts from the rows of the epochs it resumes after.
* :class:`BestEpoch` follows the best epoch by the training's ``monitor`` and keeps that
  epoch's weights, so that training can end on them (``training.restore_best``).

:func:`callback_counters` and :func:`restore_callback_counters` carry the counters of
EarlyStopping and ReduceLROnPlateau across a resume (see
:mod:`imgclf.training.checkpoint`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import keras
import numpy as np

logger = logging.getLogger(__name__)

# Attributes of the stateful Keras callbacks that a resumed run must get back.
_STATE_ATTRIBUTES = {
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch"),
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
}


def current_learning_rate(optimizer: keras.optimizers.Optimizer) -> float:
    """The optimizer's learning rate now (a schedule evaluated at the current step), to the
    7 significant digits a float32 holds."""
    return float(f"{float(keras.ops.convert_to_numpy(optimizer.learning_rate)):.7g}")


def lower_is_better(monitor: str) -> bool:
    """Whether a smaller value of metric ``monitor`` is better (losses)."""
    return "loss" in monitor


class ClassMetricNames(keras.callbacks.Callback):
    """For a model with a class and a box output: log ``class_accuracy`` (and
    ``val_class_accuracy``) also as ``accuracy`` (``val_accuracy``), the names every
    monitor, summary and study uses. Put it first, as later callbacks see its logs."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if logs is None:
            return
        for prefix in ("", "val_"):
            if f"{prefix}class_accuracy" in logs:
                logs[f"{prefix}accuracy"] = logs[f"{prefix}class_accuracy"]


class EpochLog(keras.callbacks.Callback):
    """Record per-epoch logs, learning rate and seconds; log one line per epoch.

    Args:
        epochs: the number of epochs of the fit (for the log line).
        rows: the rows of the epochs before this fit's first (a resumed fit).
        log_lines: whether to log a line per epoch (off when Keras shows a
            progress bar).
    """

    def __init__(self, epochs: int, rows: Sequence[dict[str, Any]] = (), *, log_lines: bool = True):
        super().__init__()
        self.epochs = epochs
        self.log_lines = log_lines
        self.rows: list[dict[str, Any]] = [dict(row) for row in rows]
        self._started: float | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seconds = time.perf_counter() - (self._started or time.perf_counter())
        row: dict[str, Any] = {"epoch": epoch + 1}
        for name, value in (logs or {}).items():
            if name != "learning_rate":
                row[name] = _finite_or_none(value)
        row["learning_rate"] = current_learning_rate(self.model.optimizer)
        row["seconds"] = round(seconds, 3)
        self.rows.append(row)
        if self.log_lines:
            metrics = " - ".join(
                f"{name}: {value:.4f}"
                for name, value in row.items()
                if name not in ("epoch", "seconds", "learning_rate") and value is not None
            )
            logger.info(
                "Epoch %d/%d - %s - lr: %.3g - %.1f s",
                epoch + 1,
                self.epochs,
                metrics,
                row["learning_rate"],
                seconds,
            )


class BestEpoch(keras.callbacks.Callback):
    """Follow the best epoch by ``monitor`` (lowest for a loss, highest otherwise; the
    first of equal ones) and, with ``keep_weights``, keep a copy of its variables.

    Attributes:
        epoch: the best epoch so far (from 1), or None.
        value: its value of ``monitor``.
        variables: the model's variables (``model.variables``) after that epoch, when
            kept.
    """

    def __init__(self, monitor: str, *, keep_weights: bool):
        super().__init__()
        self.monitor = monitor
        self.keep_weights = keep_weights
        self.epoch: int | None = None
        self.value: float | None = None
        self.variables: list[np.ndarray] | None = None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None or not math.isfinite(float(value)):
            return
        value = float(value)
        if self.value is not None and not (
            value < self.value if lower_is_better(self.monitor) else value > self.value
        ):
            return
        self.epoch, self.value = epoch + 1, value
        if self.keep_weights:
            self.variables = [keras.ops.convert_to_numpy(v) for v in self.model.variables]

    def restore(self, model: keras.Model) -> bool:
        """Put the best epoch's variables back into ``model``; whether there were any."""
        if self.variables is None:
            return False
        for variable, value in zip(model.variables, self.variables, strict=True):
            variable.assign(value)
        return True


def watched_callbacks(callbacks: Sequence[keras.callbacks.Callback]) -> list[Any]:
    """The callbacks among ``callbacks`` whose counters a resume restores."""
    return [
        callback
        for callback in callbacks
        if any(isinstance(callback, kind) for kind in _STATE_ATTRIBUTES)
    ]


def callback_counters(callbacks: Sequence[keras.callbacks.Callback]) -> list[dict[str, Any]]:
    """The counters of each watched callback (see :func:`watched_callbacks`), JSON-ready."""
    return [
        {name: _plain(getattr(callback, name)) for name in _attributes(callback)}
        for callback in watched_callbacks(callbacks)
    ]


def restore_callback_counters(
    callbacks: Sequence[keras.callbacks.Callback], counters: Sequence[dict[str, Any]]
) -> None:
    """Set what :func:`callback_counters` returned back on the same callbacks. Call it
    after their ``on_train_begin``, which resets them."""
    watched = watched_callbacks(callbacks)
    if len(watched) != len(counters):
        raise ValueError(f"{len(counters)} callback states for {len(watched)} callbacks")
    for callback, values in zip(watched, counters):
        for name in _attributes(callback):
            setattr(callback, name, values[name])


def _attributes(callback: keras.callbacks.Callback) -> tuple[str, ...]:
    return next(names for kind, names in _STATE_ATTRIBUTES.items() if isinstance(callback, kind))


def _plain(value: Any) -> Any:
    """A JSON-ready copy of a callback counter (numpy scalars become Python numbers;
    ``json`` writes and reads back infinities)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    return float(value)


def _finite_or_none(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
