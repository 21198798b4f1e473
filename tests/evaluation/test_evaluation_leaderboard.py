import pandas as pd
import pytest

from imgclf.evaluation.leaderboard import (
    COLUMNS,
    backbone_weights,
    leaderboard_table,
    model_facts,
    summary,
    with_integer_columns,
)
from imgclf.reporting.tables import markdown_table


def metrics(name, accuracy, seconds, *, loss=0.5, backbone=None, weights="imagenet", epochs=5):
    config = {
        "name": name,
        "training": {
            "optimizer": {"name": "sgd"},
            "augmentation": {"rotation": 0.05, "zoom": 0.1, "fill_mode": "nearest"},
        },
        "backbone": {"name": backbone, "weights": weights} if backbone else None,
    }
    history = {
        "parameters": {"total": 1000, "trainable": 600},
        "model_size_mb": 0.004,
        "epochs_run": epochs,
        "best_epoch": epochs,
        "seconds_per_epoch": seconds / epochs if epochs else None,
        "total_seconds": seconds,
    }
    return {
        "facts": model_facts(config, history),
        "val": {"accuracy": accuracy},
        "test": {"accuracy": accuracy, "loss": loss, "macro": {"f1": accuracy - 0.01}},
    }


BOARD = [
    metrics("scratch_cnn.deep", 0.950, 40.0),
    metrics("transfer.sgd", 0.962, 120.0, backbone="resnet50"),
    metrics("finetune.sgd_aug", 0.958, 60.0, backbone="resnet50"),
    metrics("baseline.logistic_regression", 0.400, 2.0, epochs=None),
]


def test_the_leaderboard_has_a_row_per_model_best_first_with_the_facts():
    table = leaderboard_table(BOARD)
    assert list(table.columns) == COLUMNS
    assert list(table["model"]) == [
        "transfer.sgd",
        "finetune.sgd_aug",
        "scratch_cnn.deep",
        "baseline.logistic_regression",
    ]
    first = table.iloc[0]
    assert (first["family"], first["variant"], first["backbone"]) == ("transfer", "sgd", "resnet50")
    assert first["optimizer"] == "sgd" and first["augmentation"] == "rotation 0.05, zoom 0.1"
    assert table["epochs_run"].dtype == "Int64" and pd.isna(table["epochs_run"].iloc[3])


def test_equal_accuracy_is_broken_by_the_lower_loss():
    table = leaderboard_table(
        [metrics("a.worse", 0.9, 1.0, loss=0.6), metrics("a.better", 0.9, 1.0, loss=0.3)]
    )
    assert list(table["model"]) == ["a.better", "a.worse"]


def test_a_model_listed_twice_is_refused():
    with pytest.raises(ValueError, match=r"listed twice: transfer\.sgd"):
        leaderboard_table([BOARD[1], BOARD[1]])


def test_the_summary_names_the_best_the_best_per_family_and_the_quickest_close_one():
    text = summary(leaderboard_table(BOARD), tolerance=0.01)
    assert "**Best overall: transfer.sgd**, test accuracy 0.962" in text
    assert (
        "  - scratch_cnn: scratch_cnn.deep, test accuracy 0.950 (1.2 points below the best)" in text
    )
    # scratch_cnn.deep, the quickest network, is 1.2 points off the best
    assert "**Quickest within 1 point of the best: finetune.sgd_aug**, test accuracy 0.958" in text
    assert "3 of 3 networks beat it" in text

    wider = summary(leaderboard_table(BOARD), tolerance=0.02)
    assert "**Quickest within 2 points of the best: scratch_cnn.deep**" in wider

    quick_best = [metrics("scratch_cnn.small", 0.978, 6.0), metrics("scratch_cnn.big", 0.975, 9.0)]
    both = summary(leaderboard_table(quick_best), tolerance=0.01)
    assert "scratch_cnn.small is also the quickest to train of the 2 models within 1 point" in both

    alone = summary(leaderboard_table(BOARD[:1] + BOARD[3:]), tolerance=0.01)
    assert (
        "No other model is within 1 point of the best; scratch_cnn.deep trained in 40.0 s" in alone
    )


def test_markdown_survives_a_csv_round_trip(tmp_path):
    path = tmp_path / "leaderboard.csv"
    leaderboard_table(BOARD).to_csv(path, index=False)
    text = markdown_table(with_integer_columns(pd.read_csv(path)))
    assert (
        "| transfer.sgd | trained | transfer | sgd | resnet50 | imagenet | sgd | "
        "rotation 0.05, zoom 0.1 "
        "| 1000 | 600 |" in text
    )
    assert "| 5 | 5 |" in text and "| — | — |" in text


def test_the_weights_column_says_what_each_backbone_started_from():
    board = [
        *BOARD,
        metrics("transfer.adam", 0.1, 50.0, backbone="resnet50", weights=None),
        metrics("transfer.own", 0.5, 50.0, backbone="resnet50", weights="data/w/my.h5"),
    ]
    weights = leaderboard_table(board).set_index("model")["weights"]
    assert weights["transfer.sgd"] == "imagenet"
    assert weights["transfer.adam"] == "random"
    assert weights["transfer.own"] == "my.h5"
    assert pd.isna(weights["scratch_cnn.deep"]) and pd.isna(weights["baseline.logistic_regression"])
    assert backbone_weights({"name": "vgg16", "weights": "none"}) == "random"


def test_the_summary_opens_by_naming_the_models_that_started_from_random_weights():
    board = [*BOARD, metrics("transfer.adam", 0.1, 50.0, backbone="resnet50", weights=None)]
    text = summary(leaderboard_table(board), tolerance=0.01)
    first = text.splitlines()[2]
    assert first.startswith("- **Random weights:** transfer.adam started from random")
    assert "backbone.weights=imagenet" in first
    assert "Random weights" not in summary(leaderboard_table(BOARD), tolerance=0.01)
