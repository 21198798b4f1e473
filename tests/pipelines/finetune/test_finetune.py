"""The finetune pipeline: from the matching transfer model, partly unfrozen, tuned, resumable."""

import json

import numpy as np
import pytest

from conftest import (
    KEDRO,
    kedro,
    kill_once_a_backup_has_epochs,
    run_pipeline,
    transfer_inputs,
    write_two_class_split,
)
from imgclf.pipelines import finetune, transfer
from imgclf.pipelines.finetune.nodes import resolve_variant

UNFREEZE = {"last_layers": 6, "from_layer": None, "freeze_batch_norm": False}
TRAINING = {"epochs": 2, "batch_size": 8, "optimizer": {"learning_rate": 1e-4}, "verbose": 0}
SOURCE = {
    "name": "transfer.adam_aug",
    "backbone": {"name": "mobilenet_v2", "weights": None, "cut_at": None},
    "head": {"dense": [{"units": 8}]},
    "output": "softmax",
}


def test_a_variant_records_its_source_and_unfreezing():
    resolved = resolve_variant(
        {"unfreeze": UNFREEZE, "training": TRAINING},
        {"unfreeze": {"from_layer": "block_16_expand", "freeze_batch_norm": True}},
        SOURCE,
        name="finetune.adam_aug",
    )
    assert resolved["source"] == "transfer.adam_aug"
    assert resolved["backbone"]["name"] == "mobilenet_v2"
    assert resolved["unfreeze"] == {
        "last_layers": 6,
        "from_layer": "block_16_expand",
        "freeze_batch_norm": True,
    }
    with pytest.raises(ValueError, match=r"unknown key\(s\) in the parameters of f.x: head"):
        resolve_variant({"training": TRAINING}, {"head": {}}, SOURCE, name="f.x")


def test_fine_tuning_starts_from_the_matching_transfer_model_and_a_tuned_variant_uses_its_best(
    tmp_path, monkeypatch
):
    monkeypatch.setitem(finetune.pipeline.VARIANTS, "tuned", ("sgd_aug", True))
    split = write_two_class_split(tmp_path / "images", size=32)
    tuning = {
        "n_trials": 2,
        "epochs": 1,
        "storage": f"sqlite:///{tmp_path}/optuna.db",
        "study_name": "finetune",
        "pruner": {"name": "none"},
        "search_space": {
            "layers": {"type": "int", "low": 2, "high": 12, "target": "unfreeze.last_layers"},
            "learning_rate": {
                "type": "float",
                "low": 1e-5,
                "high": 1e-3,
                "log": True,
                "target": "training.optimizer.learning_rate",
            },
        },
    }
    pipeline = (
        transfer.create_pipeline().only_nodes_with_namespaces(
            ["transfer.adam_aug", "transfer.sgd_aug"]
        )
        + finetune.create_pipeline()
    )
    outputs = run_pipeline(
        pipeline,
        {
            **transfer_inputs(split, tmp_path),
            "params:finetune.defaults": {"unfreeze": UNFREEZE, "training": TRAINING},
            "params:finetune.adam_aug": {},
            "params:finetune.sgd_aug": {"unfreeze": {"last_layers": "all"}},
            "params:finetune.tuned": {"tuning": tuning},
        },
    )
    for variant, source in (("adam_aug", "adam_aug"), ("sgd_aug", "sgd_aug"), ("tuned", "sgd_aug")):
        model = outputs[f"finetune.{variant}.model"]
        history = outputs[f"finetune.{variant}.history"]
        assert history["source"] == f"transfer.{source}"
        assert [row["epoch"] for row in history["epochs"]] == [1, 2]
        assert model.name == f"finetune_{variant}"
        backbone = model.get_layer("backbone")
        trainable = [layer.trainable for layer in backbone.layers[1:]]
        last = outputs[f"finetune.{variant}.config"]["unfreeze"]["last_layers"]
        expected = len(trainable) if last == "all" else last
        assert trainable == [False] * (len(trainable) - expected) + [True] * expected
        assert history["backbone_parameters"]["trainable"] == sum(
            int(np.prod(weight.shape)) for weight in backbone.trainable_weights
        )
        # the transfer model it started from is left as it was
        source_model = outputs[f"transfer.{source}.model"]
        assert not source_model.get_layer("backbone").trainable
        assert not np.allclose(
            model.get_layer("predictions").get_weights()[0],
            source_model.get_layer("predictions").get_weights()[0],
        )
    best = outputs["finetune.tuned.best_params"]
    assert len(outputs["finetune.tuned.trials"]) == 2
    config = outputs["finetune.tuned.config"]
    assert config["unfreeze"]["last_layers"] == best["params"]["layers"]
    assert config["training"]["optimizer"]["learning_rate"] == best["params"]["learning_rate"]


# --- the command line, on conf/test ---------------------------------------------------------


def test_a_killed_fine_tuning_run_resumes_at_its_last_finished_epoch(project):
    kedro(project, "run", "--env", "test", "--pipelines", "ingest,split,transfer")
    data = project / "data" / "test"
    command = [
        *(KEDRO, "run", "--env", "test", "--pipelines", "finetune"),
        *("--params", "finetune.defaults.training.epochs=4"),
    ]
    checkpoints = data / "06_models" / "checkpoints"
    killed_at = kill_once_a_backup_has_epochs(project, command)
    variant = killed_at.split(".")[1]

    assert not (data / f"07_model_output/finetune/{variant}/history.json").exists()

    resumed = kedro(project, *command[1:])
    assert "Found a backup of this run" in " ".join((resumed.stdout + resumed.stderr).split())
    history = json.loads((data / f"07_model_output/finetune/{variant}/history.json").read_text())
    assert history["resumed_at_epoch"] >= 2
    assert [row["epoch"] for row in history["epochs"]] == [1, 2, 3, 4]
    assert list(checkpoints.iterdir()) == []
