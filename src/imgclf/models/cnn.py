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
        batch_norm: false           # BatchNormalization before pooling
        pooling: flatten            # flatten | global_average | global_max
        dropout: 0.0                # Dropout before the first dense layer
        dense:                      # hidden dense layers; `units` required
          - {units: 150, activation: relu, kernel_initializer: glorot_uniform, dropout: 0.0}
      output: softmax               # softmax: Dense(num_classes, softmax)
                                    # sigmoid: Dense(1, sigmoid), for 2 classes only

The model takes raw pixels (float32 in [0, 255]) and rescales them itself. A
block is, for each of its ``convolutions``: Conv2D then BatchNormalization (if
``batch_norm``); then pooling (if not null), then Dropout (if ``dropout`` > 0).
A dense layer's ``dropout`` is applied after that layer. Layers are named
``rescaling``, ``block1_conv1``, ``block1_bn1``, ``block1_pool``,
``block1_dropout``, ``flatten`` (or ``global_average_pool`` /
``global_max_pool``), ``head_dropout``, ``head_dense1``,
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
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import keras

from imgclf.config import block_items
from imgclf.models import checks
from imgclf.models.head import (
    Head,
    apply_layers,
    check_output,
    head_layers,
    parse_head,
    parse_output,
)

PADDINGS = ("valid", "same")
BLOCK_POOLINGS = ("max", "average", None)
DEFAULT_RESCALE = 1.0 / 255.0


@dataclasses.dataclass(frozen=True)
class ConvBlock:
    """One convolutional block: ``convolutions`` x [Conv2D, BatchNorm?], pooling?, Dropout?"""

    filters: int
    kernel_size: tuple[int, int] = (3, 3)
    strides: tuple[int, int] = (1, 1)
    padding: str = "valid"
    activation: str = "relu"
    kernel_initializer: str = "glorot_uniform"
    convolutions: int = 1
    batch_norm: bool = False
    batch_norm_momentum: float = 0.99
    pooling: str | None = "max"
    pool_size: tuple[int, int] = (2, 2)
    dropout: float = 0.0


@dataclasses.dataclass(frozen=True)
class CnnArchitecture:
    """A validated architecture; see the module docstring for the meaning of each field."""

    blocks: tuple[ConvBlock, ...]
    rescale: float | None = DEFAULT_RESCALE
    head: Head = dataclasses.field(default_factory=Head)
    output: str = "softmax"


ARCHITECTURE_KEYS = ("rescale", "block_defaults", "blocks", "head", "output")
BLOCK_KEYS = tuple(field.name for field in dataclasses.fields(ConvBlock))
BLOCK_DEFAULT_KEYS = tuple(key for key in BLOCK_KEYS if key != "filters")


@dataclasses.dataclass(frozen=True)
class _Window:
    """A layer that shrinks the image: a convolution or a pooling window."""

    block: int
    layer: str
    description: str
    size: tuple[int, int]
    strides: tuple[int, int]
    padding: str


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
    defaults = architecture.get("block_defaults")
    defaults = {} if defaults is None else defaults
    defaults = block_items(defaults, BLOCK_DEFAULT_KEYS, "architecture 'block_defaults'")
    default_values = _block_values(defaults, "architecture 'block_defaults'")
    blocks = tuple(
        _parse_block(block, default_values, number)
        for number, block in enumerate(
            checks.non_empty_list(architecture["blocks"], "architecture 'blocks'"), start=1
        )
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
    return max(_minimum_input_sizes(parse_architecture(architecture)))


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
    _check_input_fits(config, input_shape)

    inputs = keras.Input(shape=input_shape, dtype="float32", name="image")
    features = inputs
    if config.rescale is not None:
        features = keras.layers.Rescaling(config.rescale, name="rescaling")(features)
    for number, block in enumerate(config.blocks, start=1):
        features = _add_block(features, block, number)
    outputs = apply_layers(head_layers(config.head, config.output, num_classes), features)
    return keras.Model(inputs, outputs, name=name)


def _parse_block(block: Any, defaults: Mapping[str, Any], number: int) -> ConvBlock:
    where = f"architecture block {number}"
    block = block_items(block, BLOCK_KEYS, where)
    if "filters" not in block:
        raise ValueError(f"{where} needs 'filters' (the number of convolution filters)")
    values = {**defaults, **_block_values(block, where)}
    return ConvBlock(filters=checks.positive_int(block["filters"], "filters", where), **values)


def _block_values(settings: Mapping[str, Any], where: str) -> dict[str, Any]:
    """Validate the block settings other than ``filters`` present in ``settings``."""
    values: dict[str, Any] = {}
    for key in ("kernel_size", "strides", "pool_size"):
        if key in settings:
            values[key] = checks.size_pair(settings[key], key, where)
    if "padding" in settings:
        values["padding"] = checks.choice(settings["padding"], "padding", PADDINGS, where)
    if "activation" in settings:
        values["activation"] = checks.activation(settings["activation"], where)
    if "kernel_initializer" in settings:
        values["kernel_initializer"] = checks.initializer(settings["kernel_initializer"], where)
    if "convolutions" in settings:
        values["convolutions"] = checks.positive_int(
            settings["convolutions"], "convolutions", where
        )
    if "batch_norm" in settings:
        values["batch_norm"] = checks.boolean(settings["batch_norm"], "batch_norm", where)
    if "batch_norm_momentum" in settings:
        values["batch_norm_momentum"] = checks.fraction(
            settings["batch_norm_momentum"], "batch_norm_momentum", where
        )
    if "pooling" in settings:
        values["pooling"] = checks.choice(settings["pooling"], "pooling", BLOCK_POOLINGS, where)
    if "dropout" in settings:
        values["dropout"] = checks.fraction(settings["dropout"], "dropout", where)
    return values


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


def _windows(config: CnnArchitecture) -> Iterator[_Window]:
    """The layers that change the spatial size, in model order."""
    for number, block in enumerate(config.blocks, start=1):
        for convolution in range(1, block.convolutions + 1):
            yield _Window(
                block=number,
                layer=f"block{number}_conv{convolution}",
                description=f"{_by(block.kernel_size)} convolution, {block.padding} padding",
                size=block.kernel_size,
                strides=block.strides,
                padding=block.padding,
            )
        if block.pooling is not None:
            yield _Window(
                block=number,
                layer=f"block{number}_pool",
                description=f"{_by(block.pool_size)} {block.pooling} pooling",
                size=block.pool_size,
                strides=block.pool_size,
                padding="valid",
            )


def _output_side(side: int, window: _Window, axis: int) -> int:
    """Keras' output length along ``axis`` for an input of length ``side`` (<= 0: none)."""
    if window.padding == "same":
        return -(-side // window.strides[axis])
    return (side - window.size[axis]) // window.strides[axis] + 1


def _minimum_input_sizes(config: CnnArchitecture) -> tuple[int, int]:
    """The smallest (height, width) for which every layer outputs at least one pixel."""
    minimum = [1, 1]
    for window in reversed(list(_windows(config))):
        for axis in (0, 1):
            # Inverts _output_side: the smallest input length giving `minimum[axis]` outputs.
            reach = window.size[axis] if window.padding == "valid" else 1
            minimum[axis] = (minimum[axis] - 1) * window.strides[axis] + reach
    return minimum[0], minimum[1]


def _check_input_fits(config: CnnArchitecture, input_shape: tuple[int, int, int]) -> None:
    sides = input_shape[:2]
    for window in _windows(config):
        outputs = tuple(_output_side(side, window, axis) for axis, side in enumerate(sides))
        if min(outputs) < 1:
            height, width = _minimum_input_sizes(config)
            raise ValueError(
                f"input {_by(input_shape[:2])} is too small for the architecture: in block "
                f"{window.block}, layer {window.layer} ({window.description}) gets a "
                f"{_by(sides)} input and would output nothing. The input must be at least "
                f"{height}x{width} pixels (height x width) for this architecture"
            )
        sides = outputs


def _by(size: Sequence[int]) -> str:
    return f"{size[0]}x{size[1]}"


def _add_block(features: Any, block: ConvBlock, number: int) -> Any:
    for convolution in range(1, block.convolutions + 1):
        features = keras.layers.Conv2D(
            block.filters,
            block.kernel_size,
            strides=block.strides,
            padding=block.padding,
            activation=block.activation,
            kernel_initializer=block.kernel_initializer,
            name=f"block{number}_conv{convolution}",
        )(features)
        if block.batch_norm:
            features = keras.layers.BatchNormalization(
                momentum=block.batch_norm_momentum, name=f"block{number}_bn{convolution}"
            )(features)
    if block.pooling == "max":
        features = keras.layers.MaxPooling2D(block.pool_size, name=f"block{number}_pool")(features)
    elif block.pooling == "average":
        features = keras.layers.AveragePooling2D(block.pool_size, name=f"block{number}_pool")(
            features
        )
    if block.dropout > 0:
        features = keras.layers.Dropout(block.dropout, name=f"block{number}_dropout")(features)
    return features
