"""Tune a Keras model with Optuna: the objective every tuning node shares.

:func:`tune_model` takes a variant's resolved parameters (``architecture`` or
whatever the model builder reads, ``training``, and ``tuning`` as in
:mod:`imgclf.training.tuning`), a function that builds the model from such
parameters, and the split. Each trial applies its suggested values to a copy
of the parameters, builds the model and trains it with :func:`train_model`
for ``tuning.epochs`` epochs (default ``training.epochs``); its value is the
best ``tuning.monitor`` over those epochs, averaged over
``executions_per_trial`` runs with different seeds (the first run reports
every epoch to the pruner, as step 1, 2, ...). Trials do not keep a backup: a killed study
resumes trial by trial instead.

The study's name is ``tuning.study_name`` with a digest of the experiment
(parameters, data, image size, seed) appended: running again continues it,
and changing the experiment starts a new study beside the old one, so trials
of different experiments never mix. ``n_trials``, ``timeout``, the sampler,
the pruner and the storage settings are not part of the experiment.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import keras
import numpy as np
import optuna
from optuna_integration import KerasPruningCallback

from imgclf.training.accelerate import accelerated
from imgclf.training.config import parse_training_config
from imgclf.training.fit import Split, set_seeds, split_digest, train_model
from imgclf.training.search_space import apply_suggestions, suggest, validate_targets
from imgclf.training.study import run_study
from imgclf.training.tuning import parse_tuning_config

logger = logging.getLogger(__name__)

# Changing these starts a different experiment; the budget, storage, sampler and pruner
# may change between runs of one study.
_TUNING_KEYS_OF_THE_EXPERIMENT = (
    "search_space",
    "epochs",
    "monitor",
    "direction",
    "executions_per_trial",
)


def tune_model(
    parameters: Mapping[str, Any],
    build_model: Callable[[Mapping[str, Any]], keras.Model],
    train_index: Split,
    val_index: Split,
    classes: Sequence[str],
    *,
    seed: int,
) -> optuna.Study:
    """Run (or continue) the variant's Optuna study and return it. Each trial reads its
    images at the trial's ``image`` settings (a search space may target ``image.size``);
    precomputed inputs (ArraySplits) need none.

    The study is named by :func:`experiment_study_name`.

    Raises:
        ValueError: for a bad ``tuning`` block or a search-space target missing
            from ``parameters``.
    """
    tuning = parse_tuning_config(parameters.get("tuning"))
    validate_targets(parameters, tuning.search_space)
    base_training = parse_training_config(parameters.get("training"))
    epochs = tuning.epochs or base_training.epochs
    tuning = dataclasses.replace(
        tuning,
        study_name=experiment_study_name(
            tuning.study_name,
            {
                "parameters": {key: value for key, value in parameters.items() if key != "tuning"},
                "tuning": {
                    key: value
                    for key, value in parameters["tuning"].items()
                    if key in _TUNING_KEYS_OF_THE_EXPERIMENT
                },
                "seed": seed,
                "classes": list(classes),
                "train": split_digest(train_index),
                "val": split_digest(val_index),
            },
        ),
    )
    logger.info("Optuna study %r in %s", tuning.study_name, tuning.storage or "memory")

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, tuning.search_space)
        trial_parameters = apply_suggestions(parameters, tuning.search_space, values)
        training = parse_training_config(trial_parameters.get("training"))
        training = training.replace(
            epochs=epochs,
            monitor=tuning.monitor,
            callbacks=dataclasses.replace(training.callbacks, backup_and_restore=False),
        )
        scores = []
        for execution in range(tuning.executions_per_trial):
            keras.backend.clear_session()
            set_seeds(seed + execution)
            pruning = [EpochPruningCallback(trial, tuning.monitor)] if execution == 0 else []
            with accelerated(training):
                _, history = train_model(
                    build_model(trial_parameters),
                    train_index,
                    val_index,
                    classes,
                    image=trial_parameters.get("image"),
                    training=training,
                    seed=seed + execution,
                    extra_callbacks=pruning,
                )
            if history["best_value"] is None:
                raise ValueError(
                    f"tuning.monitor {tuning.monitor!r} was not logged by training; "
                    "use a logged metric such as val_accuracy or val_loss"
                )
            scores.append(history["best_value"])
        trial.set_user_attr("execution_values", scores)
        return float(np.mean(scores))

    return run_study(objective, tuning, seed=seed, max_resource=epochs)


class EpochPruningCallback(KerasPruningCallback):
    """optuna_integration's Keras pruning callback with epochs counted from 1, which never
    prunes a trial that has trained all its epochs.

    Keras numbers epochs from 0; here a trial's step is the number of epochs it has
    trained, so a pruner's ``min_resource: 1`` judges a trial after its first epoch and
    ``max_resource`` equals the trial's epochs. After the last epoch the value is only
    reported: a finished trial is complete (Hyperband's last rung would otherwise prune
    it and throw its result away).
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        trained = epoch + 1
        if trained < self.params.get("epochs", trained + 1):
            super().on_epoch_end(trained, logs)
            return
        value = (logs or {}).get(self._monitor)
        if value is not None:
            self._trial.report(float(value), step=trained)


def experiment_study_name(study_name: str | None, experiment: Mapping[str, Any]) -> str | None:
    """``study_name`` with a digest of the experiment appended: ``scratch_cnn.tuned-1a2b3c4d``.

    Runs of one experiment (same parameters, data, image size and seed) share a study
    and continue it; changing any of them starts a new study beside the old one, so
    trials of different experiments never mix.
    """
    if study_name is None:
        return None
    digest = hashlib.sha256(json.dumps(experiment, sort_keys=True, default=str).encode())
    return f"{study_name}-{digest.hexdigest()[:8]}"
