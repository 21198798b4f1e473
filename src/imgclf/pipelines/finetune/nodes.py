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

import pandas as pd
from PIL import Image

from imgclf.lazy import lazy_module
from imgclf.models.transfer import parse_unfreeze, unfreeze_backbone
from imgclf.pipelines.family import (
    resolve_common,
    train_variant,
    tune_variant,
    without_optimizer,
)
from imgclf.variants import merge_parameters, variant_blocks

fit = lazy_module("imgclf.training.fit")
keras = lazy_module("keras")

logger = logging.getLogger(__name__)

VARIANT_KEYS = ("from", "unfreeze")
# what a fine-tune variant takes from the transfer variant it starts from
SOURCE_KEYS = ("backbone", "head", "output", "image")


def resolve_variant(
    defaults: Mapping[str, Any],
    variant: Mapping[str, Any] | None,
    source: Mapping[str, Any] | None,
    *,
    name: str,
    arm: str | None = None,
    start: str | None = None,
) -> dict[str, Any]:
    """The variant's parameters: ``finetune.defaults`` with its own block (and its sweep
    arm's overrides) merged in, plus ``source`` (the resolved parameters of the transfer
    variant it starts from): that variant's name, backbone, head, image and, unless the
    fine-tune variant sets its own, its ``training.augmentation``.

    Raises:
        ValueError: for unknown keys or an invalid block (the message names it); for an
            ``image`` or ``backbone`` (the transfer model fixes them), or an augmentation
            in ``finetune.defaults`` (each variant inherits its source's); if the transfer
            variant ``start`` has not been trained (``source`` is None).
    """
    if source is None:
        raise ValueError(_untrained(name, start))
    if "augmentation" in ((defaults or {}).get("training") or {}):
        raise ValueError(
            "finetune.defaults.training.augmentation: a fine-tune variant augments as the "
            "transfer variant it starts from; set training.augmentation in a variant instead"
        )
    own = variant_blocks({}, variant, arm, name=name)
    for key in ("image", "backbone"):
        if key in own:
            raise ValueError(
                f"{name}: {key} comes from the transfer model it starts from "
                f"(transfer.{source['name'].split('.', 1)[1]}); set it there, not here"
            )
    if "augmentation" not in (own.get("training") or {}):
        own = merge_parameters(
            own, {"training": {"augmentation": source["training"]["augmentation"]}}
        )
    resolved = resolve_common(
        source["image"], defaults, own, name=name, arm=None, valid_keys=VARIANT_KEYS
    )
    resolved.pop("from", None)
    resolved["unfreeze"] = dataclasses.asdict(parse_unfreeze(resolved.get("unfreeze")))
    return {
        **resolved,
        "source": source["name"],
        **{key: source[key] for key in SOURCE_KEYS},
    }


def finetune(
    parameters: Mapping[str, Any],
    transfer_model: Any | None,
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    seed: int,
    checkpoint_dir: str,
    tensorboard_dir: str,
) -> tuple[Any, dict[str, Any]]:
    """Unfreeze a copy of the transfer model as ``unfreeze`` says and train it on; a
    killed run resumes from its backup in ``checkpoint_dir/<variant>``."""
    if transfer_model is None:
        raise ValueError(_untrained(parameters["name"], parameters["source"]))
    fit.set_seeds(seed)
    model, backbone_parameters = _unfrozen_copy(transfer_model, parameters)
    model, history = train_variant(
        parameters,
        model,
        train_index,
        val_index,
        classes,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        tensorboard_dir=tensorboard_dir,
    )
    return without_optimizer(model), {
        "source": parameters["source"],
        "backbone_parameters": backbone_parameters,
        **history,
    }


def tune_finetune(
    parameters: Mapping[str, Any],
    transfer_model: keras.Model | None,
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame, Image.Image, Image.Image]:
    """Run (or continue) the variant's Optuna study, each trial fine-tuning a fresh copy of
    the transfer model (see :func:`imgclf.pipelines.family.tune_variant`)."""
    if transfer_model is None:
        raise ValueError(_untrained(parameters["name"], parameters["source"]))
    return tune_variant(
        parameters,
        lambda trial_parameters: _unfrozen_copy(transfer_model, trial_parameters)[0],
        train=train_index,
        val=val_index,
        classes=classes,
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


def _untrained(name: str, start: str | None) -> str:
    source = start if start and start.startswith("transfer.") else f"transfer.{start}"
    return (
        f"{name} starts from {source}, which has not been trained yet: run "
        "kedro run --pipelines transfer,finetune (or the transfer pipeline first)"
    )
