"""A training run's checkpoints: what a killed fit resumes from.

A run's folder (``checkpoint_dir/<variant>``) holds one file per finished epoch,
``epoch-0003.npz``: every model variable (weights, batch-norm statistics, the dropout
layers' random-generator state), every optimizer variable (step count, learning rate,
moments), and the run's state as JSON: its fingerprint, the history rows so far, the
counters of EarlyStopping and ReduceLROnPlateau, the best epoch, and whether early
stopping ended the fit. Each file is written atomically (:mod:`imgclf.atomic`), so a kill
or a full disk leaves the previous checkpoints whole. The two newest are kept, and the
best epoch's while training ends on the best weights.

:func:`resume_point` reads the folder before a fit: the newest checkpoint that loads,
matches the model and was made by this run is where the fit resumes. An unreadable one is
set aside (renamed ``*.unreadable``) with a warning that names it, and the next older one
is tried; a folder of another run (other settings, data or starting weights) is emptied.
"""

from __future__ import annotations

import dataclasses
import io
import json
import logging
import re
import shutil
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from imgclf import atomic

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
_CHECKPOINT_NAME = re.compile(r"^epoch-(\d+)\.npz$")
UNREADABLE_SUFFIX = ".unreadable"


class UnreadableCheckpointError(Exception):
    """A checkpoint file that cannot be resumed from; the message says why."""


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """One finished epoch of a run, read back from its file."""

    path: Path
    epochs_done: int
    model_variables: list[np.ndarray]
    optimizer_variables: list[np.ndarray]
    state: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return self.state["fingerprint"]

    def restore(self, model: keras.Model) -> None:
        """Put the checkpoint's model and optimizer variables into ``model`` (compiled
        like the model that made it)."""
        _assign(model.variables, self.model_variables)
        _assign(_built_optimizer(model).variables, self.optimizer_variables)


def checkpoint_path(folder: Path, epochs_done: int) -> Path:
    return folder / f"epoch-{epochs_done:04d}.npz"


def save_checkpoint(folder: Path, epochs_done: int, model: keras.Model, state: dict) -> Path:
    """Write the checkpoint of ``model`` after ``epochs_done`` epochs, atomically."""
    arrays = {
        **_numbered("model", model.variables),
        **_numbered("optimizer", model.optimizer.variables),
        "state": np.array(
            json.dumps({**state, "format": FORMAT_VERSION, "epochs_done": epochs_done})
        ),
    }
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = checkpoint_path(folder, epochs_done)
    atomic.write_bytes(path, buffer.getvalue())
    return path


def read_checkpoint(path: Path, model: keras.Model) -> Checkpoint:
    """Read and check one checkpoint file against ``model``.

    Raises:
        UnreadableCheckpointError: if the file is truncated, empty or damaged, or holds
            variables of other shapes than the model's or its optimizer's (the model
            must be compiled; its optimizer is built).
    """
    try:
        with np.load(path, allow_pickle=False) as arrays:
            state = json.loads(str(arrays["state"]))
            model_variables = _unnumbered(arrays, "model")
            optimizer_variables = _unnumbered(arrays, "optimizer")
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        raise UnreadableCheckpointError(f"it cannot be read ({error})") from error
    if not isinstance(state, dict) or state.get("format") != FORMAT_VERSION:
        raise UnreadableCheckpointError("it was written by another version of imgclf")
    _check_shapes(model.variables, model_variables, "model")
    _check_shapes(_built_optimizer(model).variables, optimizer_variables, "optimizer")
    return Checkpoint(
        path=path,
        epochs_done=int(state["epochs_done"]),
        model_variables=model_variables,
        optimizer_variables=optimizer_variables,
        state=state,
    )


def resume_point(folder: Path, fingerprint: str, model: keras.Model) -> Checkpoint | None:
    """Prepare ``folder`` for a fit of the run ``fingerprint`` and return the checkpoint to
    resume from, or None to start from scratch (the folder is then created or emptied).

    Unreadable checkpoints are set aside with a warning and older ones tried; leftover
    temporary files of a killed write are removed.
    """
    if not folder.is_dir():
        folder.mkdir(parents=True)
        return None
    for leftover in folder.glob(".*"):
        _remove(leftover)
    candidates = sorted(
        (path for path in folder.iterdir() if _CHECKPOINT_NAME.match(path.name)),
        key=lambda path: int(_CHECKPOINT_NAME.match(path.name).group(1)),
        reverse=True,
    )
    if not candidates:
        if not any(folder.iterdir()):
            return None
        _empty(folder, "it holds no checkpoint this version of imgclf can resume from")
        return None
    for path in candidates:
        try:
            checkpoint = read_checkpoint(path, model)
        except UnreadableCheckpointError as error:
            set_aside(path, str(error))
            continue
        if checkpoint.fingerprint != fingerprint:
            _empty(folder, "it was made with other settings, data or starting weights")
            return None
        logger.info("Resuming from %s: %d epoch(s) done", checkpoint.path, checkpoint.epochs_done)
        return checkpoint
    logger.warning("No readable checkpoint left in %s: training starts from scratch", folder)
    return None


def set_aside(path: Path, reason: str) -> None:
    """Rename an unusable checkpoint to ``<name>.unreadable`` and warn, naming it."""
    aside = path.with_name(path.name + UNREADABLE_SUFFIX)
    path.replace(aside)
    logger.warning("Set aside checkpoint %s as %s: %s", path, aside.name, reason)


def prune(folder: Path, keep: Sequence[int]) -> None:
    """Remove the checkpoints of every epoch count not in ``keep``."""
    for path in folder.iterdir():
        match = _CHECKPOINT_NAME.match(path.name)
        if match and int(match.group(1)) not in keep:
            path.unlink(missing_ok=True)


class Checkpointer(keras.callbacks.Callback):
    """Save a checkpoint after every epoch (see :func:`save_checkpoint`); on a resumed fit,
    give the stateful callbacks their counters back when training begins.

    Put it last, so that an epoch's checkpoint holds what every other callback changed.

    Args:
        folder: the run's checkpoint folder.
        state: called after each epoch; returns the run's state to store (see the
            module docstring), which must include ``"best_epoch"`` (or None).
        on_resume: called at ``on_train_begin`` of a resumed fit, after the other
            callbacks reset themselves.
        keep_best: keep the best epoch's checkpoint as well as the two newest.
    """

    def __init__(
        self,
        folder: Path,
        state: Callable[[], dict[str, Any]],
        *,
        on_resume: Callable[[], None] | None = None,
        keep_best: bool,
    ):
        super().__init__()
        self.folder = folder
        self.state = state
        self.on_resume = on_resume
        self.keep_best = keep_best

    def on_train_begin(self, logs: dict | None = None) -> None:
        if self.on_resume is not None:
            self.on_resume()

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        state = {**self.state(), "stopped": bool(self.model.stop_training)}
        save_checkpoint(self.folder, epoch + 1, self.model, state)
        keep = [epoch + 1, epoch]
        if self.keep_best and state.get("best_epoch") is not None:
            keep.append(state["best_epoch"])
        prune(self.folder, keep)


def best_variables(checkpoint: Checkpoint, folder: Path, model: keras.Model) -> list | None:
    """The model variables of the best epoch recorded in ``checkpoint``'s state, read from
    its own checkpoint; None (with a warning) when that file is missing or unreadable."""
    best = checkpoint.state.get("best_epoch")
    if best is None:
        return None
    if best == checkpoint.epochs_done:
        return checkpoint.model_variables
    path = checkpoint_path(folder, best)
    try:
        return read_checkpoint(path, model).model_variables
    except FileNotFoundError:
        reason = "its checkpoint is missing"
    except UnreadableCheckpointError as error:
        set_aside(path, str(error))
        reason = "its checkpoint is unreadable"
    logger.warning(
        "The weights of the best epoch so far (%d) are lost: %s; the best epoch is "
        "looked for again from epoch %d on",
        best,
        reason,
        checkpoint.epochs_done + 1,
    )
    return None


def _numbered(prefix: str, variables: Sequence[Any]) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_{position}": keras.ops.convert_to_numpy(variable)
        for position, variable in enumerate(variables)
    }


def _unnumbered(arrays: Any, prefix: str) -> list[np.ndarray]:
    pattern = re.compile(rf"^{prefix}_(\d+)$")
    matches = (pattern.match(name) for name in arrays.files)
    positions = sorted(int(match.group(1)) for match in matches if match)
    if positions != list(range(len(positions))):
        raise ValueError(f"the {prefix} variables are not numbered 0..n")
    return [arrays[f"{prefix}_{position}"] for position in positions]


def _check_shapes(variables: Sequence[Any], arrays: Sequence[np.ndarray], what: str) -> None:
    shapes = [tuple(variable.shape) for variable in variables]
    stored = [tuple(array.shape) for array in arrays]
    if shapes != stored:
        raise UnreadableCheckpointError(
            f"its {len(stored)} {what} variables do not match the model's {len(shapes)} "
            "(shapes differ)"
        )


def _built_optimizer(model: keras.Model) -> keras.optimizers.Optimizer:
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    return model.optimizer


def _assign(variables: Sequence[Any], arrays: Sequence[np.ndarray]) -> None:
    for variable, array in zip(variables, arrays, strict=True):
        variable.assign(array)


def _empty(folder: Path, reason: str) -> None:
    logger.warning("Discarding the checkpoints in %s: %s", folder, reason)
    shutil.rmtree(folder)
    folder.mkdir(parents=True)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
