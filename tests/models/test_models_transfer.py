"""Backbones, their preprocessing inside the model, transfer heads and unfreezing."""

from __future__ import annotations

import urllib.error

import keras
import numpy as np
import pytest
from tests.conftest import transfer_model

from imgclf.models.backbones import (
    BackboneWeightsUnavailable,
    build_backbone,
    parse_backbone,
)
from imgclf.models.summary import count_parameters
from imgclf.models.transfer import unfreeze_backbone


def test_resnet50_with_its_last_6_layers_unfrozen_trains_s0s_1055744_backbone_parameters():
    model = transfer_model("resnet50").model
    assert count_parameters(model.get_layer("backbone"))["trainable"] == 0
    counts = unfreeze_backbone(model, {"last_layers": 6})
    assert counts == {"total": 23_587_712, "trainable": 1_055_744, "non_trainable": 22_531_968}
    # BatchNorm kept frozen: conv5_block3_3_conv's 1,050,624 only
    assert unfreeze_backbone(model, {"last_layers": 6, "freeze_batch_norm": True})["trainable"] == (
        512 * 2048 + 2048
    )


def test_unfreezing_from_a_named_layer_with_batch_norm_frozen():
    model = transfer_model("mobilenet_v2").model
    unfreeze_backbone(model, {"from_layer": "block_16_expand", "freeze_batch_norm": True})
    layers = model.get_layer("backbone").layers
    start = [layer.name for layer in layers].index("block_16_expand")
    for layer in layers[1:start]:
        assert not layer.trainable, layer.name
    for layer in layers[start:]:
        assert layer.trainable is not isinstance(layer, keras.layers.BatchNormalization)


@pytest.mark.parametrize(
    ("unfreeze", "message"),
    [
        ({"from_layer": "block_99"}, "unfreeze.from_layer='block_99' is not a layer"),
        ({"last_layers": 10_000}, "unfreeze.last_layers=10000 but the backbone has"),
        ({"last_layers": 0}, "'last_layers' must be a positive int"),
        ({"last": 3}, r"unknown key\(s\) in unfreeze: last"),
    ],
)
def test_bad_unfreeze_settings_are_refused(unfreeze, message):
    with pytest.raises(ValueError, match=message):
        unfreeze_backbone(transfer_model().model, unfreeze)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("resnet50", keras.applications.resnet50.preprocess_input),
        ("mobilenet_v2", lambda rgb: rgb / 127.5 - 1.0),
        ("vgg16", keras.applications.vgg16.preprocess_input),
        ("efficientnet_b0", lambda rgb: rgb),
    ],
)
def test_each_backbone_gets_its_own_preprocessing_and_grey_becomes_three_channels(name, expected):
    extractor = transfer_model(name).extractor
    preprocessing = extractor.get_layer("preprocessing")
    grey = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 1)).astype("float32")
    result = keras.ops.convert_to_numpy(preprocessing(grey))
    assert result.shape == (2, 32, 32, 3)
    np.testing.assert_allclose(result, expected(np.repeat(grey, 3, axis=-1)), atol=1e-4)


def test_the_head_trained_on_features_is_the_whole_models_head_and_it_reloads(tmp_path):
    network = transfer_model("mobilenet_v2", channels=3)
    images = np.random.default_rng(1).uniform(0, 255, (6, 32, 32, 3)).astype("float32")
    features = network.extractor.predict(images, verbose=0)
    network.head.compile("adam", "sparse_categorical_crossentropy")
    network.head.fit(features, np.array([0, 1, 2, 0, 1, 2]), epochs=2, verbose=0)
    whole = network.model.predict(images, verbose=0)
    np.testing.assert_allclose(whole, network.head.predict(features, verbose=0), atol=1e-6)

    network.model.save(tmp_path / "model.keras")
    reloaded = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    np.testing.assert_allclose(reloaded.predict(images, verbose=0), whole, atol=1e-6)
    assert [layer.name for layer in reloaded.layers][:3] == ["image", "preprocessing", "backbone"]


def test_cut_at_ends_the_backbone_at_that_layer():
    network = build_backbone(
        {"name": "resnet50", "weights": None, "cut_at": "conv3_block4_out"}, image_size=(64, 64)
    )
    assert network.layers[-1].name == "conv3_block4_out"
    assert network.output.shape[1:] == (8, 8, 512)
    with pytest.raises(ValueError, match=r"backbone.cut_at='nowhere': resnet50 has no such layer"):
        build_backbone(
            {"name": "resnet50", "weights": None, "cut_at": "nowhere"}, image_size=(32, 32)
        )


def test_cut_at_activation_n_counts_activation_layers_from_1_as_s4_did():
    network = build_backbone(
        {"name": "resnet50", "weights": None, "cut_at": {"activation": 37}}, image_size=(64, 64)
    )
    assert network.layers[-1].name == "conv4_block5_out"
    assert network.output.shape[1:] == (4, 4, 1024)
    with pytest.raises(ValueError, match="resnet50 has 49 activation layers"):
        build_backbone(
            {"name": "resnet50", "weights": None, "cut_at": {"activation": 50}},
            image_size=(32, 32),
        )


def test_cut_at_drop_last_removes_the_last_layers_as_s2_did():
    whole = build_backbone({"name": "mobilenet", "weights": None}, image_size=(64, 64))
    cut = build_backbone(
        {"name": "mobilenet", "weights": None, "cut_at": {"drop_last": 4}}, image_size=(64, 64)
    )
    assert [layer.name for layer in whole.layers][-4:] == [
        "conv_dw_13_relu",
        "conv_pw_13",
        "conv_pw_13_bn",
        "conv_pw_13_relu",
    ]
    assert cut.layers[-1].name == "conv_dw_13_bn"
    assert len(cut.layers) == len(whole.layers) - 4
    with pytest.raises(ValueError, match=r"has 85 layers \(its input aside\); drop fewer"):
        build_backbone(
            {"name": "mobilenet", "weights": None, "cut_at": {"drop_last": 85}},
            image_size=(64, 64),
        )


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("MobileNet", lambda rgb: rgb / 127.5 - 1.0),  # S2's MobileNet (v1)
        ("mobilenet_v3_small", lambda rgb: rgb),  # rescales inside the model itself
        ("DenseNet121", keras.applications.densenet.preprocess_input),
    ],
)
def test_any_keras_application_builds_by_name_with_its_own_preprocessing(name, expected):
    network = transfer_model(name, channels=3)
    assert network.model.get_layer("backbone").count_params() > 0
    rgb = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32")
    preprocessed = network.extractor.get_layer("preprocessing")(rgb)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(preprocessed), expected(rgb), atol=1e-4)
    assert network.model.predict(rgb, verbose=0).shape == (2, 3)


def test_a_head_may_start_with_convolution_blocks():
    network = transfer_model(
        "mobilenet",
        size=64,
        head={
            "conv": [
                {"filters": 16, "padding": "same", "batch_norm": True, "pooling": None},
                {"filters": 8, "kernel_size": 1, "dropout": 0.25},
            ],
            "pooling": "global_average",
            "dense": [{"units": 8}],
        },
    )
    names = [layer.name for layer in network.head.layers]
    assert names[:7] == [
        "features",
        "head_block1_conv1",
        "head_block1_bn1",
        "head_block2_conv1",
        "head_block2_pool",
        "head_block2_dropout",
        "global_average_pool",
    ]
    assert network.head.get_layer("head_block1_conv1").kernel.shape == (3, 3, 1024, 16)
    # the same layers inside the whole model
    assert network.model.get_layer("head_block2_conv1") is network.head.get_layer(
        "head_block2_conv1"
    )


def test_a_head_too_big_for_the_feature_map_is_refused_before_keras_builds():
    with pytest.raises(ValueError) as error:
        transfer_model("mobilenet", size=64, head={"conv": [{"filters": 8}]})  # 2x2 map
    assert str(error.value) == (
        "the backbone's 2x2 feature map is too small for the head's convolution blocks (use "
        "padding: same, pooling: null, a larger image or a later cut): layer head_block1_conv1 "
        "(3x3 convolution, valid padding) gets a 2x2 input and would output nothing. It must "
        "be at least 4x4 (height x width)"
    )


def test_a_weights_file_loads_through_backbone_weights(tmp_path):
    keras.utils.set_random_seed(7)
    saved = build_backbone({"name": "mobilenet_v2", "weights": None}, image_size=(32, 32))
    path = tmp_path / "mobilenet_v2_notop.weights.h5"
    saved.save_weights(path)
    keras.utils.set_random_seed(8)
    loaded = build_backbone({"name": "mobilenet_v2", "weights": str(path)}, image_size=(32, 32))
    for expected, actual in zip(saved.get_weights(), loaded.get_weights(), strict=True):
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize(
    ("backbone", "message"),
    [
        (
            {"name": "resnet51"},
            "backbone.name='resnet51' is not a keras.applications model; did you mean ResNet50",
        ),
        ({"name": "yolo"}, "the models are: ConvNeXtBase, .*, Xception"),
        ({"cut_at": {"activation": 0}}, "backbone.cut_at: 'activation' must be a positive int"),
        ({"cut_at": {"layer": 3}}, r"unknown key\(s\) in backbone.cut_at: layer"),
        ({"cut_at": {"activation": 3, "drop_last": 2}}, "gives both activation and drop_last"),
        ({"cut_at": {}}, "backbone.cut_at must be a layer name"),
        ({"cut_at": 7}, r"\{activation: N\} \(the N-th activation layer\)"),
        ({"weights": "missing/file.h5"}, "there is no weights file at 'missing/file.h5'"),
        ({"weights": 3}, "backbone.weights must be imagenet, none or the path"),
        ({"trainable": True}, r"unknown key\(s\) in backbone: trainable"),
    ],
)
def test_bad_backbone_settings_are_refused(backbone, message):
    with pytest.raises(ValueError, match=message):
        parse_backbone(backbone)


def test_a_null_cut_key_is_no_cut_key():
    cut = {"activation": None, "drop_last": 4}
    assert parse_backbone({"cut_at": cut}).cut_at == {"drop_last": 4}


def test_none_means_random_weights():
    assert parse_backbone({"weights": "none"}).weights is None
    assert parse_backbone({"weights": None}).weights is None


def test_imagenet_weights_without_a_network_fail_with_what_to_set(tmp_path, monkeypatch):
    from keras.src.backend import config
    from keras.src.utils import file_utils

    def no_network(*args, **kwargs):
        raise urllib.error.URLError("[Errno -2] Name or service not known")

    monkeypatch.setattr(config, "keras_home", lambda: str(tmp_path))  # nothing cached
    monkeypatch.setattr(file_utils, "urlretrieve", no_network)
    with pytest.raises(BackboneWeightsUnavailable) as raised:
        build_backbone({"name": "resnet50", "weights": "imagenet"}, image_size=(32, 32))
    message = str(raised.value)
    assert "backbone.weights is 'imagenet'" in message
    assert "resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5" in message
    assert "backbone.weights=none" in message
    assert "models" in message
