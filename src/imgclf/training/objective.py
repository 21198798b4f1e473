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

A study remembers a digest of the parameters and data it was made with;
running it again with others is refused with a message naming
``tuning.study_name``, so trials of different experiments never mix.
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
import pandas as pd
from optuna_integration import KerasPruningCallback

from imgclf.training.config import parse_training_config
from imgclf.training.fit import set_seeds, train_model
from imgclf.training.tuning import (
    TuningConfig,
    apply_suggestions,
    make_storage,
    parse_tuning_config,
    run_study,
    suggest,
    validate_targets,
)

logger = logging.getLogger(__name__)

FINGERPRINT_ATTRIBUTE = "imgclf_fingerprint"
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
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: Sequence[str],
    *,
    image: Mapping[str, Any],
    seed: int,
) -> optuna.Study:
    """Run (or continue) the variant's Optuna study and return it.

    Raises:
        ValueError: for a bad ``tuning`` block, a search-space target missing
            from ``parameters``, or a study of the same name made with other
            parameters or data (``n_trials``, ``timeout``, the sampler, the pruner
            and the storage settings may change between runs of one study).
    """
    tuning = parse_tuning_config(parameters.get("tuning"))
    validate_targets(parameters, tuning.search_space)
    base_training = parse_training_config(parameters.get("training"))
    epochs = tuning.epochs or base_training.epochs
    _claim_study(
        tuning,
        {
            "parameters": {key: value for key, value in parameters.items() if key != "tuning"},
            "tuning": {
                key: value
                for key, value in parameters["tuning"].items()
                if key in _TUNING_KEYS_OF_THE_EXPERIMENT
            },
            "image": dict(image),
            "seed": seed,
            "classes": list(classes),
            "train": train_index["path"].astype(str).tolist(),
            "val": val_index["path"].astype(str).tolist(),
        },
    )

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
            set_seeds(seed + execution, training.deterministic)
            model = build_model(trial_parameters)
            pruning = [EpochPruningCallback(trial, tuning.monitor)] if execution == 0 else []
            _, history = train_model(
                model,
                train_index,
                val_index,
                classes,
                image=image,
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
    """optuna_integration's Keras pruning callback with epochs counted from 1.

    Keras numbers epochs from 0; here a trial's step is the number of epochs it has
    trained, so a pruner's ``min_resource: 1`` judges a trial after its first epoch and
    ``max_resource`` equals the trial's epochs.
    """

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        super().on_epoch_end(epoch + 1, logs)


def _claim_study(tuning: TuningConfig, fingerprint: Mapping[str, Any]) -> None:
    """Mark the study with a digest of what it tunes; refuse one made with something else."""
    digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True, default=str).encode())
    wanted = digest.hexdigest()
    storage = make_storage(tuning.storage, tuning.heartbeat_interval, tuning.grace_period)
    study = optuna.create_study(
        study_name=tuning.study_name,
        storage=storage,
        direction=tuning.direction,
        load_if_exists=True,
    )
    found = study.user_attrs.get(FINGERPRINT_ATTRIBUTE)
    if found is None:
        study.set_user_attr(FINGERPRINT_ATTRIBUTE, wanted)
    elif found != wanted:
        raise ValueError(
            f"the Optuna study {tuning.study_name!r} in {tuning.storage} was made with other "
            "parameters or data; set tuning.study_name to a new name to start a new study "
            "(or delete the old one) so that trials of different experiments do not mix"
        )
