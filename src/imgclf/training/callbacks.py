"""Callbacks that ``train_model`` adds to every fit.

* :class:`EpochLog` records each epoch's metrics, learning rate and seconds,
  logs a line per epoch, and keeps the rows on disk so that a resumed run's
  history still starts at epoch 1.
* :class:`CallbackState` carries the counters of EarlyStopping and
  ReduceLROnPlateau (and EarlyStopping's best weights) across a resume:
  ``keras.callbacks.BackupAndRestore`` restores the model and optimizer but
  these callbacks would otherwise start counting again.

Both write to a run's backup folder, next to BackupAndRestore's files.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
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


class EpochLog(keras.callbacks.Callback):
    """Record per-epoch logs, learning rate and seconds; log one line per epoch.

    Args:
        epochs: the number of epochs of the fit (for the log line).
        path: a JSON file to keep the rows in, or None to keep them in memory only.
            Rows of epochs at or after the first epoch of this fit are dropped
            when it starts, so a resumed fit continues the earlier rows.
        log_lines: whether to log a line per epoch (off when Keras shows a
            progress bar).
    """

    def __init__(self, epochs: int, path: Path | None = None, *, log_lines: bool = True):
        super().__init__()
        self.epochs = epochs
        self.path = path
        self.log_lines = log_lines
        self.rows: list[dict[str, Any]] = []
        self._started: float | None = None
        self.first_epoch: int | None = None

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self.first_epoch is None:
            self.first_epoch = epoch
            if self.path is not None and self.path.exists():
                earlier = json.loads(self.path.read_text())
                self.rows = [row for row in earlier if row["epoch"] <= epoch]
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
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            _write_json_atomically(self.path, self.rows)
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


class CallbackState(keras.callbacks.Callback):
    """Save the counters of stateful callbacks after each epoch; restore them on resume.

    Put it after the callbacks it watches. State saved after epoch ``k`` is
    restored only when the next fit starts at epoch ``k`` (what
    BackupAndRestore resumes from); otherwise the callbacks start afresh.

    Args:
        callbacks: the callbacks to watch (EarlyStopping, ReduceLROnPlateau; others
            are ignored).
        folder: where the state file and EarlyStopping's best weights go.
    """

    def __init__(self, callbacks: list[keras.callbacks.Callback], folder: Path):
        super().__init__()
        self.watched = [
            (callback, attributes)
            for callback in callbacks
            for kind, attributes in _STATE_ATTRIBUTES.items()
            if isinstance(callback, kind)
        ]
        self.folder = folder
        self._restored = False

    @property
    def _state_path(self) -> Path:
        return self.folder / "callback_state.json"

    def _weights_path(self, position: int) -> Path:
        return self.folder / f"best_weights_{position}.npz"

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if self._restored:
            return
        self._restored = True
        if epoch == 0 or not self._state_path.exists():
            return
        state = json.loads(self._state_path.read_text())
        if state["epochs_done"] != epoch:
            logger.warning(
                "Callback state is from epoch %d but training resumes at epoch %d; "
                "early stopping and learning-rate reduction start counting afresh",
                state["epochs_done"],
                epoch + 1,
            )
            return
        for position, (callback, attributes) in enumerate(self.watched):
            for name in attributes:
                setattr(callback, name, state["callbacks"][position][name])
            weights_path = self._weights_path(position)
            if isinstance(callback, keras.callbacks.EarlyStopping) and weights_path.exists():
                with np.load(weights_path) as stored:
                    callback.best_weights = [stored[key] for key in sorted(stored, key=int)]
        logger.info("Restored early-stopping and learning-rate counters at epoch %d", epoch + 1)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        for position, (callback, _) in enumerate(self.watched):
            best_weights = getattr(callback, "best_weights", None)
            # Saved only when EarlyStopping took new best weights at this epoch.
            if best_weights is not None and getattr(callback, "best_epoch", None) == epoch:
                arrays = {str(index): array for index, array in enumerate(best_weights)}
                with self._weights_path(position).open("wb") as file:
                    np.savez(file, **arrays)
        state = {
            "epochs_done": epoch + 1,
            "callbacks": [
                {name: _plain(getattr(callback, name)) for name in attributes}
                for callback, attributes in self.watched
            ],
        }
        _write_json_atomically(self._state_path, state)


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


def _write_json_atomically(path: Path, data: Any) -> None:
    """Write JSON through a temporary file, so that a kill never leaves half a file."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=1))
    temporary.replace(path)
