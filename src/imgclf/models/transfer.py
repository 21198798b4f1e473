"""Transfer-learning models: a pretrained backbone with a new head, and fine-tuning.

:func:`build_transfer_model` puts three models on one graph, sharing their layers::

    model:     image (raw pixels) -> preprocessing -> backbone -> head -> probabilities
    extractor: image (raw pixels) -> preprocessing -> backbone           (the features)
    head:      features                                        -> head -> probabilities

The backbone is one nested layer named ``backbone``, frozen and always called with
``training=False``, so its BatchNorm layers keep their ImageNet statistics even once
fine-tuning makes some of them trainable. Training ``head`` on cached features trains
the very layers ``model`` uses: the saved ``model`` is the whole network.

:func:`unfreeze_backbone` makes the backbone's last N layers (or every layer from a
named one on) trainable for fine-tuning, optionally keeping BatchNorm layers frozen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from imgclf.config import block_items
from imgclf.lazy import lazy_module
from imgclf.models import checks, conv
from imgclf.models.head import (
    Head,
    Output,
    apply_layers,
    check_output,
    head_layers,
    parse_head,
    parse_output,
)
from imgclf.models.summary import count_parameters

backbones = lazy_module("imgclf.models.backbones")
keras = lazy_module("keras")

BACKBONE_LAYER = "backbone"
UNFREEZE_KEYS = ("last_layers", "from_layer", "freeze_batch_norm")


@dataclasses.dataclass(frozen=True)
class TransferModel:
    """One graph, three models sharing its layers (see the module docstring)."""

    model: keras.Model
    extractor: keras.Model
    head: keras.Model


def build_transfer_model(
    backbone: keras.Model,
    *,
    backbone_name: str,
    head: Mapping[str, Any] | Head | None,
    output: str | Mapping[str, Any] | Output,
    input_shape: tuple[int, int, int],
    num_classes: int,
    name: str,
) -> TransferModel:
    """Put a new head on a backbone (from :func:`imgclf.models.backbones.build_backbone`).

    Args:
        backbone: the backbone; it is frozen here.
        backbone_name: its registry name, which picks the pixel preprocessing.
        head: the head block (see :mod:`imgclf.models.head`).
        output: softmax, sigmoid, or a class and a box (see :mod:`imgclf.models.head`).
        input_shape: ``(height, width, channels)`` of the raw pixels; 1 channel is
            repeated to 3.
        num_classes: number of classes.
        name: the model's name.
    """
    output = parse_output(output, name)
    check_output(output, num_classes)
    extractor = feature_extractor(backbone, backbone_name=backbone_name, input_shape=input_shape)
    features = extractor.output
    head = parse_head(head)
    conv.check_fits(
        list(conv.windows(head.conv, "head_block")),
        tuple(features.shape[1:3]),
        f"the backbone's {conv.by(features.shape[1:3])} feature map is too small for the "
        "head's convolution blocks (use padding: same, pooling: null, a larger image or a "
        "later cut)",
    )
    layers = head_layers(head, output, num_classes)
    feature_input = keras.Input(shape=tuple(features.shape[1:]), name="features")
    head_model = keras.Model(
        feature_input, apply_layers(layers, feature_input), name=f"{name}_head"
    )
    model = keras.Model(extractor.input, apply_layers(layers, features), name=name)
    return TransferModel(model=model, extractor=extractor, head=head_model)


def feature_extractor(
    backbone: keras.Model, *, backbone_name: str, input_shape: tuple[int, int, int]
) -> keras.Model:
    """Raw pixels -> the backbone's own preprocessing -> the backbone (frozen, called with
    ``training=False``) -> its feature map."""
    backbone.trainable = False
    inputs = keras.Input(shape=input_shape, dtype="float32", name="image")
    preprocessed = backbones.BackbonePreprocessing(backbone_name, name="preprocessing")(inputs)
    features = backbone(preprocessed, training=False)
    return keras.Model(inputs, features, name="feature_extractor")


def backbone_of(model: keras.Model) -> keras.Model:
    """The nested backbone of a transfer model.

    Raises:
        ValueError: if the model has no layer named ``backbone``.
    """
    try:
        return model.get_layer(BACKBONE_LAYER)
    except ValueError:
        raise ValueError(
            f"model {model.name!r} has no nested {BACKBONE_LAYER!r} layer: fine-tuning needs a "
            "model built by the transfer pipeline"
        ) from None


@dataclasses.dataclass(frozen=True)
class UnfreezeConfig:
    """Which backbone layers fine-tuning trains (see :func:`parse_unfreeze`)."""

    last_layers: int | str = 6
    from_layer: str | None = None
    freeze_batch_norm: bool = False


def parse_unfreeze(unfreeze: Mapping[str, Any] | UnfreezeConfig | None) -> UnfreezeConfig:
    """Validate an ``unfreeze`` block::

        unfreeze:
          last_layers: 6          # the backbone's last N layers, or all
          from_layer: null        # a layer name: it and every layer after it (wins over
                                  # last_layers), e.g. MobileNetV2's block_16_expand
          freeze_batch_norm: false  # true: BatchNorm layers stay frozen

    Raises:
        ValueError: for unknown keys or bad values.
    """
    if isinstance(unfreeze, UnfreezeConfig):
        return unfreeze
    unfreeze = {} if unfreeze is None else unfreeze
    where = "unfreeze"
    unfreeze = block_items(unfreeze, UNFREEZE_KEYS, where)
    values: dict[str, Any] = {}
    if "last_layers" in unfreeze:
        last = unfreeze["last_layers"]
        values["last_layers"] = (
            last
            if last == "all"
            else checks.positive_int(last, "last_layers", f"{where} (or 'all')")
        )
    if unfreeze.get("from_layer") is not None:
        if not isinstance(unfreeze["from_layer"], str):
            raise ValueError(f"unfreeze.from_layer must be a layer name; got {unfreeze!r}")
        values["from_layer"] = unfreeze["from_layer"]
    if "freeze_batch_norm" in unfreeze:
        values["freeze_batch_norm"] = checks.boolean(
            unfreeze["freeze_batch_norm"], "freeze_batch_norm", where
        )
    return UnfreezeConfig(**values)


def unfreeze_backbone(
    model: keras.Model, unfreeze: Mapping[str, Any] | UnfreezeConfig | None
) -> dict[str, int]:
    """Make the backbone's last layers trainable (the rest stays frozen), in place.

    Recompile the model afterwards: Keras reads ``trainable`` when compiling.

    Returns:
        The backbone's parameter counts after unfreezing: total, trainable, non_trainable.

    Raises:
        ValueError: for a bad ``unfreeze`` block, ``from_layer`` not in the backbone, or
            more layers than the backbone has.
    """
    config = parse_unfreeze(unfreeze)
    backbone = backbone_of(model)
    layers = [layer for layer in backbone.layers if not isinstance(layer, keras.layers.InputLayer)]
    names = [layer.name for layer in layers]
    if config.from_layer is not None:
        if config.from_layer not in names:
            raise ValueError(
                f"unfreeze.from_layer={config.from_layer!r} is not a layer of the backbone; "
                f"its last layers are {', '.join(names[-8:])}"
            )
        start = names.index(config.from_layer)
    elif config.last_layers == "all":
        start = 0
    elif config.last_layers > len(layers):
        raise ValueError(
            f"unfreeze.last_layers={config.last_layers} but the backbone has {len(layers)} layers"
        )
    else:
        start = len(layers) - config.last_layers
    backbone.trainable = True
    for position, layer in enumerate(layers):
        is_batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = position >= start and not (config.freeze_batch_norm and is_batch_norm)
    return count_parameters(backbone)
