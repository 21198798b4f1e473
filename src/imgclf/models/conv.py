"""Convolution blocks: the body of a scratch CNN and the optional start of a head.

A block is a dict; only ``filters`` is required and every other key shows its default::

    {filters: 32, kernel_size: 3, strides: 1, padding: valid, activation: relu,
     kernel_initializer: glorot_uniform, convolutions: 1, batch_norm: false,
     batch_norm_momentum: 0.99, pooling: max, pool_size: 2, dropout: 0.0}

It is, for each of its ``convolutions``: Conv2D, then BatchNormalization (if
``batch_norm``); then pooling (``max`` | ``average`` | null), then Dropout (if
``dropout`` > 0). Its layers are named ``<prefix>_conv1``, ``<prefix>_bn1``,
``<prefix>_pool`` and ``<prefix>_dropout``, the prefix being ``block1`` in a CNN's body
and ``head_block1`` in a head.

:func:`check_fits` rejects a feature map too small for the blocks (a valid convolution or
a pooling window larger than what reaches it) before Keras builds anything.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from imgclf.config import block_items
from imgclf.lazy import lazy_module
from imgclf.models import checks

keras = lazy_module("keras")

PADDINGS = ("valid", "same")
BLOCK_POOLINGS = ("max", "average", None)


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


BLOCK_KEYS = tuple(field.name for field in dataclasses.fields(ConvBlock))
BLOCK_DEFAULT_KEYS = tuple(key for key in BLOCK_KEYS if key != "filters")


@dataclasses.dataclass(frozen=True)
class Window:
    """A layer that shrinks the feature map: a convolution or a pooling window."""

    layer: str
    description: str
    size: tuple[int, int]
    strides: tuple[int, int]
    padding: str


def parse_blocks(
    blocks: Any, where: str, block_where: str, *, defaults: Mapping[str, Any] | None = None
) -> tuple[ConvBlock, ...]:
    """Validate a non-empty list of block dicts, each over ``defaults`` (already validated
    values, see :func:`block_values`; a block's own keys win).

    Messages name the list ``where`` (e.g. ``architecture 'blocks'``) and block N
    ``<block_where> N`` (e.g. ``architecture block 2``).

    Raises:
        ValueError: for an unknown key, a block without ``filters``, or a bad value.
    """
    return tuple(
        _parse_block(block, defaults or {}, f"{block_where} {number}")
        for number, block in enumerate(checks.non_empty_list(blocks, where), start=1)
    )


def block_values(settings: Mapping[str, Any], where: str) -> dict[str, Any]:
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


def _parse_block(block: Any, defaults: Mapping[str, Any], where: str) -> ConvBlock:
    block = block_items(block, BLOCK_KEYS, where)
    if "filters" not in block:
        raise ValueError(f"{where} needs 'filters' (the number of convolution filters)")
    values = {**defaults, **block_values(block, where)}
    return ConvBlock(filters=checks.positive_int(block["filters"], "filters", where), **values)


def block_layers(block: ConvBlock, prefix: str) -> list[keras.layers.Layer]:
    """The layers of one block, in order, named after ``prefix``."""
    layers: list[keras.layers.Layer] = []
    for convolution in range(1, block.convolutions + 1):
        layers.append(
            keras.layers.Conv2D(
                block.filters,
                block.kernel_size,
                strides=block.strides,
                padding=block.padding,
                activation=block.activation,
                kernel_initializer=block.kernel_initializer,
                name=f"{prefix}_conv{convolution}",
            )
        )
        if block.batch_norm:
            layers.append(
                keras.layers.BatchNormalization(
                    momentum=block.batch_norm_momentum, name=f"{prefix}_bn{convolution}"
                )
            )
    if block.pooling == "max":
        layers.append(keras.layers.MaxPooling2D(block.pool_size, name=f"{prefix}_pool"))
    elif block.pooling == "average":
        layers.append(keras.layers.AveragePooling2D(block.pool_size, name=f"{prefix}_pool"))
    if block.dropout > 0:
        layers.append(keras.layers.Dropout(block.dropout, name=f"{prefix}_dropout"))
    return layers


def windows(blocks: Sequence[ConvBlock], prefix: str) -> Iterator[Window]:
    """The layers of ``blocks`` that change the spatial size, in model order; block N's
    layers are named ``<prefix>N_...``."""
    for number, block in enumerate(blocks, start=1):
        name = f"{prefix}{number}"
        for convolution in range(1, block.convolutions + 1):
            yield Window(
                layer=f"{name}_conv{convolution}",
                description=f"{by(block.kernel_size)} convolution, {block.padding} padding",
                size=block.kernel_size,
                strides=block.strides,
                padding=block.padding,
            )
        if block.pooling is not None:
            yield Window(
                layer=f"{name}_pool",
                description=f"{by(block.pool_size)} {block.pooling} pooling",
                size=block.pool_size,
                strides=block.pool_size,
                padding="valid",
            )


def minimum_sizes(all_windows: Iterable[Window]) -> tuple[int, int]:
    """The smallest (height, width) for which every window outputs at least one pixel."""
    minimum = [1, 1]
    for window in reversed(list(all_windows)):
        for axis in (0, 1):
            # Inverts _output_side: the smallest input length giving `minimum[axis]` outputs.
            reach = window.size[axis] if window.padding == "valid" else 1
            minimum[axis] = (minimum[axis] - 1) * window.strides[axis] + reach
    return minimum[0], minimum[1]


def check_fits(all_windows: Sequence[Window], sides: tuple[int, int], what: str) -> None:
    """Raise ``ValueError`` unless a ``sides`` (height, width) map passes every window.

    ``what`` names the map and its layers in the message, e.g. ``input 8x8 is too small
    for the architecture``; the message names the layer that would output nothing and the
    smallest map that works.
    """
    for window in all_windows:
        outputs = (_output_side(sides[0], window, 0), _output_side(sides[1], window, 1))
        if min(outputs) < 1:
            height, width = minimum_sizes(all_windows)
            raise ValueError(
                f"{what}: layer {window.layer} ({window.description}) gets a {by(sides)} "
                f"input and would output nothing. It must be at least {height}x{width} "
                "(height x width)"
            )
        sides = outputs


def _output_side(side: int, window: Window, axis: int) -> int:
    """Keras' output length along ``axis`` for an input of length ``side`` (<= 0: none)."""
    if window.padding == "same":
        return -(-side // window.strides[axis])
    return (side - window.size[axis]) // window.strides[axis] + 1


def by(size: Sequence[int]) -> str:
    """``"3x2"`` for a (height, width) pair."""
    return f"{size[0]}x{size[1]}"
