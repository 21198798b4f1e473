"""The ``finetune`` pipeline: ``transfer.<from>.model`` -> the same model with its
backbone's last layers unfrozen, trained on with a low learning rate; one per variant
declared under ``finetune`` in the active environment's parameters.

A variant starts from the transfer variant its ``from`` names (default: the one of its own
name) and takes that variant's image settings, backbone, head and augmentation, unless it
sets its own ``training.augmentation``. See :func:`imgclf.pipelines.family.variant_pipeline`
for the nodes and outputs.

Parameters: ``params:finetune.defaults`` merged with ``params:finetune.<variant>``,
``transfer.<from>.config``, ``params:seed``,
``params:checkpoint_dir`` and ``params:tensorboard_dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kedro.pipeline import Pipeline

from imgclf.pipelines.family import Steps, bind, family_pipeline, own_parameters
from imgclf.variants import Variant

from .nodes import finetune, resolve_variant, tune_finetune

FAMILY = "finetune"


def create_pipeline(variants: Sequence[Variant] = (), **kwargs: Any) -> Pipeline:
    """Create the pipeline: every ``finetune`` variant of ``variants`` in its own
    namespace."""
    return family_pipeline(FAMILY, variants, steps)


def steps(variant: Variant) -> Steps:
    """What a fine-tune variant runs: a copy of its start's model, partly unfrozen."""
    return Steps(
        resolve=bind(resolve_variant, start=variant.start),
        resolve_inputs=[*own_parameters(variant), f"transfer.{variant.start}.config"],
        train=finetune,
        tune=tune_finetune,
        data={
            "transfer_model": f"transfer.{variant.start}.model",
            "train_index": "train_index",
            "val_index": "val_index",
            "classes": "classes",
        },
    )
