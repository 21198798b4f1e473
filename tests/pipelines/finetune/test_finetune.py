"""The finetune pipeline: from the matching transfer model, partly unfrozen, tuned, resumable."""

import json

import numpy as np
import pytest

from conftest import (
    KEDRO,
    TINY_TRANSFER,
    declared_pipeline,
    kedro_run,
    kill_once_a_backup_has_epochs,
    run_pipeline,
    transfer_inputs,
    transfer_parameters,
    write_two_class_split,
)
from imgclf.pipelines import finetune, transfer
from imgclf.pipelines.finetune.nodes import resolve_variant
from imgclf.training.summary import check_summary

UNFREEZE = {"last_layers": 6, "from_layer": None, "freeze_batch_norm": False}
TRAINING = {"epochs": 2, "batch_size": 8, "optimizer": {"learning_rate": 1e-4}, "verbose": 0}
SOURCE_AUGMENTATION = {"rotation": 0.05, "zoom": 0.1}
SOURCE = {
    "name": "transfer.adam_aug",
    "backbone": {"name": "mobilenet_v2", "weights": None, "cut_at": None},
    "head": {"dense": [{"units": 8}]},
    "output": "softmax",
    "image": {"size": 48, "color_mode": "rgb"},
    "training": {"augmentation": SOURCE_AUGMENTATION},
}


def test_a_variant_records_its_source_and_takes_its_image_and_augmentation():
    resolved = resolve_variant(
        {"unfreeze": UNFREEZE, "training": TRAINING},
        {"unfreeze": {"from_layer": "block_16_expand", "freeze_batch_norm": True}},
        SOURCE,
        name="finetune.adam_aug",
    )
    assert resolved["source"] == "transfer.adam_aug"
    assert resolved["backbone"]["name"] == "mobilenet_v2"
    assert resolved["image"] == {"size": 48, "color_mode": "rgb"}
    assert resolved["training"]["augmentation"]["rotation"] == 0.05
    assert resolved["training"]["augmentation"]["zoom"] == 0.1
    assert resolved["unfreeze"] == {
        "last_layers": 6,
        "from_layer": "block_16_expand",
        "freeze_batch_norm": True,
    }
    # its own augmentation replaces the source's
    own = resolve_variant(
        {"training": TRAINING},
        {"training": {"augmentation": {"horizontal_flip": True}}},
        SOURCE,
        name="finetune.flip",
    )
    assert own["training"]["augmentation"]["horizontal_flip"] is True
    assert own["training"]["augmentation"]["rotation"] == 0.0


@pytest.mark.parametrize(
    ("defaults", "variant", "message"),
    [
        ({}, {"head": {}}, r"unknown key\(s\) in the parameters of f.x: head"),
        ({}, {"image": {"size": 32}}, r"f.x: image comes from the transfer model .*adam_aug"),
        ({}, {"backbone": {"name": "vgg16"}}, r"f.x: backbone comes from the transfer model"),
        (
            {"training": {"augmentation": {"zoom": 0.1}}},
            {},
            r"finetune.defaults.training.augmentation: a fine-tune variant augments as",
        ),
    ],
)
def test_what_the_transfer_model_fixes_cannot_be_set(defaults, variant, message):
    with pytest.raises(ValueError, match=message):
        resolve_variant(defaults, variant, SOURCE, name="f.x")


@pytest.mark.slow
def test_fine_tuning_starts_from_its_transfer_model_and_a_tuned_variant_uses_its_best(tmp_path):
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
    parameters = transfer_parameters(
        tmp_path,
        finetune={
            "defaults": {"unfreeze": UNFREEZE, "training": TRAINING},
            "adam_aug": {},
            "sgd_aug": {"unfreeze": {"last_layers": "all"}},
            "tuned": {"from": "sgd_aug", "tuning": tuning},
        },
    )
    for name in ("adam", "sgd"):
        parameters["transfer"][name] = None  # only the augmented transfer variants
    outputs = run_pipeline(
        declared_pipeline(parameters, transfer, finetune),
        transfer_inputs(split, tmp_path, parameters),
    )
    augmentation = TINY_TRANSFER["augmentation"]["training"]["augmentation"]
    for variant, source in (("adam_aug", "adam_aug"), ("sgd_aug", "sgd_aug"), ("tuned", "sgd_aug")):
        model = outputs[f"finetune.{variant}.model"]
        history = outputs[f"finetune.{variant}.history"]
        assert history["source"] == f"transfer.{source}"
        check_summary(history, variant)
        # the augmentation of the transfer variant it starts from
        config = outputs[f"finetune.{variant}.config"]
        assert config["training"]["augmentation"]["rotation"] == augmentation["rotation"]
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


@pytest.mark.slow
def test_a_killed_fine_tuning_run_resumes_at_its_last_finished_epoch(project):
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    kedro_run(
        project, *("--env", "test", "--pipelines", "transfer"), "--namespaces", "transfer.adam_aug"
    )
    data = project / "data" / "test"
    command = [
        *(KEDRO, "run", "--env", "test", "--pipelines", "finetune"),
        *("--namespaces", "finetune.adam_aug", "--params", "finetune.defaults.training.epochs=4"),
    ]
    checkpoints = data / "06_models" / "checkpoints"
    killed_at = kill_once_a_backup_has_epochs(project, command)
    assert killed_at == "finetune.adam_aug"
    variant = "adam_aug"

    assert not (data / f"07_model_output/finetune/{variant}/history.json").exists()

    resumed = kedro_run(project, *command[2:])
    assert "Resuming from" in resumed
    history = json.loads((data / f"07_model_output/finetune/{variant}/history.json").read_text())
    assert history["resumed_at_epoch"] >= 2
    assert [row["epoch"] for row in history["epochs"]] == [1, 2, 3, 4]
    assert list(checkpoints.iterdir()) == []
