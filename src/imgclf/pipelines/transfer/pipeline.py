"""The ``transfer`` pipeline: split indexes -> one frozen pretrained backbone + new head per
variant declared under ``transfer`` in the active environment's parameters.

A variant without augmentation (whose search space, if tuned, leaves its backbone and image
alone) trains only its head, on backbone features computed once: one feature cache per
distinct backbone configuration, ``transfer.features.<cache>`` (e.g.
``transfer.features.resnet50_64px_auto_1a2b3c4d``), shared by every variant that
uses it and reused by the next run while its inputs are unchanged. Other variants run
(augmented) images through the frozen backbone every epoch. Every variant writes
``transfer.<variant>.config``, ``.model`` (the whole network, taking raw pixels),
``.history`` and ``.training_curves`` (see :func:`imgclf.pipelines.family.variant_pipeline`).

Parameters: ``params:transfer.defaults`` merged with ``params:transfer.<variant>``, the
shared ``params:backbone`` and ``params:image`` under the variant's own keys,
``params:transfer.features``, ``params:seed``,
``params:checkpoint_dir`` and ``params:tensorboard_dir``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kedro.pipeline import Pipeline, node

from imgclf.pipelines.family import (
    IMAGE_INPUTS,
    Steps,
    bind,
    family_pipeline,
    own_parameters,
    with_image_settings,
)
from imgclf.variants import FEATURES, Variant

from .nodes import (
    extract_features,
    resolve_variant,
    train_on_features,
    train_on_images,
    tune_on_features,
    tune_on_images,
)

FAMILY = "transfer"
SPLIT = ["train_index", "val_index", "test_index", "classes"]


def create_pipeline(variants: Sequence[Variant] = (), **kwargs: Any) -> Pipeline:
    """Create the pipeline: one feature extraction per feature cache the ``transfer``
    variants of ``variants`` use, then every variant in its own namespace."""
    users: dict[str, Variant] = {}
    for variant in variants:
        if variant.family == FAMILY and variant.trains_on == FEATURES:
            users.setdefault(variant.features, variant)
    caches = [_cache_pipeline(cache, first) for cache, first in users.items()]
    return sum(caches, Pipeline([])) + family_pipeline(FAMILY, variants, steps)


def steps(variant: Variant) -> Steps:
    """What a transfer variant runs: on its cached features, or on images."""
    on_features = variant.trains_on == FEATURES
    if on_features:
        data = {"features": f"transfer.features.{variant.features}", "classes": "classes"}
    else:
        data = {"train_index": "train_index", "val_index": "val_index", "classes": "classes"}
    return Steps(
        resolve=with_image_settings(resolve_variant),
        resolve_inputs=[*IMAGE_INPUTS, "params:backbone", *own_parameters(variant)],
        train=train_on_features if on_features else train_on_images,
        tune=tune_on_features if on_features else tune_on_images,
        data=data,
    )


def _cache_pipeline(cache: str, first: Variant) -> Pipeline:
    """``transfer.features.extract_<cache>``: the features of the backbone configuration of
    ``first`` (and of every variant sharing it), resolved from ``first``'s parameters."""
    image, _, backbone, defaults, own = steps(first).resolve_inputs
    return Pipeline(
        [
            node(
                bind(extract_features, name=first.namespace, arm=first.arm),
                inputs={
                    "settings": "params:transfer.features",
                    "previous": f"transfer.previous_features.{cache}",
                    "image": image,
                    "backbone": backbone,
                    "defaults": defaults,
                    "variant": own,
                    **{name: name for name in SPLIT},
                    "seed": "params:seed",
                },
                outputs=f"transfer.features.{cache}",
                name=f"extract_{cache}",
                namespace="transfer.features",
            )
        ]
    )
