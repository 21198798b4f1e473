"""Tests for imgclf.models.cnn and imgclf.models.summary."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import yaml

from imgclf.models import build_cnn, count_parameters, minimum_input_size, parse_architecture

# The seed study's architectures, written as in a Kedro parameter file.
S0_SHALLOW = yaml.safe_load(
    """
    rescale: 0.00392156862745098
    block_defaults:
      kernel_size: 2
      activation: relu
      padding: valid
      batch_norm: true
      pooling: max
      pool_size: 2
    blocks:
      - filters: 32
      - filters: 64
      - filters: 128
    head:
      pooling: flatten
      dropout: 0.5
      dense:
        - {units: 150, activation: relu}
    output: softmax
    """
)
S0_DEEP = yaml.safe_load(
    """
    block_defaults:
      kernel_size: 2
      batch_norm: true
    blocks:
      - filters: 32
      - filters: 64
      - filters: 128
      - filters: 256
      - filters: 512
      - {filters: 512, pooling: null}
    head:
      dense:
        - units: 150
    """
)
S1_BASE = yaml.safe_load(
    """
    block_defaults:
      kernel_size: [3, 3]
      padding: same
      kernel_initializer: he_uniform
      dropout: 0.2
    blocks:
      - filters: 32
      - filters: 64
      - filters: 128
    head:
      dense:
        - {units: 256, kernel_initializer: he_uniform, dropout: 0.5}
    output: sigmoid
    """
)
TINY = {
    "block_defaults": {"padding": "same", "batch_norm": True},
    "blocks": [{"filters": 4}, {"filters": 8, "convolutions": 2, "dropout": 0.1}],
    "head": {"pooling": "global_average", "dense": [{"units": 8, "dropout": 0.2}]},
}


def _pixels(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0, 255, shape).astype(np.float32)


def _predict(model: keras.Model, images: np.ndarray) -> np.ndarray:
    return np.asarray(model(images, training=False))


@pytest.mark.parametrize(
    ("architecture", "input_shape", "num_classes", "total", "non_trainable"),
    [
        pytest.param(S0_SHALLOW, (128, 128, 3), 12, 4_364_426, 448, id="S0-shallow"),
        pytest.param(S0_DEEP, (128, 128, 3), 12, 2_061_962, 3_008, id="S0-deep"),
        pytest.param(S1_BASE, (200, 200, 3), 2, 20_573_761, 0, id="S1-base"),
    ],
)
def test_seed_study_parameter_counts(
    architecture: dict, input_shape: tuple, num_classes: int, total: int, non_trainable: int
) -> None:
    model = build_cnn(architecture, input_shape=input_shape, num_classes=num_classes)
    counts = count_parameters(model)
    assert counts == {
        "total": total,
        "trainable": total - non_trainable,
        "non_trainable": non_trainable,
    }
    assert counts["total"] == model.count_params()


def test_s0_shallow_layer_order_and_names() -> None:
    model = build_cnn(S0_SHALLOW, input_shape=(128, 128, 3), num_classes=12)
    layers = [(layer.name, type(layer).__name__) for layer in model.layers]
    block = [
        ("block{}_conv1", "Conv2D"),
        ("block{}_bn1", "BatchNormalization"),
        ("block{}_pool", "MaxPooling2D"),
    ]
    assert layers == [
        ("image", "InputLayer"),
        ("rescaling", "Rescaling"),
        *[(name.format(number), kind) for number in (1, 2, 3) for name, kind in block],
        ("flatten", "Flatten"),
        ("head_dropout", "Dropout"),
        ("head_dense1", "Dense"),
        ("predictions", "Dense"),
    ]
    conv = model.get_layer("block1_conv1")
    assert (conv.kernel_size, conv.padding, conv.strides) == ((2, 2), "valid", (1, 1))
    assert model.get_layer("head_dropout").rate == 0.5
    assert model.get_layer("predictions").activation.__name__ == "softmax"


def test_s1_layer_settings_and_sigmoid_output() -> None:
    model = build_cnn(S1_BASE, input_shape=(32, 32, 3), num_classes=2)
    names = [layer.name for layer in model.layers]
    assert names[2:6] == ["block1_conv1", "block1_pool", "block1_dropout", "block2_conv1"]
    assert names[-4:] == ["flatten", "head_dense1", "head_dense1_dropout", "predictions"]
    conv = model.get_layer("block3_conv1")
    assert conv.padding == "same"
    assert type(conv.kernel_initializer).__name__ == "HeUniform"
    assert model.get_layer("head_dense1_dropout").rate == 0.5
    predictions = _predict(model, _pixels((5, 32, 32, 3)))
    assert predictions.shape == (5, 1)
    assert np.all((predictions >= 0) & (predictions <= 1))


def test_softmax_output_is_a_probability_distribution() -> None:
    model = build_cnn(TINY, input_shape=(16, 16, 3), num_classes=5)
    predictions = _predict(model, _pixels((7, 16, 16, 3)))
    assert predictions.shape == (7, 5)
    assert predictions.dtype == np.float32
    assert np.all(predictions >= 0)
    np.testing.assert_allclose(predictions.sum(axis=1), 1.0, rtol=1e-5)


def test_block_defaults_merge_under_each_block() -> None:
    model = build_cnn(TINY, input_shape=(16, 16, 3), num_classes=3)
    names = [layer.name for layer in model.layers]
    assert [name for name in names if name.startswith("block2")] == [
        "block2_conv1",
        "block2_bn1",
        "block2_conv2",
        "block2_bn2",
        "block2_pool",
        "block2_dropout",
    ]
    assert model.get_layer("block2_conv2").padding == "same"
    assert model.get_layer("global_average_pool") is not None
    assert "block1_dropout" not in names
    assert model.get_layer("block2_bn1").momentum == 0.99  # Keras' default


def test_batch_norm_momentum_is_configurable() -> None:
    architecture = {
        **TINY,
        "block_defaults": {**TINY["block_defaults"], "batch_norm_momentum": 0.9},
    }
    model = build_cnn(architecture, input_shape=(16, 16, 3), num_classes=3)
    assert model.get_layer("block2_bn2").momentum == pytest.approx(0.9)


def test_model_rescales_raw_pixels_inside() -> None:
    model = build_cnn(TINY, input_shape=(16, 16, 3), num_classes=3)
    rescaled = keras.Model(model.input, model.get_layer("rescaling").output)
    images = _pixels((2, 16, 16, 3))
    images[0, 0, 0] = 255.0
    images[0, 0, 1] = 0.0
    output = _predict(rescaled, images)
    assert output.min() == 0.0
    np.testing.assert_allclose(output.max(), 1.0, rtol=1e-6)
    np.testing.assert_allclose(output, images / 255.0, rtol=1e-6)


def test_rescale_null_means_no_rescaling_layer() -> None:
    model = build_cnn({**TINY, "rescale": None}, input_shape=(16, 16, 3), num_classes=3)
    assert "rescaling" not in [layer.name for layer in model.layers]


def test_grayscale_input() -> None:
    model = build_cnn(S0_SHALLOW, input_shape=(24, 20, 1), num_classes=4)
    assert model.get_layer("block1_conv1").kernel.shape == (2, 2, 1, 32)
    assert _predict(model, _pixels((3, 24, 20, 1))).shape == (3, 4)


def test_save_and_load_round_trip_gives_identical_predictions(tmp_path: Path) -> None:
    model = build_cnn(TINY, input_shape=(16, 16, 3), num_classes=3, name="tiny")
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, safe_mode=True)
    images = _pixels((4, 16, 16, 3))
    assert loaded.name == "tiny"
    np.testing.assert_array_equal(_predict(loaded, images), _predict(model, images))


def test_same_global_seed_gives_same_weights() -> None:
    def weights() -> list[np.ndarray]:
        keras.utils.set_random_seed(7)
        model = build_cnn(TINY, input_shape=(16, 16, 3), num_classes=3)
        return [weight.numpy() for weight in model.weights]

    for first, second in zip(weights(), weights(), strict=True):
        np.testing.assert_array_equal(first, second)


def test_minimum_input_size() -> None:
    # S0 deep, backwards from a 1-pixel output: conv6 needs 2; pool 4 <- conv5 5;
    # pool 10 <- conv4 11; 22 <- 23; 46 <- 47; 94 <- conv1 95.
    assert minimum_input_size(S0_DEEP) == 95
    # S0 shallow: pool3 needs 2 <- conv3 3; pool 6 <- conv2 7; pool 14 <- conv1 15.
    assert minimum_input_size(S0_SHALLOW) == 15
    # S1: same padding keeps the size; three 2x2 pools need 2 * 2 * 2 = 8.
    assert minimum_input_size(S1_BASE) == 8
    # Rectangular kernels: the larger side decides.
    assert minimum_input_size({"blocks": [{"filters": 1, "kernel_size": [5, 3]}]}) == 6


def test_head_convolution_blocks_follow_the_body_and_count_towards_the_minimum_input() -> None:
    architecture = {
        **TINY,
        "head": {**TINY["head"], "conv": [{"filters": 6, "convolutions": 2, "batch_norm": True}]},
    }
    model = build_cnn(architecture, input_shape=(24, 24, 3), num_classes=3)
    names = [layer.name for layer in model.layers]
    start = names.index("block2_dropout") + 1
    assert names[start : start + 6] == [
        "head_block1_conv1",
        "head_block1_bn1",
        "head_block1_conv2",
        "head_block1_bn2",
        "head_block1_pool",
        "global_average_pool",
    ]
    # body: same padding, two 2x2 pools (x4); head: two valid 3x3 convolutions, a 2x2 pool
    assert minimum_input_size(architecture) == 4 * (2 + 2 + 2)
    with pytest.raises(ValueError, match=r"layer head_block1_pool .* gets a 1x1 input"):
        build_cnn(architecture, input_shape=(20, 20, 3), num_classes=3)


def test_minimum_input_size_is_exact() -> None:
    build_cnn(S0_DEEP, input_shape=(95, 95, 3), num_classes=12)
    build_cnn(S0_SHALLOW, input_shape=(15, 15, 3), num_classes=12)
    with pytest.raises(ValueError, match="at least 95x95"):
        build_cnn(S0_DEEP, input_shape=(94, 95, 3), num_classes=12)
    with pytest.raises(ValueError, match="at least 15x15"):
        build_cnn(S0_SHALLOW, input_shape=(15, 14, 3), num_classes=12)


def test_input_too_small_names_the_layer_and_the_minimum() -> None:
    # 64 -> conv 63 -> pool 31 -> 30 -> 15 -> 14 -> 7 -> 6 -> 3 -> conv5 2 -> pool5 1 -> conv6: 0
    with pytest.raises(ValueError) as error:
        build_cnn(S0_DEEP, input_shape=(64, 64, 3), num_classes=12)
    message = str(error.value)
    assert message.startswith("input 64x64 is too small for the architecture: ")
    assert "layer block6_conv1 (2x2 convolution, valid padding) gets a 1x1 input" in message
    assert "must be at least 95x95 (height x width)" in message


@pytest.mark.parametrize(
    ("architecture", "message"),
    [
        ({**TINY, "optimizer": "adam"}, r"unknown key\(s\) in architecture: optimizer; valid keys"),
        (
            {"blocks": [{"filters": 8, "kernel": 3}]},
            r"unknown key\(s\) in architecture block 1: kernel; valid keys are: filters, kernel_s",
        ),
        (
            {"block_defaults": {"filters": 8}, "blocks": [{"filters": 8}]},
            r"unknown key\(s\) in architecture 'block_defaults': filters",
        ),
        (
            {**TINY, "head": {"flatten": True}},
            r"unknown key\(s\) in architecture 'head': flatten; valid keys are: pooling, dropout",
        ),
        (
            {**TINY, "head": {"dense": [{"units": 8, "activaton": "relu"}]}},
            r"unknown key\(s\) in architecture 'head' dense layer 1: activaton",
        ),
        ({"rescale": None}, "architecture needs 'blocks'"),
        ({"blocks": []}, "'blocks' must be a non-empty list"),
        (
            {"blocks": [{"filters": 8}, {"kernel_size": 3}]},
            "architecture block 2 needs 'filters'",
        ),
        ({"blocks": [{"filters": 0}]}, "block 1: 'filters' must be a positive int; got 0"),
        ({"blocks": [{"filters": 8.0}]}, "'filters' must be a positive int; got 8.0"),
        (
            {"blocks": [{"filters": 8, "pooling": "min"}]},
            "block 1: 'pooling' must be one of max, average, null; got 'min'",
        ),
        (
            {**TINY, "head": {"pooling": "average"}},
            "'head': 'pooling' must be one of flatten, global_average, global_max",
        ),
        (
            {"blocks": [{"filters": 8, "padding": "full"}]},
            "'padding' must be one of valid, same; got 'full'",
        ),
        (
            {"block_defaults": {"activation": "relux"}, "blocks": [{"filters": 8}]},
            "'block_defaults': 'activation' must be a Keras activation name .* got 'relux'",
        ),
        (
            {"blocks": [{"filters": 8, "kernel_initializer": "he"}]},
            "'kernel_initializer' must be a Keras initializer name",
        ),
        ({"blocks": [{"filters": 8, "dropout": 1.0}]}, r"'dropout' must be a number in \[0, 1\)"),
        ({"blocks": [{"filters": 8, "batch_norm": "yes"}]}, "'batch_norm' must be true or false"),
        (
            {"blocks": [{"filters": 8, "batch_norm_momentum": 1}]},
            r"'batch_norm_momentum' must be a number in \[0, 1\)",
        ),
        ({"blocks": [{"filters": 8, "kernel_size": [3, 0]}]}, "'kernel_size' must be a positive"),
        ({"blocks": [{"filters": 8, "pool_size": [2, 2, 2]}]}, "\\[height, width\\] pair"),
        ({**TINY, "head": {"dense": [{"dropout": 0.5}]}}, "'head' dense layer 1 needs 'units'"),
        (
            {**TINY, "head": {"conv": [{"filters": 8, "kernel": 3}]}},
            r"unknown key\(s\) in architecture 'head' conv block 1: kernel; valid keys are: filt",
        ),
        ({**TINY, "head": {"conv": {"filters": 8}}}, "'head' 'conv' must be a non-empty list"),
        ({**TINY, "rescale": 0}, "'rescale' must be a positive number"),
        ({**TINY, "output": "linear"}, "'output' must be one of softmax, sigmoid"),
    ],
)
def test_invalid_architecture(architecture: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_architecture(architecture)
    with pytest.raises(ValueError, match=message):
        build_cnn(architecture, input_shape=(16, 16, 3), num_classes=2)


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"num_classes": 12, "architecture": {**TINY, "output": "sigmoid"}}, "2 classes only"),
        ({"num_classes": 1}, "num_classes must be an int >= 2; got 1"),
        ({"input_shape": (16, 16)}, "input_shape must be .* three positive ints"),
        ({"input_shape": (16, 0, 3)}, "input_shape must be"),
    ],
)
def test_invalid_arguments(arguments: dict[str, Any], message: str) -> None:
    call = {"architecture": TINY, "input_shape": (16, 16, 3), "num_classes": 3, **arguments}
    with pytest.raises(ValueError, match=message):
        build_cnn(call.pop("architecture"), **call)


def test_count_parameters_of_frozen_layers_and_unbuilt_models() -> None:
    model = build_cnn(TINY, input_shape=(16, 16, 3), num_classes=3)
    before = count_parameters(model)
    model.get_layer("head_dense1").trainable = False
    after = count_parameters(model)
    assert after["total"] == before["total"]
    assert after["non_trainable"] - before["non_trainable"] == 8 * 8 + 8
    with pytest.raises(ValueError, match="not built"):
        count_parameters(keras.Sequential([keras.layers.Dense(3)]))
    with pytest.raises(ValueError, match="needs a Keras model"):
        count_parameters("model")


def test_importing_the_package_does_not_import_tensorflow() -> None:
    code = (
        "import sys, imgclf.models as models; "
        "assert 'build_cnn' in dir(models); "
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
