"""The `training` parameter block: validation and the defaults-plus-variant merge."""

import pytest

from imgclf.training.config import parse_training_config
from imgclf.variants import merge_parameters


def test_defaults_and_nested_blocks_are_parsed():
    config = parse_training_config(
        {
            "epochs": 4,
            "optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9, "nesterov": True},
            "callbacks": {"early_stopping": {"monitor": "val_accuracy", "mode": "max"}},
            "augmentation": {"rotation": 0.1},
        }
    )
    assert config.epochs == 4
    assert config.batch_size == 32
    assert config.optimizer.momentum == 0.9 and config.optimizer.nesterov
    assert config.callbacks.early_stopping.mode == "max"
    assert config.callbacks.early_stopping.patience == 3
    assert config.callbacks.reduce_lr_on_plateau is None
    assert config.augmentation.rotation == 0.1
    assert parse_training_config(None) == parse_training_config({})
    # spelled out with every default, and read back unchanged
    parameters = config.to_parameters()
    assert parameters["schedule"] == {
        "name": "constant",
        "decay_rate": 0.9,
        "decay_epochs": 1.0,
        "alpha": 0.0,
    }
    assert parameters["callbacks"]["reduce_lr_on_plateau"] is None
    assert (parameters["distribute"], parameters["precision"], parameters["jit_compile"]) == (
        "none",
        "float32",
        "auto",
    )
    assert parse_training_config(parameters) == config


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"epoch": 3}, "unknown key(s) in training: epoch; valid keys are: epochs"),
        ({"epochs": 0}, "training.epochs must be a positive int"),
        ({"batch_size": 8.5}, "training.batch_size must be a positive int"),
        ({"optimizer": {"name": "adagrad"}}, "must be one of adam, sgd, rmsprop"),
        ({"optimizer": {"learning_rate": -1}}, "learning_rate must be a positive number"),
        ({"optimizer": {"momentum": 1.5}}, "momentum must be in [0, 1)"),
        ({"optimizer": {"lr": 0.1}}, "unknown key(s) in training.optimizer: lr"),
        ({"schedule": {"name": "step"}}, "constant, exponential, cosine"),
        ({"class_weight": "auto"}, "class_weight must be 'balanced' or null"),
        ({"callbacks": {"early_stopping": {"mode": "up"}}}, "mode must be min or max"),
        ({"callbacks": {"early_stop": {}}}, "unknown key(s) in training.callbacks: early_stop"),
        ({"callbacks": {"reduce_lr_on_plateau": {"factor": 2}}}, "factor must be in (0, 1)"),
        ({"augmentation": {"spin": 1}}, "unknown key(s) in augmentation: spin"),
        ({"verbose": "loud"}, "training.verbose must be auto, 0, 1 or 2"),
        ({"deterministic": "yes"}, "training.deterministic must be true or false"),
        ({"restore_best": 1}, "training.restore_best must be true or false"),
        ({"distribute": "multi_worker"}, "training.distribute must be one of none, mirrored"),
        (
            {"precision": "float16"},
            "training.precision must be one of float32, mixed_float16, mixed_bfloat16",
        ),
        ({"jit_compile": 1}, "training.jit_compile must be auto, true or false; got 1"),
        (
            {"callbacks": {"early_stopping": {"restore_best_weights": True}}},
            "early_stopping.restore_best_weights is replaced by training.restore_best",
        ),
        (
            {"callbacks": {"tensorboard": "on"}},
            "training.callbacks.tensorboard must be true or false",
        ),
        (
            {"schedule": {"name": "cosine"}, "callbacks": {"reduce_lr_on_plateau": {}}},
            "reduce_lr_on_plateau needs training.schedule.name: constant",
        ),
    ],
)
def test_bad_training_blocks_are_rejected_with_the_key_named(config, message):
    with pytest.raises(ValueError) as error:
        parse_training_config(config)
    assert message in str(error.value)


def test_a_variant_overrides_single_keys_and_replaces_lists():
    defaults = {
        "architecture": {"blocks": [{"filters": 32}, {"filters": 64}], "head": {"dropout": 0.5}},
        "training": {"epochs": 10, "optimizer": {"name": "adam", "learning_rate": 0.001}},
    }
    variant = {
        "architecture": {"blocks": [{"filters": 8}]},
        "training": {"optimizer": {"learning_rate": 0.01}},
    }
    merged = merge_parameters(defaults, variant)
    assert merged == {
        "architecture": {"blocks": [{"filters": 8}], "head": {"dropout": 0.5}},
        "training": {"epochs": 10, "optimizer": {"name": "adam", "learning_rate": 0.01}},
    }
    merged["training"]["optimizer"]["name"] = "sgd"
    assert defaults["training"]["optimizer"]["name"] == "adam"  # inputs are not changed
    assert variant == {
        "architecture": {"blocks": [{"filters": 8}]},
        "training": {"optimizer": {"learning_rate": 0.01}},
    }
