"""The ``training`` parameter block, validated into a :class:`TrainingConfig`.

Every training pipeline reads the same block, e.g. in a Kedro parameter file::

    training:
      epochs: 10
      batch_size: 32
      optimizer:
        name: adam              # adam | sgd | rmsprop
        learning_rate: 0.001
        momentum: 0.0           # sgd and rmsprop
        nesterov: false         # sgd
      schedule:
        name: constant          # constant | exponential | cosine (per-step decay)
        decay_rate: 0.9         # exponential: factor per `decay_epochs` epochs
        decay_epochs: 1         # exponential
        alpha: 0.0              # cosine: final learning rate as a fraction of the first
      class_weight: null        # balanced (from the train index) | null
      augmentation: {}          # see imgclf.imaging.augment; training data only
      callbacks:
        early_stopping:         # null to switch off
          monitor: val_loss
          mode: min             # min | max
          patience: 3
          min_delta: 0.0
        reduce_lr_on_plateau:   # null to switch off; needs schedule constant
          monitor: val_loss
          mode: min
          factor: 0.2
          patience: 2
          min_lr: 1.0e-6
        backup_and_restore: true  # re-running after a kill resumes at the last finished epoch
        tensorboard: false      # TensorBoard logs of each run (see train_model's tensorboard_dir)
      monitor: val_accuracy     # the metric that picks the history's best epoch
      restore_best: true        # end on the weights of the best epoch by `monitor`
                                # (false: on the last epoch's)
      deterministic: false      # TensorFlow op determinism: exact repeats, slower
      distribute: none          # none | mirrored (tf.distribute.MirroredStrategy: one replica
                                # per visible GPU; batch_size is the global batch, split
                                # evenly between the replicas)
      precision: float32        # float32 | mixed_float16 | mixed_bfloat16 (outputs stay
                                # float32; mixed_float16 scales the loss)
      jit_compile: auto         # auto (Keras: XLA on a GPU) | true | false
      cache: true               # keep decoded images in memory after the first epoch
      verbose: auto             # auto (progress bar on a terminal, a log line per epoch
                                # otherwise) | 0 | 1 | 2 (Keras fit verbosity)

Unknown keys are errors, so a misspelt option never passes silently.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from imgclf.config import block_items
from imgclf.imaging.augment import AugmentationConfig, parse_augmentation

OPTIMIZERS = ("adam", "sgd", "rmsprop")
SCHEDULES = ("constant", "exponential", "cosine")
CLASS_WEIGHTS = ("balanced",)
MODES = ("min", "max")
VERBOSITY = ("auto", 0, 1, 2)
DISTRIBUTE = ("none", "mirrored")
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """Optimizer name and its settings."""

    name: str = "adam"
    learning_rate: float = 0.001
    momentum: float = 0.0
    nesterov: bool = False


@dataclasses.dataclass(frozen=True)
class ScheduleConfig:
    """Learning-rate schedule over the training steps."""

    name: str = "constant"
    decay_rate: float = 0.9
    decay_epochs: float = 1.0
    alpha: float = 0.0


@dataclasses.dataclass(frozen=True)
class EarlyStoppingConfig:
    """Settings of ``keras.callbacks.EarlyStopping``."""

    monitor: str = "val_loss"
    mode: str = "min"
    patience: int = 3
    min_delta: float = 0.0


@dataclasses.dataclass(frozen=True)
class ReduceLROnPlateauConfig:
    """Settings of ``keras.callbacks.ReduceLROnPlateau``."""

    monitor: str = "val_loss"
    mode: str = "min"
    factor: float = 0.2
    patience: int = 2
    min_lr: float = 1e-6


@dataclasses.dataclass(frozen=True)
class CallbacksConfig:
    """Which callbacks training adds; None switches one off."""

    early_stopping: EarlyStoppingConfig | None = None
    reduce_lr_on_plateau: ReduceLROnPlateauConfig | None = None
    backup_and_restore: bool = True
    tensorboard: bool = False


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """A validated ``training`` block (see the module docstring)."""

    epochs: int = 10
    batch_size: int = 32
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    class_weight: str | None = None
    augmentation: AugmentationConfig = dataclasses.field(default_factory=AugmentationConfig)
    callbacks: CallbacksConfig = CallbacksConfig()
    monitor: str = "val_accuracy"
    restore_best: bool = True
    deterministic: bool = False
    cache: bool = True
    verbose: str | int = "auto"
    distribute: str = "none"
    precision: str = "float32"
    jit_compile: str | bool = "auto"

    def replace(self, **changes: Any) -> TrainingConfig:
        """A copy with some fields changed (e.g. fewer epochs for a tuning trial)."""
        return dataclasses.replace(self, **changes)

    def to_parameters(self) -> dict[str, Any]:
        """The block as plain parameters with every default filled in: what a run was
        trained with, and what a search space's targets can point into."""
        return _plain_lists(dataclasses.asdict(self))


def parse_training_config(config: Mapping[str, Any] | TrainingConfig | None) -> TrainingConfig:
    """Validate a ``training`` parameter block.

    Args:
        config: the block as a mapping (missing keys take the defaults of the
            module docstring), an already parsed config, or None for defaults.

    Raises:
        ValueError: for unknown keys (the message lists the valid ones), values
            of the wrong type or out of range, and ReduceLROnPlateau combined
            with a decaying schedule.
    """
    if isinstance(config, TrainingConfig):
        return config
    values = block_items(config, TrainingConfig, "training")
    for name in ("epochs", "batch_size"):
        if name in values:
            _positive_int(values[name], f"training.{name}")
    if "optimizer" in values:
        values["optimizer"] = _optimizer(values["optimizer"])
    if "schedule" in values:
        values["schedule"] = _schedule(values["schedule"])
    if values.get("class_weight") not in (None, *CLASS_WEIGHTS):
        raise ValueError(
            f"training.class_weight must be 'balanced' or null; got {values['class_weight']!r}"
        )
    if "augmentation" in values:
        values["augmentation"] = parse_augmentation(values["augmentation"])
    if "callbacks" in values:
        values["callbacks"] = _callbacks(values["callbacks"])
    if "monitor" in values:
        _metric_name(values["monitor"], "training.monitor")
    for name in ("restore_best", "deterministic", "cache"):
        if name in values:
            _boolean(values[name], f"training.{name}")
    if values.get("verbose", "auto") not in VERBOSITY or isinstance(values.get("verbose"), bool):
        raise ValueError(f"training.verbose must be auto, 0, 1 or 2; got {values['verbose']!r}")
    for name, choices in (("distribute", DISTRIBUTE), ("precision", PRECISIONS)):
        if values.get(name, choices[0]) not in choices:
            raise ValueError(
                f"training.{name} must be one of {', '.join(choices)}; got {values[name]!r}"
            )
    jit_compile = values.get("jit_compile", "auto")
    if not (isinstance(jit_compile, bool) or jit_compile == "auto"):
        raise ValueError(
            f"training.jit_compile must be auto, true or false; got {values['jit_compile']!r}"
        )
    parsed = TrainingConfig(**values)
    if parsed.callbacks.reduce_lr_on_plateau and parsed.schedule.name != "constant":
        raise ValueError(
            "training.callbacks.reduce_lr_on_plateau needs training.schedule.name: constant "
            f"(a {parsed.schedule.name!r} schedule already sets the learning rate every step)"
        )
    return parsed


def _plain_lists(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain_lists(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain_lists(item) for item in value]
    return value


def _optimizer(config: Any) -> OptimizerConfig:
    values = block_items(config, OptimizerConfig, "training.optimizer")
    if values.get("name", "adam") not in OPTIMIZERS:
        raise ValueError(
            f"training.optimizer.name must be one of {', '.join(OPTIMIZERS)}; "
            f"got {values['name']!r}"
        )
    _positive_number(values.get("learning_rate", 1.0), "training.optimizer.learning_rate")
    momentum = values.get("momentum", 0.0)
    if not _is_number(momentum) or not 0 <= momentum < 1:
        raise ValueError(f"training.optimizer.momentum must be in [0, 1); got {momentum!r}")
    if "nesterov" in values:
        _boolean(values["nesterov"], "training.optimizer.nesterov")
    return OptimizerConfig(**values)


def _schedule(config: Any) -> ScheduleConfig:
    values = block_items(config, ScheduleConfig, "training.schedule")
    if values.get("name", "constant") not in SCHEDULES:
        raise ValueError(
            f"training.schedule.name must be one of {', '.join(SCHEDULES)}; got {values['name']!r}"
        )
    rate = values.get("decay_rate", 0.9)
    if not _is_number(rate) or not 0 < rate <= 1:
        raise ValueError(f"training.schedule.decay_rate must be in (0, 1]; got {rate!r}")
    _positive_number(values.get("decay_epochs", 1.0), "training.schedule.decay_epochs")
    alpha = values.get("alpha", 0.0)
    if not _is_number(alpha) or not 0 <= alpha <= 1:
        raise ValueError(f"training.schedule.alpha must be in [0, 1]; got {alpha!r}")
    return ScheduleConfig(**values)


def _callbacks(config: Any) -> CallbacksConfig:
    values = block_items(config, CallbacksConfig, "training.callbacks")
    for name, cls in (
        ("early_stopping", EarlyStoppingConfig),
        ("reduce_lr_on_plateau", ReduceLROnPlateauConfig),
    ):
        if values.get(name) is not None:
            values[name] = _monitoring_callback(values[name], cls, f"training.callbacks.{name}")
    for name in ("backup_and_restore", "tensorboard"):
        if name in values:
            _boolean(values[name], f"training.callbacks.{name}")
    return CallbacksConfig(**values)


def _monitoring_callback(config: Any, cls: type, where: str) -> Any:
    if isinstance(config, Mapping) and "restore_best_weights" in config:
        raise ValueError(
            f"{where}.restore_best_weights is replaced by training.restore_best (default "
            "true), which ends training on the best epoch by training.monitor whether or not "
            f"it stops early: remove restore_best_weights from {where} (and set "
            "training.monitor to the metric that should pick the best epoch)"
        )
    values = block_items(config, cls, where)
    if "monitor" in values:
        _metric_name(values["monitor"], f"{where}.monitor")
    if values.get("mode", "min") not in MODES:
        raise ValueError(f"{where}.mode must be min or max; got {values['mode']!r}")
    patience = values.get("patience", 0)
    if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
        raise ValueError(f"{where}.patience must be a non-negative int; got {patience!r}")
    factor = values.get("factor", 0.5)
    if not _is_number(factor) or not 0 < factor < 1:
        raise ValueError(f"{where}.factor must be in (0, 1); got {factor!r}")
    for name in ("min_delta", "min_lr"):
        value = values.get(name, 0.0)
        if not _is_number(value) or value < 0:
            raise ValueError(f"{where}.{name} must be a number >= 0; got {value!r}")
    return cls(**values)


def _metric_name(value: Any, where: str) -> None:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{where} must be a metric name such as val_loss; got {value!r}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _positive_number(value: Any, where: str) -> None:
    if not _is_number(value) or value <= 0:
        raise ValueError(f"{where} must be a positive number; got {value!r}")


def _positive_int(value: Any, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where} must be a positive int; got {value!r}")


def _boolean(value: Any, where: str) -> None:
    if not isinstance(value, bool):
        raise ValueError(f"{where} must be true or false; got {value!r}")
