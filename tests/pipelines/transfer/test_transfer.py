"""The transfer pipeline: a feature cache shared by the no-augmentation variants, whole
models saved, ImageNet weights offline, and weights files."""

import json
import subprocess

import keras
import numpy as np
import pytest
from matplotlib.figure import Figure

from conftest import (
    KEDRO,
    PROJECT,
    TINY_TRANSFER,
    declared_pipeline,
    kedro_environment,
    kedro_run,
    run_pipeline,
    transfer_inputs,
    transfer_parameters,
    write_two_class_split,
)
from imgclf import project_parameters
from imgclf.models.backbones import build_backbone
from imgclf.pipelines import transfer
from imgclf.pipelines.transfer.nodes import resolve_variant, train_on_features
from imgclf.training.summary import check_summary
from imgclf.variants import declare_variants

IMAGE = TINY_TRANSFER["image"]
BACKBONE = TINY_TRANSFER["backbone"]
DEFAULTS = TINY_TRANSFER["defaults"]
AUGMENTATION = TINY_TRANSFER["augmentation"]


@pytest.fixture
def two_class_split_32(tmp_path):
    return write_two_class_split(tmp_path / "images", size=32)


@pytest.mark.slow
def test_every_variant_saves_the_whole_network_and_no_aug_variants_share_one_feature_cache(
    two_class_split_32, tmp_path
):
    split = two_class_split_32
    parameters = transfer_parameters(tmp_path)
    outputs = run_pipeline(
        declared_pipeline(parameters, transfer), transfer_inputs(split, tmp_path, parameters)
    )

    (cache,) = {variant.features for variant in declare_variants(parameters) if variant.features}
    assert cache.startswith("mobilenet_32px_grayscale_")
    features = outputs[f"transfer.features.{cache}"]
    for name, index in (("train", split["train"]), ("val", split["val"])):
        assert features[f"{name}_features"].shape == (len(index), 1, 1, 256)
        assert features[f"{name}_paths"].tolist() == index["path"].tolist()
        assert features[f"{name}_labels"].tolist() == [
            split["classes"].index(label) for label in index["label"]
        ]
    assert json.loads(str(features["metadata"]))["backbone"] == BACKBONE

    images = np.stack(
        [
            keras.utils.img_to_array(keras.utils.load_img(p, color_mode="grayscale"))
            for p in split["val"]["path"]
        ]
    )
    for variant in ("adam", "sgd", "adam_aug", "sgd_aug"):
        model = outputs[f"transfer.{variant}.model"]
        history = outputs[f"transfer.{variant}.history"]
        assert [layer.name for layer in model.layers][:3] == ["image", "preprocessing", "backbone"]
        assert model.input_shape == (None, 32, 32, 1)
        assert not model.get_layer("backbone").trainable
        assert not model.compiled  # saved without optimizer state
        assert [row["epoch"] for row in history["epochs"]] == [1, 2]
        assert history["parameters"]["total"] == model.count_params()
        check_summary(history, variant)
        assert history["backbone_features"] == (
            "computed every epoch" if variant.endswith("_aug") else "cached"
        )
        assert isinstance(outputs[f"transfer.{variant}.training_curves"], Figure)
    # a head trained on the cache gives the whole model's answers on raw pixels
    adam = outputs["transfer.adam.model"]
    head_outputs = features["val_features"]
    for layer in adam.layers[3:]:  # the head's layers, after image, preprocessing, backbone
        head_outputs = layer(head_outputs, training=False)
    np.testing.assert_allclose(
        adam.predict(images, verbose=0), keras.ops.convert_to_numpy(head_outputs), atol=1e-5
    )
    # one backbone: both cached variants carry the weights the features came from
    for variant in ("sgd", "adam_aug"):
        for ours, theirs in zip(
            adam.get_layer("backbone").get_weights(),
            outputs[f"transfer.{variant}.model"].get_layer("backbone").get_weights(),
            strict=True,
        ):
            np.testing.assert_array_equal(ours, theirs)
    assert outputs["transfer.sgd.config"]["training"]["optimizer"]["name"] == "sgd"
    assert list((tmp_path / "checkpoints").iterdir()) == []


def test_cached_features_of_another_backbone_or_augmentation_are_refused(
    two_class_split_32, tmp_path
):
    features = extracted_features(two_class_split_32, tmp_path)
    arguments = {
        "classes": two_class_split_32["classes"],
        "seed": 0,
        "checkpoint_dir": str(tmp_path),
        "tensorboard_dir": str(tmp_path),
    }
    other = resolve_variant(
        IMAGE, BACKBONE, DEFAULTS, {"backbone": {"name": "resnet50"}}, name="t.a"
    )
    with pytest.raises(ValueError, match="computed with other backbone, backbone_weights_sha256"):
        train_on_features(other, features, **arguments)
    augmented = resolve_variant(IMAGE, BACKBONE, DEFAULTS, AUGMENTATION, name="t.b")
    with pytest.raises(ValueError, match="cached backbone features, which cannot be augmented"):
        train_on_features(augmented, features, **arguments)


def extracted_features(split, tmp_path, previous=None, parameters=None):
    """The feature cache of the tiny S0 variants, given the cache a last run left."""
    parameters = parameters or transfer_parameters(tmp_path)
    (cache,) = {variant.features for variant in declare_variants(parameters) if variant.features}
    inputs = transfer_inputs(split, tmp_path, parameters)
    if previous is not None:
        inputs[f"transfer.previous_features.{cache}"] = previous
    pipeline = declared_pipeline(parameters, transfer).only_nodes(
        f"transfer.features.extract_{cache}"
    )
    return run_pipeline(pipeline, inputs)[f"transfer.features.{cache}"]


def test_an_unchanged_feature_cache_is_reused_and_a_changed_one_recomputed(
    two_class_split_32, tmp_path, monkeypatch
):
    first = extracted_features(two_class_split_32, tmp_path)
    with monkeypatch.context() as patched:  # reusing reads no image
        patched.setattr(transfer.nodes, "make_dataset", pytest.fail)
        again = extracted_features(two_class_split_32, tmp_path, previous=first)
    assert again.keys() == first.keys()
    for key, array in first.items():
        np.testing.assert_array_equal(again[key], array)

    fewer = {**two_class_split_32, "train": two_class_split_32["train"].iloc[1:]}
    changed = extracted_features(fewer, tmp_path, previous=first)  # one image less
    assert changed["train_paths"].tolist() == fewer["train"]["path"].tolist()
    as_float16 = transfer_parameters(tmp_path)
    as_float16["transfer"]["features"]["dtype"] = "float16"
    half = extracted_features(two_class_split_32, tmp_path, first, parameters=as_float16)
    assert half["train_features"].dtype == np.float16


def grid(name, target, choices):
    """A tuning block: a grid over ``choices`` for ``target``, one epoch a trial, in memory."""
    return {
        "n_trials": len(choices),
        "epochs": 1,
        "sampler": {"name": "grid"},
        "pruner": {"name": "none"},
        "search_space": {name: {"type": "categorical", "choices": choices, "target": target}},
    }


@pytest.mark.slow
def test_a_variant_sets_its_own_backbone_and_tunes_its_head_or_its_cut(
    two_class_split_32, tmp_path
):
    parameters = transfer_parameters(tmp_path)
    parameters["transfer"] = {
        "features": {"batch_size": 16},
        "defaults": DEFAULTS,
        "adam": {},
        "cut": {"backbone": {"cut_at": "conv_pw_3_relu"}},
        "pooling": {"tuning": grid("pooling", "head.pooling", ["flatten", "global_max"])},
        "cut_search": {
            "tuning": grid("cut", "backbone.cut_at", ["conv_pw_2_relu", "conv_pw_6_relu"])
        },
    }
    variants = {variant.name: variant for variant in declare_variants(parameters)}
    assert [variants[name].trains_on for name in variants] == [
        "features",
        "features",
        "features",
        "images",
    ]
    assert variants["pooling"].features == variants["adam"].features != variants["cut"].features
    outputs = run_pipeline(
        declared_pipeline(parameters, transfer),
        transfer_inputs(two_class_split_32, tmp_path, parameters),
    )
    assert {name for name in outputs if name.startswith("transfer.features.")} == {
        f"transfer.features.{variants['adam'].features}",
        f"transfer.features.{variants['cut'].features}",
    }
    cut = outputs["transfer.cut.model"].get_layer("backbone")
    assert cut.layers[-1].name == "conv_pw_3_relu"
    for name in ("pooling", "cut_search"):
        trials = outputs[f"transfer.{name}.trials"]
        assert trials["state"].tolist() == ["COMPLETE"] * 2
        assert outputs[f"transfer.{name}.best_params"]["value"] == trials["value"].max()
    best = outputs["transfer.pooling.best_params"]["params"]["pooling"]
    assert outputs["transfer.pooling.config"]["head"]["pooling"] == best
    best_cut = outputs["transfer.cut_search.best_params"]["params"]["cut"]
    assert outputs["transfer.cut_search.config"]["backbone"]["cut_at"] == best_cut
    searched = outputs["transfer.cut_search.model"].get_layer("backbone")
    assert searched.layers[-1].name == best_cut
    assert outputs["transfer.cut_search.history"]["backbone_features"] == "computed every epoch"
    assert outputs["transfer.pooling.history"]["backbone_features"] == "cached"


def test_unknown_variant_keys_are_refused():
    with pytest.raises(ValueError, match=r"unknown key\(s\) in the parameters of transfer.x: arch"):
        resolve_variant(IMAGE, BACKBONE, DEFAULTS, {"arch": {}}, name="transfer.x")


# --- the command line, on conf/test ---------------------------------------------------------


def test_a_weights_file_written_here_loads_through_backbone_weights(project):
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    keras.utils.set_random_seed(123)  # not the pipeline's seed: other weights than its own
    test_env = project_parameters.load("test", PROJECT)
    size = (test_env["image"]["size"],) * 2
    written = build_backbone({**test_env["backbone"], "weights": None}, image_size=size)
    path = project / "backbone_notop.weights.h5"
    written.save_weights(path)
    kedro_run(
        project,
        *("--env", "test", "--pipelines", "transfer"),
        *("--namespaces", "transfer.features,transfer.adam"),
        *("--params", f"backbone.weights={path}"),
    )
    saved = keras.models.load_model(project / "data/test/06_models/transfer/adam/model.keras")
    for expected, actual in zip(
        written.get_weights(), saved.get_layer("backbone").get_weights(), strict=True
    ):
        np.testing.assert_array_equal(actual, expected)


@pytest.mark.slow
def test_imagenet_weights_without_a_network_stop_the_run_before_training(project, tmp_path):
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    environment = {
        **kedro_environment(),
        "KERAS_HOME": str(tmp_path / "empty_keras_home"),
        # every download goes through a proxy that refuses connections: no network
        "https_proxy": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
    }
    completed = subprocess.run(
        [
            KEDRO,
            "run",
            "--env",
            "test",
            "--pipelines",
            "transfer",
            "--params",
            "backbone.weights=imagenet",
        ],
        check=False,
        cwd=project,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = " ".join((completed.stdout + completed.stderr).split())
    assert completed.returncode != 0
    backbone = project_parameters.load("test", PROJECT)["backbone"]["name"]
    assert f"backbone.weights is 'imagenet' but the ImageNet weights of {backbone}" in output
    assert "backbone.weights=none" in output
    assert "Epoch 1/" not in output  # nothing trained
    assert not list(project.glob("data/test/06_models/transfer/*/model.keras"))
