"""Tests for imgclf.imaging.augment."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tensorflow as tf

from imgclf.imaging.augment import (
    VALID_KEYS,
    AugmentationConfig,
    _projective_transforms,
    augment_batch,
    check_box_augmentation,
    parse_augmentation,
)

SEED = tf.constant([3, 7], dtype=tf.int64)
SINGLE_KEY_CONFIGS = [
    {"rotation": 0.1},
    {"zoom": 0.3},
    {"width_shift": 0.2},
    {"height_shift": 0.2},
    {"shear": 0.3},
    {"horizontal_flip": True},
    {"vertical_flip": True},
    {"brightness": [0.5, 1.5]},
    {"contrast": 0.5},
]


@pytest.fixture(scope="module")
def images() -> tf.Tensor:
    """Sixteen random 12x10 RGB images with values in [0, 255]."""
    generator = np.random.default_rng(0)
    return tf.constant(generator.uniform(0, 255, (16, 12, 10, 3)).astype(np.float32))


@pytest.mark.parametrize("config", [None, {}])
def test_empty_config_means_no_augmentation(images: tf.Tensor, config: object) -> None:
    assert parse_augmentation(config).is_identity  # type: ignore[arg-type]
    np.testing.assert_array_equal(augment_batch(images, SEED, config), images)  # type: ignore[arg-type]


def test_parse_full_config() -> None:
    config = parse_augmentation(
        {
            "rotation": 0.2,
            "zoom": 0.5,
            "width_shift": 0.1,
            "height_shift": 0.1,
            "shear": 0.2,
            "horizontal_flip": True,
            "vertical_flip": False,
            "brightness": [0.8, 1.2],
            "contrast": 0.3,
            "fill_mode": "constant",
            "fill_value": 128,
            "interpolation": "nearest",
        }
    )
    assert config.brightness == (0.8, 1.2)
    assert config.fill_value == 128.0
    assert config.has_geometry and not config.is_identity
    assert parse_augmentation(config) is config
    with pytest.raises(AttributeError):
        config.zoom = 0.1  # type: ignore[misc]


def test_unknown_key_lists_valid_keys() -> None:
    with pytest.raises(
        ValueError, match=r"unknown key\(s\) in augmentation: .*rotation_range"
    ) as error:
        parse_augmentation({"rotation_range": 20})
    assert all(key in str(error.value) for key in VALID_KEYS)


@pytest.mark.parametrize(
    "config",
    [
        {"rotation": -0.1},
        {"rotation": True},
        {"rotation": "0.1"},
        {"zoom": 1.0},
        {"width_shift": 1.5},
        {"height_shift": float("nan")},
        {"shear": float("inf")},
        {"contrast": 1.5},
        {"horizontal_flip": "yes"},
        {"vertical_flip": 1},
        {"brightness": 0.2},
        {"brightness": [1.2, 0.8]},
        {"brightness": [-0.1, 1.0]},
        {"brightness": "ab"},
        {"fill_mode": "mirror"},
        {"fill_value": None},
        {"interpolation": "bicubic"},
    ],
)
def test_bad_values_raise(config: dict) -> None:
    key = next(iter(config))
    with pytest.raises(ValueError, match=key):
        parse_augmentation(config)


def test_non_mapping_config_raises() -> None:
    with pytest.raises(ValueError, match="mapping"):
        parse_augmentation([("rotation", 0.1)])  # type: ignore[arg-type]


@pytest.mark.parametrize("config", SINGLE_KEY_CONFIGS, ids=lambda config: next(iter(config)))
def test_each_key_alone_changes_pixels(images: tf.Tensor, config: dict) -> None:
    augmented = augment_batch(images, SEED, config)
    assert augmented.shape == images.shape
    assert augmented.dtype == tf.float32
    assert not np.allclose(augmented, images)
    assert float(tf.reduce_min(augmented)) >= 0.0
    assert float(tf.reduce_max(augmented)) <= 255.0


@pytest.mark.parametrize("config", SINGLE_KEY_CONFIGS, ids=lambda config: next(iter(config)))
def test_each_image_gets_its_own_parameters(images: tf.Tensor, config: dict) -> None:
    augmented = augment_batch(tf.repeat(images[:1], 16, axis=0), SEED, config).numpy()
    distinct = {augmented[position].tobytes() for position in range(16)}
    assert len(distinct) >= 2


@pytest.mark.parametrize(("key", "axis"), [("horizontal_flip", 2), ("vertical_flip", 1)])
def test_flips_are_exact_mirrors(images: tf.Tensor, key: str, axis: int) -> None:
    for seed in (SEED, tf.constant([5, 9], dtype=tf.int32)):
        augmented = augment_batch(images, seed, {key: True}).numpy()
        original = images.numpy()
        mirrored = np.flip(original, axis=axis)
        flipped = [np.array_equal(augmented[i], mirrored[i]) for i in range(16)]
        kept = [np.array_equal(augmented[i], original[i]) for i in range(16)]
        assert all(is_flipped != is_kept for is_flipped, is_kept in zip(flipped, kept, strict=True))
        assert any(flipped) and any(kept)


def test_same_seed_same_output_different_seed_different_output(images: tf.Tensor) -> None:
    config = {"rotation": 0.1, "zoom": 0.2, "horizontal_flip": True, "brightness": [0.8, 1.2]}
    first = augment_batch(images, SEED, config)
    again = augment_batch(images, tf.constant([3, 7], dtype=tf.int64), config)
    other = augment_batch(images, tf.constant([4, 7], dtype=tf.int64), config)
    np.testing.assert_array_equal(first, again)
    assert not np.allclose(first, other)


def test_works_inside_tf_function_with_unknown_batch_size(images: tf.Tensor) -> None:
    config = parse_augmentation({"rotation": 0.05, "contrast": 0.2})
    signature = [
        tf.TensorSpec([None, 12, 10, 3], tf.float32),
        tf.TensorSpec([2], tf.int64),
    ]
    augment = tf.function(lambda batch, seed: augment_batch(batch, seed, config), signature)
    np.testing.assert_allclose(augment(images[:5], SEED), augment_batch(images[:5], SEED, config))


def test_constant_fill_uses_fill_value() -> None:
    grey = tf.fill([8, 16, 16, 1], 100.0)
    config = {"zoom": 0.9, "fill_mode": "constant", "fill_value": 7}
    augmented = augment_batch(grey, SEED, config).numpy()
    assert np.any(augmented == 7.0)
    assert np.any(augmented == 100.0)


def test_brightness_scales_by_a_factor_in_range() -> None:
    grey = tf.fill([16, 4, 4, 1], 100.0)
    augmented = augment_batch(grey, SEED, {"brightness": [0.5, 0.9]}).numpy()
    per_image = augmented.reshape(16, -1)
    assert np.all(per_image.min(axis=1) == per_image.max(axis=1))
    assert np.all((per_image >= 50.0) & (per_image <= 90.0))


def test_contrast_keeps_the_channel_mean(images: tf.Tensor) -> None:
    mid_range = images * 0.2 + 100.0
    augmented = augment_batch(mid_range, SEED, {"contrast": 0.5})
    np.testing.assert_allclose(
        tf.reduce_mean(augmented, axis=(1, 2)), tf.reduce_mean(mid_range, axis=(1, 2)), atol=1e-3
    )


def test_transform_parameters_stay_within_limits() -> None:
    config = AugmentationConfig(rotation=0.125, zoom=0.5)
    streams = tf.random.experimental.stateless_split(SEED, 9)
    transforms = _projective_transforms(config, streams, tf.constant(256), tf.constant([32, 32]))
    a0, a1, b0 = transforms[:, 0], transforms[:, 1], transforms[:, 3]
    scales = tf.sqrt(a0**2 + b0**2).numpy()
    angles = np.arctan2(b0.numpy(), a0.numpy())
    assert scales.min() >= 0.5 - 1e-5 and scales.max() <= 1.5 + 1e-5
    assert scales.min() < 0.6 and scales.max() > 1.4
    assert np.abs(angles).max() <= math.pi / 4 + 1e-5
    assert np.abs(angles).max() > math.pi / 4 * 0.9
    np.testing.assert_allclose(a1, -b0, atol=1e-5)


def _bright_box(image: np.ndarray) -> list[float]:
    """The bounds of the bright pixels, as fractions (right and bottom exclusive)."""
    rows, columns = np.nonzero(image[..., 0] > 127)
    height, width = image.shape[:2]
    return [
        columns.min() / width,
        rows.min() / height,
        (columns.max() + 1) / width,
        (rows.max() + 1) / height,
    ]


@pytest.mark.parametrize(
    "config",
    [
        {"horizontal_flip": True, "vertical_flip": True},
        {"width_shift": 0.2, "height_shift": 0.2},
        {"zoom": 0.3},
        {"zoom": 0.2, "width_shift": 0.1, "horizontal_flip": True, "brightness": [0.9, 1.0]},
    ],
)
def test_boxes_move_with_their_images(config):
    images = np.zeros((8, 40, 60, 1), np.float32)
    boxes = np.zeros((8, 4), np.float32)
    random = np.random.default_rng(1)
    for image, box in zip(images, boxes):
        left, top = random.integers(5, 25), random.integers(5, 15)
        right, bottom = left + random.integers(10, 25), top + random.integers(8, 18)
        image[top:bottom, left:right] = 255
        box[:] = [left / 60, top / 40, right / 60, bottom / 40]
    settings = {**config, "fill_mode": "constant", "interpolation": "nearest"}
    moved_images, moved_boxes = augment_batch(images, tf.constant([3, 4]), settings, boxes)
    moved_images, moved_boxes = moved_images.numpy(), moved_boxes.numpy()
    assert not np.allclose(moved_boxes, boxes)  # something moved
    for image, box in zip(moved_images, moved_boxes):
        # the box and the moved rectangle agree to within a pixel (nearest resampling)
        np.testing.assert_allclose(box, _bright_box(image), atol=1.01 / 40)


def test_a_box_variant_cannot_rotate_or_shear():
    images, boxes = np.zeros((1, 8, 8, 1), np.float32), np.full((1, 4), 0.5, np.float32)
    with pytest.raises(ValueError, match=r"rotation or shear.*Set training.augmentation"):
        augment_batch(images, tf.constant([0, 0]), {"rotation": 0.1, "shear": 0.1}, boxes)
    check_box_augmentation({"zoom": 0.1, "horizontal_flip": True}, "transfer.s3")  # no error
