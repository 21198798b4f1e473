"""The classification head every model family shares, built from a dict.

A head turns a feature map into class probabilities. Every key shows its default::

    head:
      conv: []                  # convolution blocks first, as a scratch CNN's blocks (S2),
                                # e.g. [{filters: 64, padding: same, pooling: null}]
      batch_norm: false         # BatchNormalization of the feature map first (S0's transfer head)
      pooling: flatten          # flatten | global_average | global_max
      dropout: 0.0              # Dropout before the first dense layer
      dense:                    # hidden dense layers; `units` required
        - {units: 150, activation: relu, kernel_initializer: glorot_uniform, dropout: 0.0}

and the output layer is ``softmax`` (``Dense(num_classes, softmax)``) or ``sigmoid``
(``Dense(1, sigmoid)``, for 2 classes only). A dense layer's ``dropout`` follows that
layer. The convolution blocks (see :mod:`imgclf.models.conv`) are named
``head_block1_conv1``, ``head_block1_bn1``, ``head_block1_pool``, ``head_block1_dropout``;
the other layers ``head_bn``, ``flatten`` (or ``global_average_pool`` /
``global_max_pool``), ``head_dropout``, ``head_dense1``, ``head_dense1_dropout`` and
``predictions``.

:func:`head_layers` returns the layers themselves, so that one head can be applied to
two inputs and share its weights: a backbone's output inside a whole model, and cached
backbone features (see :mod:`imgclf.models.transfer`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import keras

from imgclf.config import block_items
from imgclf.models import checks, conv

HEAD_POOLINGS = ("flatten", "global_average", "global_max")
OUTPUTS = ("softmax", "sigmoid")


@dataclasses.dataclass(frozen=True)
class DenseLayer:
    """One hidden dense layer of the head, followed by Dropout if ``dropout`` > 0."""

    units: int
    activation: str = "relu"
    kernel_initializer: str = "glorot_uniform"
    dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class Head:
    """Convolution blocks?, BatchNorm?, pooling or flattening, Dropout?, hidden dense
    layers."""

    pooling: str = "flatten"
    dropout: float = 0.0
    dense: tuple[DenseLayer, ...] = ()
    batch_norm: bool = False
    conv: tuple[conv.ConvBlock, ...] = ()


HEAD_KEYS = tuple(field.name for field in dataclasses.fields(Head))
DENSE_KEYS = tuple(field.name for field in dataclasses.fields(DenseLayer))


def parse_head(head: Mapping[str, Any] | Head | None, where: str = "head") -> Head:
    """Validate a head dict (None: the defaults) and return a :class:`Head`.

    Raises:
        ValueError: for an unknown key (the message lists the valid ones), a dense layer
            without ``units``, or a value of the wrong type or out of range.
    """
    if isinstance(head, Head):
        return head
    if head is None:
        return Head()
    head = block_items(head, HEAD_KEYS, where)
    values: dict[str, Any] = {}
    if head.get("conv"):
        values["conv"] = conv.parse_blocks(head["conv"], f"{where} 'conv'", f"{where} conv block")
    if "pooling" in head:
        values["pooling"] = checks.choice(head["pooling"], "pooling", HEAD_POOLINGS, where)
    if "dropout" in head:
        values["dropout"] = checks.fraction(head["dropout"], "dropout", where)
    if "batch_norm" in head:
        values["batch_norm"] = checks.boolean(head["batch_norm"], "batch_norm", where)
    dense = head.get("dense") or []
    if isinstance(dense, str | bytes | Mapping) or not isinstance(dense, Sequence):
        raise ValueError(f"{where} 'dense' must be a list of dense layers; got {dense!r}")
    values["dense"] = tuple(
        _parse_dense(layer, f"{where} dense layer {number}")
        for number, layer in enumerate(dense, start=1)
    )
    return Head(**values)


def parse_output(output: Any, where: str) -> str:
    """Validate an output name: softmax or sigmoid."""
    return checks.choice(output, "output", OUTPUTS, where)


def check_output(output: str, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``num_classes`` (>= 2) suits the output layer."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2; got {num_classes!r}")
    if output == "sigmoid" and num_classes != 2:
        raise ValueError(
            f"'output: sigmoid' is for 2 classes only; got num_classes={num_classes}: "
            "use 'output: softmax'"
        )


def head_layers(head: Head, output: str, num_classes: int) -> list[keras.layers.Layer]:
    """The head's layers in order, the output layer last (float32, so that probabilities
    stay float32 under a mixed precision policy)."""
    layers: list[keras.layers.Layer] = []
    for number, block in enumerate(head.conv, start=1):
        layers += conv.block_layers(block, f"head_block{number}")
    if head.batch_norm:
        layers.append(keras.layers.BatchNormalization(name="head_bn"))
    if head.pooling == "flatten":
        layers.append(keras.layers.Flatten(name="flatten"))
    elif head.pooling == "global_average":
        layers.append(keras.layers.GlobalAveragePooling2D(name="global_average_pool"))
    else:
        layers.append(keras.layers.GlobalMaxPooling2D(name="global_max_pool"))
    if head.dropout > 0:
        layers.append(keras.layers.Dropout(head.dropout, name="head_dropout"))
    for number, layer in enumerate(head.dense, start=1):
        layers.append(
            keras.layers.Dense(
                layer.units,
                activation=layer.activation,
                kernel_initializer=layer.kernel_initializer,
                name=f"head_dense{number}",
            )
        )
        if layer.dropout > 0:
            layers.append(keras.layers.Dropout(layer.dropout, name=f"head_dense{number}_dropout"))
    units, activation = (1, "sigmoid") if output == "sigmoid" else (num_classes, "softmax")
    layers.append(
        keras.layers.Dense(units, activation=activation, dtype="float32", name="predictions")
    )
    return layers


def apply_layers(layers: Sequence[keras.layers.Layer], features: Any) -> Any:
    """Call ``layers`` one after the other on ``features``."""
    for layer in layers:
        features = layer(features)
    return features


def _parse_dense(layer: Any, where: str) -> DenseLayer:
    layer = block_items(layer, DENSE_KEYS, where)
    if "units" not in layer:
        raise ValueError(f"{where} needs 'units' (the number of neurons)")
    values: dict[str, Any] = {"units": checks.positive_int(layer["units"], "units", where)}
    if "activation" in layer:
        values["activation"] = checks.activation(layer["activation"], where)
    if "kernel_initializer" in layer:
        values["kernel_initializer"] = checks.initializer(layer["kernel_initializer"], where)
    if "dropout" in layer:
        values["dropout"] = checks.fraction(layer["dropout"], "dropout", where)
    return DenseLayer(**values)
