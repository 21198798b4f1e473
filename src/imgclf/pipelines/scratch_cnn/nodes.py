"""Nodes of the ``scratch_cnn`` pipeline: split indexes -> trained CNNs.

Each variant resolves its parameters (the shared ``scratch_cnn.defaults`` with the
variant's own block merged in), builds the CNN they describe, trains it and plots its
training curves. The ``tuned`` variant first runs an Optuna study over its search space
and trains with the best trial's values. The heavy lifting lives in
:mod:`imgclf.models` and :mod:`imgclf.training`.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import keras
import pandas as pd
from matplotlib.figure import Figure

from imgclf.imaging.decode import image_shape
from imgclf.models.cnn import build_cnn, parse_architecture
from imgclf.reporting.plots import training_curves
from imgclf.training.config import merge_parameters, parse_training_config
from imgclf.training.fit import set_seeds, train_model
from imgclf.training.objective import tune_model
from imgclf.training.search_space import apply_suggestions
from imgclf.training.tuning import (
    best_parameters,
    parse_tuning_config,
    plot_optimization_history,
    plot_parameter_importances,
    trials_table,
)

logger = logging.getLogger(__name__)

VARIANT_KEYS = ("architecture", "training", "tuning")


def resolve_variant(
    defaults: Mapping[str, Any], variant: Mapping[str, Any] | None, *, name: str
) -> dict[str, Any]:
    """The variant's parameters: ``defaults`` with the variant's block merged in, validated.

    Returns:
        ``{"name": name, "architecture": ..., "training": ..., ["tuning": ...]}``, with
        every training setting spelled out (defaults included), so that the saved
        parameters say exactly how the model was trained.

    Raises:
        ValueError: for keys other than architecture, training and tuning, or an
            invalid architecture, training or tuning block (the message names it).
    """
    merged = merge_parameters(defaults or {}, variant or {})
    unknown = sorted(str(key) for key in merged if key not in VARIANT_KEYS)
    if unknown:
        raise ValueError(
            f"unknown key(s) in the parameters of {name}: {', '.join(unknown)}; "
            f"valid keys are: {', '.join(VARIANT_KEYS)}"
        )
    if "architecture" not in merged:
        raise ValueError(f"{name} has no architecture: set scratch_cnn.defaults.architecture")
    parse_architecture(merged["architecture"])
    merged["training"] = parse_training_config(merged.get("training")).to_parameters()
    if "tuning" in merged:
        parse_tuning_config(merged["tuning"])
    return {"name": name, **merged}


def train_cnn(
    parameters: Mapping[str, Any],
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    image: Mapping[str, Any],
    seed: int,
    checkpoint_dir: str,
) -> tuple[keras.Model, dict[str, Any]]:
    """Build the variant's CNN and train it; a killed run resumes from its backup in
    ``checkpoint_dir/<variant>`` when run again with the same parameters and data."""
    set_seeds(seed)
    model = _build(parameters, image=image, num_classes=len(classes))
    model, history = train_model(
        model,
        train_index,
        val_index,
        classes,
        image=image,
        training=parameters["training"],
        seed=seed,
        backup_dir=Path(checkpoint_dir) / parameters["name"],
        fingerprint=parameters,
    )
    logger.info(
        "%s: best %s %.4f at epoch %s of %d (%.1f s)",
        parameters["name"],
        history["monitor"],
        history["best_value"] or float("nan"),
        history["best_epoch"],
        history["epochs_run"],
        history["total_seconds"],
    )
    return model, {"variant": parameters["name"], **history}


def tune_cnn(
    parameters: Mapping[str, Any],
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    image: Mapping[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame, Figure, Figure]:
    """Run (or continue) the variant's Optuna study.

    Returns:
        The best trial (number, value, suggested values, and the parameter paths
        they set), a table of every trial, the optimisation history plot and the
        parameter importance plot.
    """
    study = tune_model(
        parameters,
        lambda trial_parameters: _build(trial_parameters, image=image, num_classes=len(classes)),
        train_index,
        val_index,
        classes,
        image=image,
        seed=seed,
    )
    space = parse_tuning_config(parameters["tuning"]).search_space
    best = best_parameters(study, space)
    logger.info(
        "%s: best trial %d, %s %.4f, %s",
        parameters["name"],
        best["trial"],
        parameters["tuning"].get("monitor", "val_accuracy"),
        best["value"],
        best["params"],
    )
    return (
        best,
        trials_table(study),
        plot_optimization_history(study),
        plot_parameter_importances(study),
    )


def apply_best_parameters(parameters: Mapping[str, Any], best: Mapping[str, Any]) -> dict[str, Any]:
    """The variant's parameters with the best trial's values in place."""
    space = parse_tuning_config(parameters["tuning"]).search_space
    return apply_suggestions(parameters, space, best["params"])


def plot_training_curves(history: Mapping[str, Any]) -> Figure:
    """Loss, accuracy and learning rate per epoch, the best epoch marked."""
    return training_curves(dict(history), title=f"{history['variant']}: training curves")


def _build(parameters: Mapping[str, Any], *, image: Mapping[str, Any], num_classes: int):
    return build_cnn(
        parameters["architecture"],
        input_shape=image_shape(image["size"], image["color_mode"]),
        num_classes=num_classes,
        name=parameters["name"].replace(".", "_"),
    )
