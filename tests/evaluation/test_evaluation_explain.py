"""Grad-CAM and activation maps, above all on models that nest their backbone as a layer."""

from __future__ import annotations

import keras
import numpy as np
import pytest
from tests.conftest import transfer_model

from imgclf.evaluation import explain

IMAGES = np.random.default_rng(0).uniform(0, 255, (3, 64, 64, 1)).astype("float32")


@pytest.fixture(scope="module")
def nested_model() -> keras.Model:
    return transfer_model(size=64).model


def test_the_naive_gradient_model_of_a_nested_backbone_is_disconnected(nested_model):
    inner = nested_model.get_layer("backbone").get_layer("Conv_1")
    with pytest.raises(ValueError, match="not connected"):
        keras.Model(nested_model.inputs, [inner.output, nested_model.output])


def test_grad_cam_reaches_inside_a_nested_backbone(nested_model):
    layer = explain.grad_cam_layer(nested_model, min_map_size=4)
    assert layer[0] == "backbone"
    assert explain.map_size(nested_model, layer) == (4, 4)  # the 2x2 last conv is skipped

    heat, probabilities = explain.grad_cam(nested_model, IMAGES, layer)

    assert heat.shape == (3, 4, 4)
    assert heat.min() >= 0 and heat.max() <= 1
    np.testing.assert_allclose(probabilities, nested_model.predict(IMAGES, verbose=0), atol=1e-5)


def test_probed_activations_are_the_backbone_layer_outputs(nested_model):
    first, last = explain.first_and_last_conv(nested_model)
    assert first == ("backbone", "Conv1") and last == ("backbone", "Conv_1")
    backbone = nested_model.get_layer("backbone")
    preprocessed = nested_model.get_layer("preprocessing")(IMAGES)
    expected = keras.Model(backbone.inputs, backbone.get_layer("Conv1").output)(preprocessed)
    np.testing.assert_allclose(
        explain.activations(nested_model, IMAGES, first), expected, atol=1e-4
    )


def evidence_model(nested: bool) -> keras.Model:
    """Class 1's probability grows with the mean brightness of the image, class 0's falls."""
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(
        1, 1, activation="relu", kernel_initializer="ones", bias_initializer="zeros", name="conv"
    )
    if nested:
        inner = keras.Input((8, 8, 1))
        features = keras.Model(inner, conv(inner), name="backbone")(inputs)
    else:
        features = conv(inputs)
    pooled = keras.layers.GlobalAveragePooling2D()(features)
    dense = keras.layers.Dense(
        2, activation="softmax", kernel_initializer=keras.initializers.Constant([[-0.01, 0.01]])
    )
    return keras.Model(inputs, dense(pooled))


@pytest.mark.parametrize("nested", [False, True])
def test_grad_cam_marks_the_pixels_that_raise_the_class(nested):
    model = evidence_model(nested)
    image = np.zeros((1, 8, 8, 1), "float32")
    image[0, :3, :3] = 255  # the only evidence: a bright top-left corner
    path = ("backbone", "conv") if nested else ("conv",)

    raised, _ = explain.grad_cam(model, image, path, class_ids=[1])
    lowered, _ = explain.grad_cam(model, image, path, class_ids=[0])

    expected = np.zeros((8, 8))
    expected[:3, :3] = 1
    np.testing.assert_allclose(raised[0], expected, atol=1e-6)
    assert not lowered.any()  # brightness only lowers class 0: nothing to show


def test_a_layer_path_that_names_no_layer_lists_the_conv_layers(nested_model):
    assert explain.parse_layer_path(nested_model, "backbone/block_15_project") == (
        "backbone",
        "block_15_project",
    )
    with pytest.raises(ValueError, match=r"no layer 'backbone/conv9'.*Conv_1"):
        explain.parse_layer_path(nested_model, "backbone/conv9")


def test_a_model_without_convolutions_cannot_be_explained():
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2, activation="softmax")(inputs))
    with pytest.raises(ValueError, match="no Conv2D layer"):
        explain.grad_cam_layer(model, 4)


def test_the_pooling_after_the_last_conv_is_found_inside_and_outside_a_nested_backbone():
    model = evidence_model(nested=True)
    pooled = explain.pooling_after(model, ("backbone", "conv"))
    assert pooled == (model.layers[-2].name,)  # the global pooling on top of the backbone
    image = np.full((1, 8, 8, 1), 2.0, "float32")
    image[0, 0, 0] = 66.0
    # a ones kernel and relu: the conv returns the image; global average pooling its mean
    np.testing.assert_allclose(explain.activations(model, image, pooled), [[3.0]], atol=1e-5)


def test_a_max_pooled_last_conv_gives_its_pooled_map_and_a_flattened_one_gives_none():
    inputs = keras.Input((8, 8, 1))
    conv = keras.layers.Conv2D(2, 3, padding="same", name="conv")(inputs)
    pooled = keras.layers.MaxPooling2D(2, name="pool")(keras.layers.ReLU(name="relu")(conv))
    outputs = keras.layers.Dense(2)(keras.layers.Flatten()(pooled))
    model = keras.Model(inputs, outputs)
    assert explain.pooling_after(model, ("conv",)) == ("pool",)
    assert explain.activations(model, IMAGES[:1, :8, :8], ("pool",)).shape == (1, 4, 4, 2)

    flat = keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(conv)))
    assert explain.pooling_after(flat, ("conv",)) is None
