"""The scratch_cnn pipeline: variants from parameters, trained, tuned and resumable."""

import json
import subprocess

import keras
import numpy as np
import optuna
import pytest
from matplotlib.figure import Figure

from conftest import (
    KEDRO,
    declared_pipeline,
    kedro_environment,
    kedro_run,
    kill_once_a_backup_has_epochs,
    parameter_inputs,
    run_pipeline,
)
from imgclf.datasets import KerasModelDataset
from imgclf.pipelines import scratch_cnn
from imgclf.pipelines.scratch_cnn.nodes import resolve_variant
from imgclf.training.storage import make_storage
from imgclf.training.summary import check_summary

TINY_DEFAULTS = {
    "architecture": {
        "block_defaults": {"kernel_size": 3, "batch_norm": True},
        "blocks": [{"filters": 4}],
        "head": {"pooling": "global_average", "dense": [{"units": 8}]},
    },
    "training": {"epochs": 2, "batch_size": 4, "verbose": 0},
}
IMAGE = {"size": 16, "color_mode": "grayscale"}


def test_a_variant_is_the_defaults_with_its_own_block_merged_in():
    resolved = resolve_variant(
        IMAGE,
        TINY_DEFAULTS,
        {"architecture": {"blocks": [{"filters": 8}, {"filters": 16}]}},
        name="scratch_cnn.deep",
    )
    assert resolved["name"] == "scratch_cnn.deep"
    assert resolved["architecture"]["blocks"] == [{"filters": 8}, {"filters": 16}]
    assert resolved["architecture"]["block_defaults"]["batch_norm"] is True
    assert resolved["training"]["epochs"] == 2
    assert resolved["image"] == IMAGE
    assert resolved["training"]["optimizer"] == {  # defaults spelled out
        "name": "adam",
        "learning_rate": 0.001,
        "momentum": 0.0,
        "nesterov": False,
    }
    assert (
        resolve_variant(IMAGE, TINY_DEFAULTS, None, name="x")["architecture"]
        == (TINY_DEFAULTS["architecture"])
    )


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ({"trainig": {}}, "unknown key(s) in the parameters of scratch_cnn.deep: trainig"),
        ({"training": {"epochs": -1}}, "training.epochs must be a positive int"),
        ({"architecture": {"head": {"pooling": "mean"}}}, "pooling"),
        ({"tuning": {"n_trials": 2}}, "search_space"),
        ({"image": {"colour": "rgb"}}, "unknown key(s) in the image of scratch_cnn.deep: colour"),
        ({"image": {"color_mode": "cmyk"}}, "scratch_cnn.deep: image: color_mode must be one of"),
    ],
)
def test_bad_variant_parameters_fail_before_training(variant, message):
    with pytest.raises(ValueError) as error:
        resolve_variant(IMAGE, TINY_DEFAULTS, variant, name="scratch_cnn.deep")
    assert message in str(error.value)


def train_variants(variants, split, tmp_path):
    """The outputs of the scratch_cnn pipeline of ``variants`` over TINY_DEFAULTS, on
    ``split``."""
    parameters = {
        "image": IMAGE,
        "seed": 0,
        "checkpoint_dir": str(tmp_path / "checkpoints"),
        "tensorboard_dir": str(tmp_path / "tensorboard"),
        "scratch_cnn": {"defaults": TINY_DEFAULTS, **variants},
    }
    return run_pipeline(
        declared_pipeline(parameters, scratch_cnn),
        {
            "train_index": split["train"],
            "val_index": split["val"],
            "classes": split["classes"],
            **parameter_inputs(parameters),
        },
    )


@pytest.mark.slow
def test_every_variant_trains_and_the_tuned_one_uses_its_best_trial(two_class_split, tmp_path):
    tuned = {
        "tuning": {
            "n_trials": 3,
            "epochs": 1,
            "storage": f"sqlite:///{tmp_path}/optuna.db",
            "study_name": "tiny",
            "pruner": {"name": "none"},
            "search_space": {
                "units": {
                    "type": "int",
                    "low": 4,
                    "high": 12,
                    "step": 4,
                    "target": "architecture.head.dense.0.units",
                },
                "learning_rate": {
                    "type": "float",
                    "low": 1e-3,
                    "high": 1e-2,
                    "log": True,
                    "target": "training.optimizer.learning_rate",
                },
            },
        }
    }
    outputs = train_variants(
        {
            "shallow": {},
            "deep": {"architecture": {"blocks": [{"filters": 4}] * 2}},
            "tuned": tuned,
        },
        two_class_split,
        tmp_path,
    )
    for variant in ("shallow", "deep", "tuned"):
        model = outputs[f"scratch_cnn.{variant}.model"]
        history = outputs[f"scratch_cnn.{variant}.history"]
        assert history["variant"] == f"scratch_cnn.{variant}"
        check_summary(history, variant)  # the contract the leaderboard reads
        assert [row["epoch"] for row in history["epochs"]] == [1, 2]
        assert history["parameters"]["total"] == model.count_params()
        probabilities = model.predict(np.zeros((3, 16, 16, 1)), verbose=0)
        assert probabilities.shape == (3, 2)
        assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5)
        assert isinstance(outputs[f"scratch_cnn.{variant}.training_curves"], Figure)
    assert len(outputs["scratch_cnn.deep.model"].get_layer("block2_conv1").weights) == 2
    assert list(tmp_path.joinpath("checkpoints").iterdir()) == []  # backups removed

    trials = outputs["scratch_cnn.tuned.trials"]
    assert trials["state"].tolist() == ["COMPLETE"] * 3
    best = outputs["scratch_cnn.tuned.best_params"]
    assert best["value"] == trials["value"].max()
    config = outputs["scratch_cnn.tuned.config"]
    assert config["architecture"]["head"]["dense"][0]["units"] == best["params"]["units"]
    assert config["training"]["optimizer"]["learning_rate"] == best["params"]["learning_rate"]
    dense = outputs["scratch_cnn.tuned.model"].get_layer("head_dense1")
    assert dense.units == best["params"]["units"]


def test_variants_train_in_mixed_precision_and_their_saved_models_reload(two_class_split, tmp_path):
    """precision and jit_compile from a variant's training block: the model computes in
    that precision with float32 outputs, saves, and reloads with safe_mode; the process's
    dtype policy is float32 again afterwards (the next variant is unaffected)."""
    units = {"type": "int", "low": 4, "high": 8, "target": "architecture.head.dense.0.units"}
    tuned = {
        "training": {"precision": "mixed_bfloat16"},
        "tuning": {"n_trials": 1, "epochs": 1, "search_space": {"units": units}},
    }
    outputs = train_variants(
        {
            "half": {"training": {"precision": "mixed_float16", "jit_compile": True}},
            "tuned": tuned,
            "full": {},
        },
        two_class_split,
        tmp_path,
    )
    for variant, policy in (
        ("half", "mixed_float16"),
        ("tuned", "mixed_bfloat16"),
        ("full", "float32"),
    ):
        path = tmp_path / f"{variant}.keras"
        KerasModelDataset(filepath=str(path)).save(outputs[f"scratch_cnn.{variant}.model"])
        model = KerasModelDataset(filepath=str(path)).load()
        assert model.get_layer("block1_conv1").dtype_policy.name == policy
        assert model.output.dtype == "float32"
        probabilities = model.predict(np.zeros((3, 16, 16, 1)), verbose=0)
        assert probabilities.dtype == np.float32
        assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-3)
    assert keras.config.dtype_policy().name == "float32"


# --- the command line, on conf/test ---------------------------------------------------------


def load_model(data, variant):
    return keras.models.load_model(data / f"06_models/scratch_cnn/{variant}/model.keras")


@pytest.mark.slow
def test_s0_models_have_the_seed_study_parameter_counts_at_128_px_rgb(project):
    # S0's deep CNN had valid padding, which needs >= 95 px
    valid = "scratch_cnn.deep.architecture.block_defaults.padding=valid"
    s0 = f"image.size=128,image.color_mode=rgb,{valid}"
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split", "--params", s0)
    kedro_run(
        project,
        *("--env", "test", "--pipelines", "scratch_cnn"),
        *("--namespaces", "scratch_cnn.shallow,scratch_cnn.deep", "--params", s0),
    )
    data = project / "data" / "test"
    assert load_model(data, "shallow").count_params() == 4_364_426
    assert load_model(data, "deep").count_params() == 2_061_962
    history = json.loads((data / "07_model_output/scratch_cnn/deep/history.json").read_text())
    assert history["parameters"] == {
        "total": 2_061_962,
        "trainable": 2_061_962 - 3_008,
        "non_trainable": 3_008,
    }


@pytest.mark.slow
def test_a_killed_run_resumes_at_its_last_finished_epoch(project):
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    data = project / "data" / "test"
    command = [
        *(KEDRO, "run", "--env", "test", "--pipelines", "scratch_cnn"),
        *(
            "--namespaces",
            "scratch_cnn.shallow",
            "--params",
            "scratch_cnn.defaults.training.epochs=4",
        ),
    ]
    checkpoints = data / "06_models" / "checkpoints"
    killed_at = kill_once_a_backup_has_epochs(project, command)
    assert killed_at == "scratch_cnn.shallow"
    assert not (data / "07_model_output/scratch_cnn/shallow/history.json").exists()

    resumed = kedro_run(project, *command[2:])
    assert "Resuming from" in resumed
    history = json.loads((data / "07_model_output/scratch_cnn/shallow/history.json").read_text())
    assert history["resumed_at_epoch"] >= 2
    assert [row["epoch"] for row in history["epochs"]] == [1, 2, 3, 4]
    assert list(checkpoints.iterdir()) == []


@pytest.mark.slow
def test_two_kedro_workers_share_one_study(project):
    """Two `kedro run` processes tune one study in a journal file: between them they run
    the study's n_trials, each trial once; then one run trains the tuned model."""
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    journal = project / "data" / "test" / "06_models" / "shared.log"
    settings = f"scratch_cnn.tuned.tuning.storage=journal:///{journal},"
    settings += "scratch_cnn.tuned.tuning.n_trials=4"
    worker = [
        *(KEDRO, "run", "--env", "test", "--pipelines", "scratch_cnn"),
        *("--to-nodes", "scratch_cnn.tuned.tune_hyperparameters", "--params", settings),
    ]
    workers = [
        subprocess.Popen(worker, cwd=project, env=kedro_environment(), stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for process in workers:
        _, errors = process.communicate(timeout=300)
        assert process.returncode == 0, errors.decode()[-3000:]

    storage = make_storage(f"journal:///{journal}")
    (study_name,) = optuna.get_all_study_names(storage)  # one study for both workers
    assert study_name.startswith("scratch_cnn.tuned-")
    study = optuna.load_study(study_name=study_name, storage=storage)
    trials = study.get_trials()
    assert sorted(trial.number for trial in trials) == [0, 1, 2, 3]
    assert all(trial.state == optuna.trial.TrialState.COMPLETE for trial in trials)
    pids = {trial.user_attrs["worker"].rsplit(":", 1)[1] for trial in trials}
    assert pids == {str(process.pid) for process in workers}

    final = kedro_run(
        project,
        *("--env", "test", "--pipelines", "scratch_cnn"),
        *("--namespaces", "scratch_cnn.tuned", "--params", settings),
    )
    assert "Trial 4" not in final  # the budget was spent
    data = project / "data" / "test"
    best = json.loads((data / "07_model_output/scratch_cnn/tuned/best_params.json").read_text())
    assert best["value"] == study.best_value
    model = load_model(data, "tuned")
    assert model.get_layer("head_dense1").units == best["params"]["units"]
