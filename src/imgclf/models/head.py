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
layer. An ``output`` that declares a box adds a box head beside the class head (see
:mod:`imgclf.models.boxes`)::

    output:
      class: softmax            # softmax | sigmoid
      box: {loss_weight: 10.0, beta: 0.1}   # or box: {} for these defaults

The convolution blocks (see :mod:`imgclf.models.conv`) are named ``head_block1_conv1``,
``head_block1_bn1``, ``head_block1_pool``, ``head_block1_dropout``;
the other layers ``head_bn``, ``flatten`` (or ``global_average_pool`` /
``global_max_pool``), ``head_dropout``, ``head_dense1``, ``head_dense1_dropout`` and
``predictions`` (with a box: one layer of two Dense layers, ``class`` and ``box``).

:func:`head_layers` returns the layers themselves, so that one head can be applied to
two inputs and share its weights: a backbone's output inside a whole model, and cached
backbone features (see :mod:`imgclf.models.transfer`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from imgclf.config import block_items
from imgclf.lazy import lazy_module
from imgclf.models import checks, conv

box_models = lazy_module("imgclf.models.boxes")
keras = lazy_module("keras")

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


@dataclasses.dataclass(frozen=True)
class BoxOutput:
    """The box head's loss: ``loss_weight`` times smooth L1 with ``beta``."""

    loss_weight: float = 10.0
    beta: float = 0.1


@dataclasses.dataclass(frozen=True)
class Output:
    """The output layer: the class head's activation and, optionally, a box head."""

    activation: str = "softmax"
    box: BoxOutput | None = None

    def to_parameters(self) -> str | dict[str, Any]:
        """The output as a variant's parameters spell it: the activation alone, or
        ``{"class": activation, "box": {...}}``."""
        if self.box is None:
            return self.activation
        return {"class": self.activation, "box": dataclasses.asdict(self.box)}


OUTPUT_KEYS = ("class", "box")
BOX_KEYS = tuple(field.name for field in dataclasses.fields(BoxOutput))


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


def parse_output(output: Any, where: str) -> Output:
    """Validate an output: ``softmax``, ``sigmoid``, or ``{class: ..., box: {...}}``."""
    if isinstance(output, Output):
        return output
    if not isinstance(output, Mapping):
        return Output(activation=checks.choice(output, "output", OUTPUTS, where))
    output = block_items(output, OUTPUT_KEYS, f"{where} output")
    activation = checks.choice(output.get("class", "softmax"), "output.class", OUTPUTS, where)
    box = output.get("box")
    if box is None or box is False:
        return Output(activation=activation)
    box = block_items({} if box is True else box, BOX_KEYS, f"{where} output.box")
    values = {
        key: checks.positive_number(box[key], f"output.box.{key}", where)
        for key in BOX_KEYS
        if key in box
    }
    return Output(activation=activation, box=BoxOutput(**values))


def check_output(output: Output, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``num_classes`` (>= 2) suits the output layer."""
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"num_classes must be an int >= 2; got {num_classes!r}")
    if output.activation == "sigmoid" and num_classes != 2:
        raise ValueError(
            f"'output: sigmoid' is for 2 classes only; got num_classes={num_classes}: "
            "use 'output: softmax'"
        )


def head_layers(head: Head, output: Output, num_classes: int) -> list[keras.layers.Layer]:
    """The head's layers in order, the output layer last (float32, so that probabilities
    stay float32 under a mixed precision policy): ``predictions``, a Dense layer, or a
    :class:`imgclf.models.boxes.ClassAndBox` returning the class and the box."""
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
    units = 1 if output.activation == "sigmoid" else num_classes
    if output.box is None:
        layers.append(
            keras.layers.Dense(
                units, activation=output.activation, dtype="float32", name="predictions"
            )
        )
    else:
        layers.append(
            box_models.ClassAndBox(
                units,
                output.activation,
                loss_weight=output.box.loss_weight,
                beta=output.box.beta,
                name="predictions",
            )
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
