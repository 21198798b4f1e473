"""Build a plain convolutional network (a Keras functional model) from a dict.

The architecture is a plain dict, e.g. from Kedro parameters. Only ``blocks`` is
required; every other key shows its default::

    architecture:
      rescale: 0.00392156862745098  # Rescaling(scale) layer first (1/255); null: none
      block_defaults:               # merged under every block; a block's own keys win
        kernel_size: 3              # int or [height, width]
        strides: 1                  # int or [height, width]
        padding: valid              # valid | same
        activation: relu            # any Keras activation name
        kernel_initializer: glorot_uniform
        convolutions: 1             # Conv2D layers in the block
        batch_norm: false           # BatchNormalization after each Conv2D
        batch_norm_momentum: 0.99   # of its moving statistics (Keras' default); lower
                                    # settles them sooner, for short runs on small data
        pooling: max                # max | average | null (none)
        pool_size: 2                # int or [height, width]; the pooling strides too
        dropout: 0.0                # Dropout after the block (after pooling)
      blocks:                       # each needs `filters`; other keys as block_defaults
        - {filters: 32}
        - {filters: 64, batch_norm: true}
      head:                         # see imgclf.models.head
        conv: []                    # convolution blocks first, keys as a block's
        batch_norm: false           # BatchNormalization before pooling
        pooling: flatten            # flatten | global_average | global_max
        dropout: 0.0                # Dropout before the first dense layer
        dense:                      # hidden dense layers; `units` required
          - {units: 150, activation: relu, kernel_initializer: glorot_uniform, dropout: 0.0}
      output: softmax               # softmax: Dense(num_classes, softmax)
                                    # sigmoid: Dense(1, sigmoid), for 2 classes only
                                    # {class: softmax, box: {}}: and a box head

The model takes raw pixels (float32 in [0, 255]) and rescales them itself. A
block (:mod:`imgclf.models.conv`) is, for each of its ``convolutions``: Conv2D then
BatchNormalization (if ``batch_norm``); then pooling (if not null), then Dropout (if
``dropout`` > 0). A dense layer's ``dropout`` is applied after that layer. Layers are
named ``rescaling``, ``block1_conv1``, ``block1_bn1``, ``block1_pool``,
``block1_dropout``, then the head's (:mod:`imgclf.models.head`): ``flatten`` (or
``global_average_pool`` / ``global_max_pool``), ``head_dropout``, ``head_dense1``,
``head_dense1_dropout`` and ``predictions``.

An input too small for the architecture (a valid convolution or a pooling
window larger than what reaches it) is rejected before Keras builds anything;
:func:`minimum_input_size` gives the smallest side length that works. Weights
are initialised from Keras' global random state: call
``keras.utils.set_random_seed`` first for reproducible weights.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from imgclf.config import block_items
from imgclf.lazy import lazy_module
from imgclf.models import conv
from imgclf.models.conv import ConvBlock
from imgclf.models.head import (
    Head,
    Output,
    apply_layers,
    check_output,
    head_layers,
    parse_head,
    parse_output,
)

keras = lazy_module("keras")

DEFAULT_RESCALE = 1.0 / 255.0


@dataclasses.dataclass(frozen=True)
class CnnArchitecture:
    """A validated architecture; see the module docstring for the meaning of each field."""

    blocks: tuple[ConvBlock, ...]
    rescale: float | None = DEFAULT_RESCALE
    head: Head = dataclasses.field(default_factory=Head)
    output: Output = dataclasses.field(default_factory=Output)


ARCHITECTURE_KEYS = ("rescale", "block_defaults", "blocks", "head", "output")


def parse_architecture(architecture: Mapping[str, Any] | CnnArchitecture) -> CnnArchitecture:
    """Validate an architecture dict and return a :class:`CnnArchitecture`.

    Args:
        architecture: a mapping as in the module docstring, or an already
            parsed architecture (returned as is).

    Raises:
        ValueError: for an unknown key at any level (the message lists the
            valid ones), a missing ``blocks`` or ``filters`` / ``units``, or a
            value of the wrong type or out of range.
    """
    if isinstance(architecture, CnnArchitecture):
        return architecture
    architecture = block_items(architecture, ARCHITECTURE_KEYS, "architecture")
    if "blocks" not in architecture:
        raise ValueError("architecture needs 'blocks': a list of blocks, e.g. [{filters: 32}]")
    where = "architecture 'block_defaults'"
    defaults = block_items(architecture.get("block_defaults") or {}, conv.BLOCK_DEFAULT_KEYS, where)
    blocks = conv.parse_blocks(
        architecture["blocks"],
        "architecture 'blocks'",
        "architecture block",
        defaults=conv.block_values(defaults, where),
    )
    values: dict[str, Any] = {"blocks": blocks}
    if "rescale" in architecture:
        values["rescale"] = _rescale(architecture["rescale"])
    if architecture.get("head") is not None:
        values["head"] = parse_head(architecture["head"], "architecture 'head'")
    if "output" in architecture:
        values["output"] = parse_output(architecture["output"], "architecture")
    return CnnArchitecture(**values)


def minimum_input_size(architecture: Mapping[str, Any] | CnnArchitecture) -> int:
    """Return the smallest side length of a square input the architecture can take.

    Every valid convolution and pooling window must fit in what reaches it, so
    that each layer outputs at least one pixel.

    Raises:
        ValueError: if the architecture is invalid (see :func:`parse_architecture`).
    """
    return max(conv.minimum_sizes(_windows(parse_architecture(architecture))))


def build_cnn(
    architecture: Mapping[str, Any] | CnnArchitecture,
    *,
    input_shape: tuple[int, int, int],
    num_classes: int,
    name: str = "cnn",
) -> keras.Model:
    """Build a functional Keras CNN from an architecture dict.

    Args:
        architecture: the architecture (see the module docstring).
        input_shape: ``(height, width, channels)`` of the raw float32 pixels in
            [0, 255] that the model takes.
        num_classes: number of classes, at least 2.
        name: the model's name.

    Returns:
        An uncompiled model whose output is ``(batch, num_classes)`` class
        probabilities, or ``(batch, 1)`` probabilities of class 1 for
        ``output: sigmoid``.

    Raises:
        ValueError: for an invalid architecture or argument, or an input too
            small for the architecture (the message names the layer and gives
            the minimum input size).
    """
    config = parse_architecture(architecture)
    input_shape = _input_shape(input_shape)
    check_output(config.output, num_classes)
    conv.check_fits(
        list(_windows(config)),
        input_shape[:2],
        f"input {conv.by(input_shape[:2])} is too small for the architecture",
    )

    inputs = keras.Input(shape=input_shape, dtype="float32", name="image")
    features = inputs
    if config.rescale is not None:
        features = keras.layers.Rescaling(config.rescale, name="rescaling")(features)
    for number, block in enumerate(config.blocks, start=1):
        features = apply_layers(conv.block_layers(block, f"block{number}"), features)
    outputs = apply_layers(head_layers(config.head, config.output, num_classes), features)
    return keras.Model(inputs, outputs, name=name)


def _rescale(value: Any) -> float | None:
    if value is None:
        return None
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(
            f"architecture: 'rescale' must be a positive number (e.g. 1/255) or null; got {value!r}"
        )
    return float(value)


def _input_shape(input_shape: Any) -> tuple[int, int, int]:
    if (
        isinstance(input_shape, str | bytes)
        or not isinstance(input_shape, Sequence)
        or len(input_shape) != 3
        or any(
            isinstance(side, bool) or not isinstance(side, int) or side <= 0 for side in input_shape
        )
    ):
        raise ValueError(
            f"input_shape must be (height, width, channels), three positive ints; "
            f"got {input_shape!r}"
        )
    return tuple(input_shape)  # type: ignore[return-value]


def _windows(config: CnnArchitecture) -> list[conv.Window]:
    """The layers that change the spatial size, in model order: the blocks', then the
    head's convolution blocks'."""
    return [*conv.windows(config.blocks, "block"), *conv.windows(config.head.conv, "head_block")]
