"""An environment that only declares variants (conf/experiments), on the test suite's data:
base's variants removed, new ones added, sweeps, tuning in transfer, a fine-tune variant
`from:` a transfer variant. Everything it runs follows from its YAML."""

from __future__ import annotations

import json

import keras
import pandas as pd
import pytest
from tests.conftest import copy_project, environment_on_test_sizes, kedro, kedro_run

import imgclf.models.backbones  # noqa: F401 - registers the layer the saved transfer models use

pytestmark = pytest.mark.slow  # every test here reads the outputs of one whole run

DECLARED = [
    "scratch_cnn.two_conv",
    "scratch_cnn.colour_rgb",
    "scratch_cnn.colour_grayscale",
    "scratch_cnn.augmentation_none",
    "scratch_cnn.augmentation_rotation",
    "scratch_cnn.augmentation_zoom",
    "scratch_cnn.augmentation_all",
    "transfer.mobilenet",
    "transfer.pooling",
    "finetune.mobilenet_unfrozen",
]
BASELINE = "baseline.logistic_regression"


@pytest.fixture(scope="module")
def experiments(tmp_path_factory):
    project = copy_project(tmp_path_factory.mktemp("experiments") / "project")
    env = environment_on_test_sizes(project, "experiments")
    # the whole graph in a process of its own, as users run it (its memory leaves with it)
    kedro(project, "run", "--env", env, "--params", "backbone.weights=none")
    return project, env, project / "data" / env


def read_json(path):
    return json.loads(path.read_text())


def test_the_leaderboard_has_exactly_the_declared_variants(experiments):
    _, _, data = experiments
    leaderboard = pd.read_csv(data / "08_reporting" / "leaderboard.csv")
    assert sorted(leaderboard["model"]) == sorted([*DECLARED, BASELINE])
    assert set(leaderboard["status"]) == {"trained"}
    for name in ("scratch_cnn/shallow", "transfer/adam", "finetune/adam_aug"):  # base's, removed
        assert not (data / "06_models" / name).exists()


def test_variants_are_built_as_their_yaml_says(experiments):
    _, _, data = experiments
    models = data / "06_models"

    def model(name):
        return keras.models.load_model(models / name / "model.keras")

    assert model("scratch_cnn/colour_rgb").input_shape == (None, 32, 32, 3)
    assert model("scratch_cnn/colour_grayscale").input_shape == (None, 32, 32, 1)
    assert read_json(models / "scratch_cnn/colour_rgb/config.json")["image"]["color_mode"] == "rgb"
    two_conv = model("scratch_cnn/two_conv")
    assert {"block1_conv1", "block1_conv2", "block3_conv2"} <= {
        layer.name for layer in two_conv.layers
    }

    augmentation = {
        arm: read_json(models / f"scratch_cnn/augmentation_{arm}/config.json")["training"][
            "augmentation"
        ]
        for arm in ("none", "rotation", "zoom", "all")
    }
    assert augmentation["none"]["rotation"] == augmentation["none"]["zoom"] == 0.0
    assert augmentation["rotation"]["rotation"] == 0.055 and augmentation["rotation"]["zoom"] == 0
    assert augmentation["zoom"]["zoom"] == 0.2 and augmentation["zoom"]["rotation"] == 0
    assert augmentation["all"]["vertical_flip"] is True

    # both MobileNetV2 variants train on one feature cache; the tuned one on its best pooling
    (cache,) = (data / "04_feature" / "transfer").glob("*.npz")
    assert cache.name.startswith("mobilenet_v2_32px_auto_")  # image.color_mode: auto
    for name in ("mobilenet", "pooling"):
        history = read_json(data / f"07_model_output/transfer/{name}/history.json")
        assert history["backbone_features"] == "cached"
    mobilenet = read_json(models / "transfer/mobilenet/config.json")
    assert mobilenet["backbone"]["name"] == "mobilenet_v2"
    assert mobilenet["head"]["pooling"] == "global_average"
    trials = pd.read_csv(data / "07_model_output/transfer/pooling/trials.csv")
    assert sorted(trials["param_pooling"]) == ["flatten", "global_average", "global_max"]
    best = read_json(data / "07_model_output/transfer/pooling/best_params.json")
    assert (
        read_json(models / "transfer/pooling/config.json")["head"]["pooling"]
        == (best["params"]["pooling"])
    )

    # the fine-tune variant starts from transfer.mobilenet, BatchNorm kept frozen
    finetuned = read_json(models / "finetune/mobilenet_unfrozen/config.json")
    assert finetuned["source"] == "transfer.mobilenet"
    assert finetuned["image"] == mobilenet["image"]
    assert finetuned["training"]["augmentation"] == mobilenet["training"]["augmentation"]
    assert finetuned["unfreeze"]["from_layer"] == "block_16_expand"
    backbone = model("finetune/mobilenet_unfrozen").get_layer("backbone")
    layers = [layer for layer in backbone.layers if layer.weights]
    start = [layer.name for layer in layers].index("block_16_expand")
    assert not any(layer.trainable for layer in layers[:start])
    for layer in layers[start:]:
        is_batch_norm = isinstance(layer, keras.layers.BatchNormalization)
        assert layer.trainable == (not is_batch_norm), layer.name


def test_every_sweep_is_compared_in_a_table_a_plot_and_the_report(experiments):
    _, _, data = experiments
    reporting = data / "08_reporting"
    leaderboard = pd.read_csv(reporting / "leaderboard.csv").set_index("model")
    for sweep, arms in (
        ("colour", ["rgb", "grayscale"]),
        ("augmentation", ["none", "rotation", "zoom", "all"]),
    ):
        table = pd.read_csv(reporting / "scratch_cnn" / sweep / "sweep.csv")
        assert table["arm"].tolist() == arms
        assert table["model"].tolist() == [f"scratch_cnn.{sweep}_{arm}" for arm in arms]
        for row in table.itertuples():
            assert row.test_accuracy == pytest.approx(leaderboard.loc[row.model, "test_accuracy"])
            assert row.macro_f1 == pytest.approx(leaderboard.loc[row.model, "macro_f1"])
        assert (reporting / "scratch_cnn" / sweep / "sweep.png").stat().st_size > 0
    page = (reporting / "report.html").read_text()
    sweeps = page.split('id="sweeps"', 1)[1].split('id="models"', 1)[0]
    assert "scratch_cnn.colour" in sweeps and "scratch_cnn.augmentation" in sweeps
    assert sweeps.count('<img alt="sweep ') == 2


def test_an_unchanged_feature_cache_is_reused_by_the_next_run(experiments):
    project, env, data = experiments
    (cache,) = (data / "04_feature" / "transfer").glob("*.npz")
    node = f"transfer.features.extract_{cache.stem}"
    again = kedro_run(project, "--env", env, "--nodes", node, "--params", "backbone.weights=none")
    assert "unchanged since the last run: reusing them" in again


def test_a_declared_variant_not_trained_yet_is_listed_and_the_others_scored(experiments):
    project, env, data = experiments
    # only the new variant's evaluation and the leaderboard: the others' metrics are on disk
    fresh = "evaluate.scratch_cnn.fresh"
    steps = [f"{fresh}.resolve_parameters", f"{fresh}.predict", f"{fresh}.score"]
    steps += ["evaluate.resolve_parameters", "evaluate.build_leaderboard"]
    steps += ["evaluate.summarise_leaderboard"]
    kedro_run(
        project,
        *("--env", env, "--nodes", ",".join(steps)),
        *("--params", "backbone.weights=none,scratch_cnn.fresh.training.epochs=1"),
    )
    leaderboard = pd.read_csv(data / "08_reporting" / "leaderboard.csv")
    assert leaderboard["model"].iloc[-1] == "scratch_cnn.fresh"
    assert leaderboard["status"].iloc[-1] == "not trained"
    assert leaderboard.set_index("model").loc[DECLARED, "status"].eq("trained").all()
    summary = (data / "08_reporting" / "leaderboard_summary.md").read_text()
    assert "Not trained yet, so not ranked: scratch_cnn.fresh" in summary


def test_kedro_viz_shows_each_declared_variant_as_a_modular_pipeline(experiments):
    project, env, _ = experiments
    kedro(project, "viz", "build", variables={"KEDRO_ENV": env})
    graph = json.loads((project / "build" / "api" / "main").read_text())
    modular = set(graph["modular_pipelines"])
    assert set(DECLARED) <= modular
    assert {f"evaluate.{name}" for name in DECLARED} <= modular
    assert not {"scratch_cnn.shallow", "transfer.adam", "finetune.adam_aug"} & modular
