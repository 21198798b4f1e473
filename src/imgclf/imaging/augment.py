"""Seeded, per-image random augmentation of image batches inside ``tf.data``.

Augmentation runs in the input pipeline rather than as Keras layers in the
model (random rotation/zoom layers switch XLA off on CPU). It is configured by
a plain dict, e.g. from Kedro parameters::

    augmentation:
      rotation: 0.05          # up to +-18 degrees (fraction of a full turn)
      zoom: 0.1               # scale factor in [0.9, 1.1]
      width_shift: 0.1        # +-10 % of the width
      height_shift: 0.1
      shear: 0.1              # shear factor (tan of the angle) in [-0.1, 0.1]
      horizontal_flip: true
      vertical_flip: false
      brightness: [0.8, 1.2]  # multiply by a factor in [0.8, 1.2]
      contrast: 0.2           # contrast factor in [0.8, 1.2] around the mean
      fill_mode: reflect      # reflect | nearest | constant | wrap
      fill_value: 0           # used by fill_mode "constant"
      interpolation: bilinear # bilinear | nearest

All geometric options compose into one projective transform per image about
the image centre, applied with a single resampling
(``tf.raw_ops.ImageProjectiveTransformV3``). Random parameters come from
stateless random ops driven by an explicit seed, so a given seed always gives
the same augmentation.

With bounding boxes (fractions ``x_min, y_min, x_max, y_max`` of the image), each box
moves with its image: flips, shifts and zooms map a box to exactly the box of the moved
object (clipped to the image). Rotation and shear are refused for boxes
(:func:`check_box_augmentation`): the box of a turned object is not the turned box, and
the upright box around the turned one would teach the model boxes too large.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from imgclf.config import block_items
from imgclf.lazy import lazy_module

tf = lazy_module("tensorflow")

FILL_MODES = ("reflect", "nearest", "constant", "wrap")
INTERPOLATIONS = ("bilinear", "nearest")
PIXEL_MAX = 255.0

# Each random parameter draws from its own stream, split from the batch seed at a
# fixed position, so enabling one option never changes the draws of another.
_STREAMS = (
    "rotation",
    "zoom",
    "width_shift",
    "height_shift",
    "shear",
    "horizontal_flip",
    "vertical_flip",
    "brightness",
    "contrast",
)
_STREAM_INDEX = {name: position for position, name in enumerate(_STREAMS)}


@dataclasses.dataclass(frozen=True)
class AugmentationConfig:
    """Validated augmentation settings; the defaults mean "no augmentation".

    Attributes:
        rotation: maximum rotation as a fraction of a full turn (0.2 -> +-72 degrees).
        zoom: scale factor drawn in ``[1 - zoom, 1 + zoom]``; above 1 zooms out.
        width_shift: horizontal shift drawn in ``+-width_shift * width`` pixels.
        height_shift: vertical shift drawn in ``+-height_shift * height`` pixels.
        shear: horizontal shear factor (tan of the shear angle) drawn in ``+-shear``.
        horizontal_flip: mirror left-right with probability 1/2.
        vertical_flip: mirror top-bottom with probability 1/2.
        brightness: ``(low, high)``: multiply pixels by a factor drawn in that range.
        contrast: scale deviations from each channel's mean by a factor drawn in
            ``[1 - contrast, 1 + contrast]``.
        fill_mode: how points outside the input are filled: reflect, nearest,
            constant (with ``fill_value``) or wrap.
        fill_value: grey level for ``fill_mode="constant"``.
        interpolation: "bilinear" or "nearest" resampling.
    """

    rotation: float = 0.0
    zoom: float = 0.0
    width_shift: float = 0.0
    height_shift: float = 0.0
    shear: float = 0.0
    horizontal_flip: bool = False
    vertical_flip: bool = False
    brightness: tuple[float, float] | None = None
    contrast: float = 0.0
    fill_mode: str = "reflect"
    fill_value: float = 0.0
    interpolation: str = "bilinear"

    @property
    def has_geometry(self) -> bool:
        """Whether any geometric transform (rotation, zoom, shifts, shear, flips) is on."""
        return any(
            (
                self.rotation,
                self.zoom,
                self.width_shift,
                self.height_shift,
                self.shear,
                self.horizontal_flip,
                self.vertical_flip,
            )
        )

    @property
    def is_identity(self) -> bool:
        """Whether this configuration leaves images unchanged."""
        return not (self.has_geometry or self.brightness is not None or self.contrast)

    def describe(self) -> str:
        """The transforms that are on, e.g. ``"rotation 0.05, zoom 0.1, horizontal_flip"``,
        or ``"none"``."""
        active = [
            field.name if value is True else f"{field.name} {value}"
            for field in dataclasses.fields(self)
            if field.name in _STREAMS
            and (value := getattr(self, field.name)) not in (field.default, False)
        ]
        return ", ".join(active) or "none"


VALID_KEYS = tuple(field.name for field in dataclasses.fields(AugmentationConfig))


def parse_augmentation(
    config: Mapping[str, Any] | AugmentationConfig | None,
) -> AugmentationConfig:
    """Validate an augmentation dict and return an :class:`AugmentationConfig`.

    Args:
        config: a mapping with any of the keys in :data:`VALID_KEYS`, an
            already parsed config (returned as is), or None / {} for none.

    Raises:
        ValueError: for an unknown key (the message lists the valid ones) or a
            value of the wrong type or out of range.
    """
    if isinstance(config, AugmentationConfig):
        return config
    config = block_items(config, AugmentationConfig, "augmentation")
    values: dict[str, Any] = {}
    for key in ("rotation", "shear"):
        if key in config:
            values[key] = _number(config[key], key, minimum=0.0)
    for key in ("width_shift", "height_shift", "contrast"):
        if key in config:
            values[key] = _number(config[key], key, minimum=0.0, maximum=1.0)
    if "zoom" in config:
        values["zoom"] = _number(config["zoom"], "zoom", minimum=0.0, maximum=1.0, open_max=True)
    for key in ("horizontal_flip", "vertical_flip"):
        if key in config:
            values[key] = _boolean(config[key], key)
    if config.get("brightness") is not None:
        values["brightness"] = _brightness_range(config["brightness"])
    if "fill_mode" in config:
        values["fill_mode"] = _choice(config["fill_mode"], "fill_mode", FILL_MODES)
    if "fill_value" in config:
        values["fill_value"] = _number(config["fill_value"], "fill_value")
    if "interpolation" in config:
        values["interpolation"] = _choice(config["interpolation"], "interpolation", INTERPOLATIONS)
    return AugmentationConfig(**values)


def check_box_augmentation(config: Mapping[str, Any] | AugmentationConfig | None, where: str):
    """Raise ``ValueError`` when ``config`` rotates or shears: boxes cannot follow."""
    config = parse_augmentation(config)
    turning = [key for key in ("rotation", "shear") if getattr(config, key)]
    if turning:
        raise ValueError(
            f"{where}: a box variant cannot be augmented with {' or '.join(turning)}: the box "
            "of a turned object is not the turned box. Set training.augmentation."
            f"{' and '.join(turning)} to 0 (flips, shifts and zoom move boxes exactly)."
        )


def augment_batch(
    images: tf.Tensor,
    seed: tf.Tensor,
    config: Mapping[str, Any] | AugmentationConfig | None,
    boxes: tf.Tensor | None = None,
) -> tf.Tensor | tuple[tf.Tensor, tf.Tensor]:
    """Randomly augment a batch of images, each with its own random parameters.

    Args:
        images: float32 tensor ``(batch, height, width, channels)`` in [0, 255].
        seed: int32/int64 tensor of shape ``[2]``; the same seed and images
            always give the same output.
        config: augmentation settings (see :func:`parse_augmentation`).
        boxes: optional float32 ``(batch, 4)`` boxes, ``x_min, y_min, x_max, y_max`` as
            fractions of the image, moved with their images.

    Returns:
        A float32 tensor of the same shape, clipped to [0, 255]; with ``boxes``, the
        images and the moved boxes (clipped to [0, 1]).

    Raises:
        ValueError: for boxes with rotation or shear (:func:`check_box_augmentation`).
    """
    config = parse_augmentation(config)
    images = tf.convert_to_tensor(images, dtype=tf.float32)
    if boxes is not None:
        check_box_augmentation(config, "augmentation")
        boxes = tf.convert_to_tensor(boxes, dtype=tf.float32)
    if config.is_identity:
        return images if boxes is None else (images, boxes)
    streams = tf.random.experimental.stateless_split(tf.convert_to_tensor(seed), len(_STREAMS))
    batch_size = tf.shape(images)[0]
    if config.has_geometry:
        transforms = _projective_transforms(config, streams, batch_size, tf.shape(images)[1:3])
        images = _apply_transforms(images, transforms, config)
        if boxes is not None:
            boxes = _move_boxes(boxes, transforms, tf.shape(images)[1:3])
    if config.brightness is not None:
        images = _adjust_brightness(images, config.brightness, streams, batch_size)
    if config.contrast:
        images = _adjust_contrast(images, config.contrast, streams, batch_size)
    images = tf.clip_by_value(images, 0.0, PIXEL_MAX)
    return images if boxes is None else (images, boxes)


def _number(
    value: Any,
    key: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    open_max: bool = False,
) -> float:
    """Return ``value`` as a finite float within the bounds, or raise ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"augmentation {key!r} must be a number; got {value!r}")
    number = float(value)
    too_high = maximum is not None and (number >= maximum if open_max else number > maximum)
    if not math.isfinite(number) or (minimum is not None and number < minimum) or too_high:
        upper = "" if maximum is None else f" and {'<' if open_max else '<='} {maximum:g}"
        lower = "finite" if minimum is None else f">= {minimum:g}"
        raise ValueError(f"augmentation {key!r} must be {lower}{upper}; got {value!r}")
    return number


def _boolean(value: Any, key: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"augmentation {key!r} must be true or false; got {value!r}")
    return value


def _choice(value: Any, key: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise ValueError(f"augmentation {key!r} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


def _brightness_range(value: Any) -> tuple[float, float]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence) or len(value) != 2:
        raise ValueError(
            f"augmentation 'brightness' must be a [low, high] factor range, "
            f"e.g. [0.8, 1.2]; got {value!r}"
        )
    low = _number(value[0], "brightness", minimum=0.0)
    high = _number(value[1], "brightness", minimum=0.0)
    if low > high:
        raise ValueError(f"augmentation 'brightness' needs low <= high; got {value!r}")
    return low, high


def _uniform(streams: tf.Tensor, name: str, batch_size: tf.Tensor, low: float, high: float):
    """Draw ``batch_size`` float32 values uniformly in ``[low, high)`` from stream ``name``."""
    return tf.random.stateless_uniform(
        [batch_size], seed=streams[_STREAM_INDEX[name]], minval=low, maxval=high, dtype=tf.float32
    )


def _random_signs(streams: tf.Tensor, name: str, batch_size: tf.Tensor) -> tf.Tensor:
    """Draw +1 or -1 with equal probability, one per image."""
    coin = _uniform(streams, name, batch_size, 0.0, 1.0)
    return tf.where(coin < 0.5, -1.0, 1.0)


def _projective_transforms(
    config: AugmentationConfig,
    streams: tf.Tensor,
    batch_size: tf.Tensor,
    image_shape: tf.Tensor,
) -> tf.Tensor:
    """Build one ``(batch, 8)`` output-to-input projective transform per image.

    Output pixel ``p`` samples the input at ``centre + M (p - centre) + t`` with
    ``M = rotation @ shear @ zoom @ flips`` and ``t`` the shift in pixels.
    """
    height = tf.cast(image_shape[0], tf.float32)
    width = tf.cast(image_shape[1], tf.float32)
    ones = tf.ones([batch_size], tf.float32)
    zeros = tf.zeros([batch_size], tf.float32)

    def draw(name: str, limit: float) -> tf.Tensor:
        return _uniform(streams, name, batch_size, -limit, limit) if limit else zeros

    angle = draw("rotation", config.rotation * 2.0 * math.pi)
    scale = ones + draw("zoom", config.zoom)
    shear = draw("shear", config.shear)
    shift_x = draw("width_shift", config.width_shift) * width
    shift_y = draw("height_shift", config.height_shift) * height
    flip_x = (
        _random_signs(streams, "horizontal_flip", batch_size) if config.horizontal_flip else ones
    )
    flip_y = _random_signs(streams, "vertical_flip", batch_size) if config.vertical_flip else ones

    cos, sin = tf.cos(angle), tf.sin(angle)
    # rotation @ [[1, shear], [0, 1]] @ diag(scale * flip_x, scale * flip_y)
    a0 = cos * scale * flip_x
    a1 = (cos * shear - sin) * scale * flip_y
    b0 = sin * scale * flip_x
    b1 = (sin * shear + cos) * scale * flip_y
    centre_x = (width - 1.0) / 2.0
    centre_y = (height - 1.0) / 2.0
    a2 = centre_x + shift_x - a0 * centre_x - a1 * centre_y
    b2 = centre_y + shift_y - b0 * centre_x - b1 * centre_y
    return tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)


def _move_boxes(boxes: tf.Tensor, transforms: tf.Tensor, image_shape: tf.Tensor) -> tf.Tensor:
    """Where each box lies after its image's transform: the corners mapped from input to
    output pixels (the inverse of the output-to-input transform), their bounds, clipped to
    the image. A fraction ``f`` of the width is the pixel coordinate ``f * width - 0.5``
    (pixel centres are whole numbers, the image's left edge is -0.5)."""
    height = tf.cast(image_shape[0], tf.float32)
    width = tf.cast(image_shape[1], tf.float32)
    a0, a1, a2, b0, b1, b2 = (transforms[:, i : i + 1] for i in range(6))
    xs = tf.stack([boxes[:, 0], boxes[:, 2], boxes[:, 0], boxes[:, 2]], axis=1) * width - 0.5
    ys = tf.stack([boxes[:, 1], boxes[:, 1], boxes[:, 3], boxes[:, 3]], axis=1) * height - 0.5
    determinant = a0 * b1 - a1 * b0
    out_x = (b1 * (xs - a2) - a1 * (ys - b2)) / determinant
    out_y = (a0 * (ys - b2) - b0 * (xs - a2)) / determinant
    moved = tf.stack(
        [
            (tf.reduce_min(out_x, axis=1) + 0.5) / width,
            (tf.reduce_min(out_y, axis=1) + 0.5) / height,
            (tf.reduce_max(out_x, axis=1) + 0.5) / width,
            (tf.reduce_max(out_y, axis=1) + 0.5) / height,
        ],
        axis=1,
    )
    return tf.clip_by_value(moved, 0.0, 1.0)


def _apply_transforms(
    images: tf.Tensor, transforms: tf.Tensor, config: AugmentationConfig
) -> tf.Tensor:
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=tf.shape(images)[1:3],
        fill_value=tf.constant(config.fill_value, tf.float32),
        interpolation=config.interpolation.upper(),
        fill_mode=config.fill_mode.upper(),
    )


def _adjust_brightness(
    images: tf.Tensor, brightness: tuple[float, float], streams: tf.Tensor, batch_size: tf.Tensor
) -> tf.Tensor:
    low, high = brightness
    factors = _uniform(streams, "brightness", batch_size, low, high)
    return tf.clip_by_value(images * factors[:, tf.newaxis, tf.newaxis, tf.newaxis], 0.0, PIXEL_MAX)


def _adjust_contrast(
    images: tf.Tensor, contrast: float, streams: tf.Tensor, batch_size: tf.Tensor
) -> tf.Tensor:
    factors = _uniform(streams, "contrast", batch_size, 1.0 - contrast, 1.0 + contrast)
    means = tf.reduce_mean(images, axis=(1, 2), keepdims=True)
    return (images - means) * factors[:, tf.newaxis, tf.newaxis, tf.newaxis] + means
