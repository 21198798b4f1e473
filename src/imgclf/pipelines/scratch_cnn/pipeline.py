"""The ``scratch_cnn`` pipeline: ``train_index``, ``val_index`` and ``classes`` -> one trained
CNN per variant declared under ``scratch_cnn`` in the active environment's parameters.

One template, instantiated under a namespace per variant (one collapsible box each in
kedro-viz); see :func:`imgclf.pipelines.family.variant_pipeline` for the nodes and
outputs. Parameters: ``params:scratch_cnn.defaults`` merged with
``params:scratch_cnn.<variant>``, and the project-wide ``params:image`` (its
``color_mode: auto`` decided by ``train_index``), ``params:seed``,
``params:checkpoint_dir`` and ``params:tensorboard_dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kedro.pipeline import Pipeline

from imgclf.pipelines.family import (
    IMAGE_INPUTS,
    Steps,
    family_pipeline,
    own_parameters,
    with_image_settings,
)
from imgclf.variants import Variant

from .nodes import resolve_variant, train_cnn, tune_cnn

FAMILY = "scratch_cnn"
DATA = {"train_index": "train_index", "val_index": "val_index", "classes": "classes"}


def create_pipeline(variants: Sequence[Variant] = (), **kwargs: Any) -> Pipeline:
    """Create the pipeline: every ``scratch_cnn`` variant of ``variants`` in its own
    namespace (see :func:`imgclf.variants.declare_variants`)."""
    return family_pipeline(FAMILY, variants, steps)


def steps(variant: Variant) -> Steps:
    """What a scratch CNN variant runs."""
    return Steps(
        resolve=with_image_settings(resolve_variant),
        resolve_inputs=[*IMAGE_INPUTS, *own_parameters(variant)],
        train=train_cnn,
        tune=tune_cnn,
        data=DATA,
    )
