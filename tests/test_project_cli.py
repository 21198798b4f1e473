"""End to end: the `kedro` commands users type, on a copy of the project's configuration."""

import json
import shutil

import pandas as pd
import pytest

from conftest import kedro, kedro_run

SPLIT_FILES = [
    "05_model_input/classes.json",
    "05_model_input/train_index.parquet",
    "05_model_input/val_index.parquet",
    "05_model_input/test_index.parquet",
]


def test_test_env_ingest_and_split_are_reproducible(project):
    data = project / "data" / "test"
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    first = {name: (data / name).read_bytes() for name in SPLIT_FILES}

    classes = json.loads(first["05_model_input/classes.json"])
    assert classes == sorted(f"{n}{hand}" for n in range(6) for hand in "LR")
    splits = {
        name: pd.read_parquet(data / f"05_model_input/{name}_index.parquet")
        for name in ("train", "val", "test")
    }
    assert len(splits["test"]) == 12 * 4  # the demo's own test folder
    assert len(splits["train"]) + len(splits["val"]) == 12 * 10
    assert (splits["test"]["source_split"] == "test").all()
    assert pd.read_csv(data / "03_primary/quarantine.csv").empty
    for report in (
        "dataset_profile.json",
        "split_report.json",
        "class_distribution.png",
        "class_samples.jpg",
        "split_counts.png",
    ):
        assert (data / "08_reporting" / report).stat().st_size > 0

    # the same seed from scratch (the scan and every output deleted) gives the same bytes
    for folder in ("02_intermediate", "03_primary", "05_model_input", "08_reporting"):
        shutil.rmtree(data / folder)
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    assert {name: (data / name).read_bytes() for name in SPLIT_FILES} == first

    # another seed gives another split
    kedro_run(project, "--env", "test", "--pipelines", "split", "--params", "seed=7")
    assert (data / "05_model_input/train_index.parquet").read_bytes() != first[
        "05_model_input/train_index.parquet"
    ]


def test_two_runs_in_one_python_process_are_two_finished_mlflow_runs(project):
    """As two session.run()s of a notebook: the second run is not logged into the first."""
    import mlflow

    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    kedro_run(project, "--env", "test", "--pipelines", "split", "--params", "seed=7")
    assert mlflow.active_run() is None
    client = mlflow.MlflowClient(f"sqlite:///{project / 'data' / 'test' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("imgclf")
    first, second = client.search_runs(
        [experiment.experiment_id], order_by=["attributes.start_time ASC"]
    )
    assert set(first.info.run_name.split("+")) == {"ingest", "split"}
    assert second.info.run_name == "split"
    assert (first.info.status, second.info.status) == ("FINISHED", "FINISHED")
    assert (first.data.params["seed"], second.data.params["seed"]) == ("42", "7")


def test_digits_env_ingests_and_splits_real_digits(project):
    kedro_run(project, "--env", "digits", "--pipelines", "ingest,split")
    data = project / "data" / "digits"
    index = pd.read_parquet(data / "03_primary/image_index.parquet")
    assert len(index) == 1797
    report = json.loads((data / "08_reporting/split_report.json").read_text())
    assert json.loads((data / "05_model_input/classes.json").read_text()) == [
        str(d) for d in range(10)
    ]
    sizes = {
        name: len(pd.read_parquet(data / f"05_model_input/{name}_index.parquet"))
        for name in ("train", "val", "test")
    }
    assert sum(sizes.values()) == 1797
    assert sizes["test"] / 1797 == pytest.approx(0.20, abs=0.02)
    assert report["strategy"] == "ratios"


def test_kedro_viz_shows_every_pipeline_and_variant_with_layers(project):
    built = kedro(project, "viz", "build")
    assert "circular" not in (built.stdout + built.stderr).lower()
    pipelines = project / "build" / "api" / "pipelines"
    expected = {"__default__", "ingest", "split", "scratch_cnn", "transfer", "finetune"}
    assert {path.name for path in pipelines.iterdir()} >= {*expected, "evaluate", "predict"}
    order = ["raw", "intermediate", "primary", "model_input", "feature", "models"]
    order += ["model_output", "reporting"]
    for path in pipelines.iterdir():
        view = json.loads(path.read_text())
        # layers on every pipeline (kedro-viz drops them all on a cycle); those of the
        # training pipelines in the data's order (predict reads the leaderboard first)
        used = {node["layer"] for node in view["nodes"] if node.get("layer")}
        shown = [layer for layer in view["layers"] if layer in used]
        assert used and set(shown) == used, path.name
        if path.name != "predict":
            assert shown == [layer for layer in order if layer in used], path.name
    graph = json.loads((project / "build" / "api" / "main").read_text())
    # the default view opens on the pipelines' boxes: no node lies outside a namespace
    loose = [
        child
        for child in graph["modular_pipelines"]["__root__"]["children"]
        if child["type"] == "task"
    ]
    assert loose == []
    assert {
        "ingest",
        "split",
        "scratch_cnn",
        "scratch_cnn.shallow",
        "scratch_cnn.deep",
        "scratch_cnn.tuned",
        "transfer",
        "transfer.adam",
        "transfer.sgd_aug",
        "finetune.adam_aug",
        "finetune.sgd_aug",
        "evaluate",
        "evaluate.transfer.adam",
        "baseline.logistic_regression",
    } <= set(graph["modular_pipelines"])
    layer_of = {
        node["name"]: node.get("layer") for node in graph["nodes"] if node["type"] == "data"
    }
    assert layer_of["raw_images"] == "raw"
    assert layer_of["image_index"] == "primary"
    assert layer_of["train_index"] == "model_input"
    assert layer_of["split_report"] == "reporting"
    assert layer_of["scratch_cnn.deep.model"] == "models"
    assert layer_of["scratch_cnn.tuned.history"] == "model_output"
    assert layer_of["scratch_cnn.tuned.optimization_history"] == "reporting"
    (cache,) = [name for name in layer_of if name.startswith("transfer.features.")]
    assert cache.startswith("transfer.features.resnet50_64px_auto_")  # base's backbone
    assert layer_of[cache] == "feature"
    assert layer_of["finetune.sgd_aug.model"] == "models"
    assert layer_of["finetune.sgd_aug.metrics"] == "reporting"
    assert layer_of["transfer.adam.explanations"] == "reporting"
    assert layer_of["baseline.logistic_regression.model"] == "models"
    assert layer_of["leaderboard"] == "reporting"
    assert layer_of["report"] == "reporting"
    tasks = {node["name"] for node in graph["nodes"] if node["type"] == "task"}
    assert {"scan_images", "group_duplicates", "assign_splits", "tune_hyperparameters"} <= tasks
    assert {"build_leaderboard", "write_report"} <= tasks
    assert any(task.startswith("extract_resnet50_64px_auto_") for task in tasks)
