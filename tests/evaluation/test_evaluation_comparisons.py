"""Pairs of models that differ in one setting, and the patterns the pairs share."""

import pandas as pd

from imgclf.evaluation.comparisons import comparison_lines, comparison_table, flat_settings
from imgclf.evaluation.leaderboard import leaderboard_table, summary

ADAM = {"name": "adam", "learning_rate": 0.001}
SGD = {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}
AUGMENTED = {"rotation": 0.05, "zoom": 0.1}


def metrics(name, accuracy, *, optimizer=ADAM, augmentation=None, units=1024, parameters=1000):
    config = {
        "name": name,
        "head": {"pooling": "flatten", "dense": [{"units": units, "activation": "relu"}]},
        "training": {"epochs": 5, "optimizer": optimizer, "augmentation": augmentation or {}},
    }
    return {
        "model": name,
        "trained": True,
        "facts": {"model": name, "family": name.split(".")[0], "parameters_total": parameters},
        "settings": flat_settings(config),
        "test": {"accuracy": accuracy, "loss": 1 - accuracy, "macro": {"f1": accuracy}},
        "val": {"accuracy": accuracy},
    }


def test_a_configuration_flattens_to_its_leaves_by_path():
    config = {"name": "x", "head": {"dense": [{"units": 8}], "conv": []}, "output": "softmax"}
    assert flat_settings(config) == {"head.dense.0.units": 8, "head.conv": [], "output": "softmax"}


def test_only_pairs_that_differ_in_one_setting_are_compared_and_the_winner_named():
    table = comparison_table(
        [
            metrics("transfer.adam", 0.90),
            metrics("transfer.sgd", 0.85, optimizer=SGD),
            metrics("transfer.adam_aug", 0.95, augmentation=AUGMENTED),
            metrics("transfer.sgd_aug", 0.951, optimizer=SGD, augmentation=AUGMENTED),
            {"model": "transfer.later", "trained": False},
        ],
        tolerance=0.01,
    )
    pairs = {(row.model_a, row.model_b): row for row in table.itertuples()}
    # adam vs sgd_aug differ in two settings; the untrained model has none
    assert set(pairs) == {
        ("transfer.adam", "transfer.sgd"),
        ("transfer.adam_aug", "transfer.sgd_aug"),
        ("transfer.adam", "transfer.adam_aug"),
        ("transfer.sgd", "transfer.sgd_aug"),
    }
    optimizer = pairs["transfer.adam", "transfer.sgd"]
    assert (optimizer.setting, optimizer.value_a, optimizer.value_b) == (
        "training.optimizer",
        "adam",
        "sgd",
    )
    assert (optimizer.winner, optimizer.winning_value, optimizer.points) == (
        "transfer.adam",
        "adam",
        5.0,
    )
    augmentation = pairs["transfer.adam", "transfer.adam_aug"]
    assert (augmentation.setting, augmentation.value_a, augmentation.value_b) == (
        "training.augmentation",
        "none",
        "rotation=0.05, zoom=0.1",
    )
    level = pairs["transfer.adam_aug", "transfer.sgd_aug"]
    assert level.winner == "level" and level.points == 0.1  # under the 1-point tolerance

    lines = comparison_lines(table)
    assert (
        "  - training.optimizer: transfer.adam (adam, 0.900) vs transfer.sgd (sgd, 0.850): "
        "**adam** beat sgd by 5 points" in lines
    )
    assert any("transfer.sgd_aug (sgd, 0.951): level (0.1 points apart)" in x for x in lines)
    assert (
        "  - training.augmentation none vs rotation=0.05, zoom=0.1: "
        "**rotation=0.05, zoom=0.1 won all 2 decided pairs**." in lines
    )


def test_a_value_that_wins_on_large_models_and_loses_on_small_ones_is_named_with_the_size():
    models = []
    for name, parameters, adam, sgd in [
        ("tiny", 200_000, 0.9, 0.8),
        ("small", 2_000_000, 0.9, 0.85),
        ("big", 12_000_000, 0.8, 0.9),
        ("huge", 25_000_000, 0.7, 0.9),
    ]:
        models += [
            metrics(f"{name}.adam", adam, units=parameters, parameters=parameters),
            metrics(f"{name}.sgd", sgd, optimizer=SGD, units=parameters, parameters=parameters),
        ]
    table = comparison_table(models, tolerance=0.01)
    assert (table["setting"] == "training.optimizer").sum() == 4  # and head.dense pairs
    text = summary(leaderboard_table(models), tolerance=0.01, comparisons=comparison_lines(table))
    # the split falls between 2 M and 12 M parameters: their geometric mean, ~4.9 M
    assert (
        "  - training.optimizer adam vs sgd: **sgd won above ~4.9 M parameters, adam below** "
        "(4 decided pairs)." in text
    )


def test_pairs_without_a_pattern_say_how_the_wins_split():
    models = [
        metrics("a.adam", 0.9, parameters=1_000),
        metrics("a.sgd", 0.8, optimizer=SGD, parameters=1_000),
        metrics("b.adam", 0.7, units=64, parameters=2_000),
        metrics("b.sgd", 0.9, optimizer=SGD, units=64, parameters=2_000),
        metrics("c.adam", 0.9, units=32, parameters=3_000),
        metrics("c.sgd", 0.8, optimizer=SGD, units=32, parameters=3_000),
    ]
    table = comparison_table(models, tolerance=0.01)
    optimizer = table[table["setting"] == "training.optimizer"]
    assert len(optimizer) == 3
    assert any(
        "training.optimizer adam vs sgd: no pattern; wins adam 2, sgd 1." in line
        for line in comparison_lines(table)
    )
    assert comparison_lines(pd.DataFrame(columns=table.columns)) == []


def test_wins_split_between_models_of_one_size_are_no_size_pattern():
    models = [
        metrics("a.adam", 0.9),
        metrics("a.sgd", 0.8, optimizer=SGD),
        metrics("b.adam", 0.7, augmentation=AUGMENTED),
        metrics("b.sgd", 0.9, optimizer=SGD, augmentation=AUGMENTED),
    ]
    lines = comparison_lines(comparison_table(models, tolerance=0.01))
    assert "  - training.optimizer adam vs sgd: no pattern; wins adam 1, sgd 1." in lines
