"""Nodes of the ``finetune`` pipeline: a trained transfer model, partly unfrozen, trained on.

Each variant copies its transfer model, makes the backbone's last layers trainable
(:func:`imgclf.models.transfer.unfreeze_backbone`), recompiles it with the variant's
(low) learning rate and trains on. A tuned variant first runs an Optuna study, e.g. over
how many layers to unfreeze and the learning rate.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import keras
import pandas as pd
from matplotlib.figure import Figure

from imgclf.models.transfer import parse_unfreeze, unfreeze_backbone
from imgclf.pipelines.variants import (
    merge_variant,
    train_variant,
    tune_variant,
    without_optimizer,
)
from imgclf.training.fit import set_seeds

logger = logging.getLogger(__name__)

VARIANT_KEYS = ("unfreeze", "training", "tuning")
SOURCE_KEYS = ("backbone", "head", "output")


def resolve_variant(
    defaults: Mapping[str, Any],
    variant: Mapping[str, Any] | None,
    source: Mapping[str, Any],
    *,
    name: str,
) -> dict[str, Any]:
    """The variant's parameters: ``finetune.defaults`` with its own block merged in, plus
    ``source`` (the transfer variant it starts from) and that variant's backbone and head.

    Raises:
        ValueError: for unknown keys or an invalid block (the message names it).
    """
    resolved = merge_variant(defaults, variant, name=name, valid_keys=VARIANT_KEYS)
    resolved["unfreeze"] = dataclasses.asdict(parse_unfreeze(resolved.get("unfreeze")))
    return {
        **resolved,
        "source": source["name"],
        **{key: source[key] for key in SOURCE_KEYS},
    }


def finetune(
    parameters: Mapping[str, Any],
    transfer_model: keras.Model,
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    image: Mapping[str, Any],
    seed: int,
    checkpoint_dir: str,
) -> tuple[keras.Model, dict[str, Any]]:
    """Unfreeze a copy of the transfer model as ``unfreeze`` says and train it on; a
    killed run resumes from its backup in ``checkpoint_dir/<variant>``."""
    set_seeds(seed)
    model, backbone_parameters = _unfrozen_copy(transfer_model, parameters)
    model, history = train_variant(
        parameters,
        model,
        train_index,
        val_index,
        classes,
        image=image,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
    )
    return without_optimizer(model), {
        "variant": parameters["name"],
        "source": parameters["source"],
        "backbone_parameters": backbone_parameters,
        **history,
    }


def tune_finetune(
    parameters: Mapping[str, Any],
    transfer_model: keras.Model,
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    image: Mapping[str, Any],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame, Figure, Figure]:
    """Run (or continue) the variant's Optuna study, each trial fine-tuning a fresh copy of
    the transfer model (see :func:`imgclf.pipelines.variants.tune_variant`)."""
    return tune_variant(
        parameters,
        lambda trial_parameters: _unfrozen_copy(transfer_model, trial_parameters)[0],
        train_index=train_index,
        val_index=val_index,
        classes=classes,
        image=image,
        seed=seed,
    )


def _unfrozen_copy(
    model: keras.Model, parameters: Mapping[str, Any]
) -> tuple[keras.Model, dict[str, int]]:
    """A copy of ``model`` (the source stays as it is) named after the variant, with the
    backbone unfrozen as ``parameters["unfreeze"]`` says; and the backbone's counts."""
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    copy = keras.Model(clone.input, clone.output, name=parameters["name"].replace(".", "_"))
    counts = unfreeze_backbone(copy, parameters["unfreeze"])
    logger.info(
        "%s: %s of the backbone's %s parameters trainable (%s)",
        parameters["name"],
        f"{counts['trainable']:,}",
        f"{counts['total']:,}",
        parameters["unfreeze"],
    )
    return copy, counts
