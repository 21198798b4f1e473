"""What every training pipeline's variants share: parameters resolved from the family's
defaults, the tuning node's outputs, and the training-curve plot.

A family (``scratch_cnn``, ``transfer``, ``finetune``) is one template pipeline
instantiated under a namespace per variant; these helpers keep the variants' nodes alike.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import pandas as pd
from kedro.pipeline import Node, node
from matplotlib.figure import Figure

from imgclf.reporting.plots import training_curves
from imgclf.training.config import merge_parameters, parse_training_config
from imgclf.training.fit import Split, train_model
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


def merge_variant(
    defaults: Mapping[str, Any] | None,
    variant: Mapping[str, Any] | None,
    *,
    name: str,
    valid_keys: Sequence[str],
) -> dict[str, Any]:
    """``defaults`` with the variant's block merged in, key by key (lists are replaced),
    its ``training`` block spelled out and its ``tuning`` block validated.

    Returns:
        ``{"name": name, **merged}``.

    Raises:
        ValueError: for keys not in ``valid_keys``, or a bad training or tuning block.
    """
    merged = merge_parameters(defaults or {}, variant or {})
    unknown = sorted(str(key) for key in merged if key not in valid_keys)
    if unknown:
        raise ValueError(
            f"unknown key(s) in the parameters of {name}: {', '.join(unknown)}; "
            f"valid keys are: {', '.join(valid_keys)}"
        )
    merged["training"] = parse_training_config(merged.get("training")).to_parameters()
    if "tuning" in merged:
        parse_tuning_config(merged["tuning"])
    return {"name": name, **merged}


def named_resolver(
    resolve: Callable[..., dict[str, Any]], name: str
) -> Callable[..., dict[str, Any]]:
    """``resolve(*inputs, name=name)`` as a plain function (not a partial), so that Kedro
    and kedro-viz show its name, docstring and type hints."""

    def resolve_parameters(*inputs: Any) -> dict[str, Any]:
        return resolve(*inputs, name=name)

    resolve_parameters.__doc__ = resolve.__doc__
    return resolve_parameters


def tune_variant(
    parameters: Mapping[str, Any],
    build_model: Callable[[Mapping[str, Any]], keras.Model],
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
        parameters, build_model, train_index, val_index, classes, image=image, seed=seed
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


def tuning_nodes(
    tune: Callable[..., tuple[dict[str, Any], pd.DataFrame, Figure, Figure]],
    inputs: Mapping[str, str],
) -> list[Node]:
    """A tuned variant's nodes between ``resolve_parameters`` (which then outputs
    ``search_config``) and ``train`` (which reads ``config``): ``tune``, called with
    ``parameters`` and ``inputs`` and returning what :func:`tune_variant` returns, then the
    best trial's values applied."""
    return [
        node(
            tune,
            inputs={"parameters": "search_config", **inputs},
            outputs=["best_params", "trials", "optimization_history", "param_importances"],
            name="tune_hyperparameters",
        ),
        node(
            apply_best_parameters,
            inputs=["search_config", "best_params"],
            outputs="config",
            name="apply_best_parameters",
        ),
    ]


def apply_best_parameters(parameters: Mapping[str, Any], best: Mapping[str, Any]) -> dict[str, Any]:
    """The variant's parameters with the best trial's values in place."""
    space = parse_tuning_config(parameters["tuning"]).search_space
    return apply_suggestions(parameters, space, best["params"])


def plot_training_curves(history: Mapping[str, Any]) -> Figure:
    """Loss, accuracy and learning rate per epoch, the best epoch marked."""
    return training_curves(dict(history), title=f"{history['variant']}: training curves")


def train_variant(
    parameters: Mapping[str, Any],
    model: keras.Model,
    train: Split,
    val: Split,
    classes: list[str],
    *,
    image: Mapping[str, Any] | None,
    seed: int,
    checkpoint_dir: str,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train a variant's model with its ``training`` block (see
    :func:`imgclf.training.fit.train_model`) and log the result. A killed run resumes from
    its backup in ``checkpoint_dir/<variant>`` when run again with the same parameters and
    data."""
    model, history = train_model(
        model,
        train,
        val,
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
    return model, history


def without_optimizer(model: keras.Model) -> keras.Model:
    """The trained network, uncompiled, so that its saved file holds no optimizer state (for
    Adam, twice the trainable weights): what prediction and fine-tuning need."""
    return keras.Model(model.input, model.output, name=model.name)
