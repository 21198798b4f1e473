"""Nodes of the ``scratch_cnn`` pipeline: split indexes -> trained CNNs.

Each variant resolves its parameters (the shared ``scratch_cnn.defaults`` with the
variant's own block merged in), builds the CNN they describe, trains it and plots its
training curves. A variant with a ``tuning`` block first runs an Optuna study over its
search space and trains with the best trial's values. The heavy lifting lives in
:mod:`imgclf.models` and :mod:`imgclf.training`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd
from PIL import Image

from imgclf.imaging.decode import image_shape
from imgclf.lazy import lazy_module
from imgclf.models.cnn import build_cnn, parse_architecture
from imgclf.pipelines.family import (
    check_box_variant,
    resolve_common,
    train_variant,
    tune_variant,
    without_optimizer,
)

fit = lazy_module("imgclf.training.fit")
keras = lazy_module("keras")

VARIANT_KEYS = ("architecture",)


def resolve_variant(
    image: Mapping[str, Any],
    defaults: Mapping[str, Any],
    variant: Mapping[str, Any] | None,
    *,
    name: str,
    arm: str | None = None,
) -> dict[str, Any]:
    """The variant's parameters: ``defaults`` with the variant's block (and its sweep
    arm's overrides) merged in, validated.

    Returns:
        ``{"name", "architecture", "image", "training", ["tuning"]}``, with every training
        setting spelled out (defaults included), so that the saved parameters say exactly
        how the model was trained.

    Raises:
        ValueError: for keys other than architecture, image, training, tuning and sweep,
            or an invalid block (the message names it).
    """
    resolved = resolve_common(image, defaults, variant, name=name, arm=arm, valid_keys=VARIANT_KEYS)
    if "architecture" not in resolved:
        raise ValueError(f"{name} has no architecture: set scratch_cnn.defaults.architecture")
    check_box_variant(parse_architecture(resolved["architecture"]).output, resolved)
    return resolved


def train_cnn(
    parameters: Mapping[str, Any],
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    seed: int,
    checkpoint_dir: str,
    tensorboard_dir: str,
) -> tuple[Any, dict[str, Any]]:
    """Build the variant's CNN and train it; a killed run resumes from its backup in
    ``checkpoint_dir/<variant>`` when run again with the same parameters and data. The
    model is returned without its optimizer (see :func:`without_optimizer`)."""
    fit.set_seeds(seed)
    model, history = train_variant(
        parameters,
        _build(parameters, num_classes=len(classes)),
        train_index,
        val_index,
        classes,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        tensorboard_dir=tensorboard_dir,
    )
    return without_optimizer(model), history


def tune_cnn(
    parameters: Mapping[str, Any],
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame, Image.Image, Image.Image]:
    """Run (or continue) the variant's Optuna study over its CNN (see
    :func:`imgclf.pipelines.family.tune_variant` for the outputs)."""
    return tune_variant(
        parameters,
        lambda trial_parameters: _build(trial_parameters, num_classes=len(classes)),
        train=train_index,
        val=val_index,
        classes=classes,
        seed=seed,
    )


def _build(parameters: Mapping[str, Any], *, num_classes: int) -> keras.Model:
    image = parameters["image"]
    return build_cnn(
        parameters["architecture"],
        input_shape=image_shape(image["size"], image["color_mode"]),
        num_classes=num_classes,
        name=parameters["name"].replace(".", "_"),
    )
