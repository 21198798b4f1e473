"""The evaluate nodes on a hand-made prediction table: a perfect model and a sigmoid one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tests.conftest import write_two_class_split

from imgclf.evaluation.config import parse_evaluation
from imgclf.evaluation.predictions import class_probabilities, prediction_table
from imgclf.pipelines.evaluate.nodes import (
    build_leaderboard,
    compare_settings,
    compare_sweep,
    explain_model,
    plot_evaluation,
    predict_splits,
    report_section,
    score_model,
    summarise_leaderboard,
)

EVALUATE = parse_evaluation({"gallery_size": 4, "least_confident": 3, "top_k": [3]})
CONFIG = {
    "name": "scratch_cnn.perfect",
    "image": {"size": 16, "color_mode": "grayscale"},
    "training": {"optimizer": {"name": "adam"}},
}
HISTORY = {
    "variant": "scratch_cnn.perfect",
    "classes": ["bright", "dark"],
    "epochs": [],
    "epochs_run": None,
    "monitor": "val_accuracy",
    "best_epoch": None,
    "best_value": None,
    "total_seconds": 1.0,
    "seconds_per_epoch": None,
    "parameters": {"total": 10, "trainable": 10, "non_trainable": 0},
    "model_size_mb": 0.001,
}


def score(table, classes, name="scratch_cnn.perfect", config=CONFIG, history=HISTORY):
    """score_model with ``table`` as the val and the test predictions."""
    return score_model(
        config,
        history=history,
        val_predictions=table,
        test_predictions=table,
        classes=classes,
        settings=EVALUATE,
        name=name,
    )


def test_a_perfect_model_scores_one_and_its_mistake_gallery_is_empty(tmp_path):
    split = write_two_class_split(tmp_path, per_class=4)
    classes = split["classes"]
    index = split["val"]
    truth = (index["label"] == "dark").to_numpy()
    probabilities = np.column_stack([np.where(truth, 0.1, 0.8), np.where(truth, 0.9, 0.2)])
    table = prediction_table(index, probabilities, classes)

    metrics = score(table, classes)
    plots = plot_evaluation(CONFIG, metrics, HISTORY, table, EVALUATE)
    section = report_section(metrics, plots)

    assert metrics["test"]["accuracy"] == 1.0 and metrics["misclassified"] == 0
    assert metrics["test"]["top_k_accuracy"] == {}  # top-3 of 2 classes says nothing
    assert [row["margin"] for row in metrics["least_confident"]] == pytest.approx([0.6, 0.6, 0.8])
    assert metrics["facts"]["family"] == "scratch_cnn" and metrics["facts"]["optimizer"] == "adam"
    assert set(plots) == {
        "confusion_matrix",
        "confusion_matrix_normalised",
        "misclassified",
        "least_confident",
    }  # no epochs: no training curves
    assert all(isinstance(image, Image.Image) for image in plots.values())
    assert "<td>misclassified</td><td>0 of 4</td>" in section
    shown = {alt.split('"', 1)[0] for alt in section.split('<img alt="')[1:]}
    assert shown == set(plots)


def test_a_variant_not_trained_yet_is_listed_as_such_and_the_others_ranked(tmp_path):
    split = write_two_class_split(tmp_path, per_class=4)
    classes, index = split["classes"], split["val"]
    val, test = predict_splits(
        None,
        config=None,
        train_index=index,
        val_index=index,
        test_index=index,
        classes=classes,
        settings=EVALUATE,
    )
    assert val.empty and test.empty and "p:dark" in test.columns
    missing = score(test, classes, name="transfer.new", config=None, history=None)
    assert missing == {"model": "transfer.new", "trained": False, "classes": classes}
    assert plot_evaluation(None, missing, None, test, EVALUATE) == {}
    assert explain_model(None, None, test, EVALUATE) == {}
    assert "Not trained yet" in report_section(missing, {})

    truth = (index["label"] == "dark").to_numpy()
    table = prediction_table(index, np.column_stack([~truth, truth]).astype(float), classes)
    scored = score(table, classes)
    leaderboard = build_leaderboard(**{"transfer.new": missing, "scratch_cnn.perfect": scored})
    assert leaderboard["model"].tolist() == ["scratch_cnn.perfect", "transfer.new"]
    assert leaderboard["status"].tolist() == ["trained", "not trained"]
    assert pd.isna(leaderboard["test_accuracy"].iloc[1])
    pairs = compare_settings(EVALUATE, **{"transfer.new": missing, "scratch_cnn.perfect": scored})
    assert pairs.empty  # one trained model: no pair
    written = summarise_leaderboard(leaderboard, pairs, EVALUATE)
    assert "**Best overall: scratch_cnn.perfect**" in written
    assert "Not trained yet, so not ranked: transfer.new" in written

    comparison, plot = compare_sweep(perfect=scored, new=missing, sweep="scratch_cnn.arms")
    assert comparison["arm"].tolist() == ["perfect", "new"]
    assert comparison["test_accuracy"].iloc[0] == 1.0 and pd.isna(comparison["macro_f1"].iloc[1])
    assert isinstance(plot, Image.Image)


def test_a_history_of_another_version_is_refused_with_the_fix(tmp_path):
    split = write_two_class_split(tmp_path, per_class=2)
    table = prediction_table(split["val"], np.full((len(split["val"]), 2), 0.5), split["classes"])
    old = {key: value for key, value in HISTORY.items() if key not in ("classes", "monitor")}
    lacks = r"scratch_cnn\.old: its training history lacks classes, monitor"
    with pytest.raises(ValueError, match=lacks):
        score(table, split["classes"], name="scratch_cnn.old", history=old)


def test_one_sigmoid_unit_is_read_as_two_class_probabilities():
    outputs = np.array([[0.8], [0.1]])
    table = prediction_table(
        pd.DataFrame({"path": ["a", "b"], "label": ["yes", "no"]}),
        class_probabilities(outputs),
        ["no", "yes"],
    )
    assert table["predicted"].tolist() == ["yes", "no"]
    np.testing.assert_allclose(table["p:no"], [0.2, 0.9])
    assert table["correct"].all()


def test_class_names_like_numbers_stay_strings_through_the_prediction_csv(project):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env="test") as session:
        catalog = session.load_context().catalog
        table = prediction_table(
            pd.DataFrame({"path": ["a.png", "b.png"], "label": ["0", "07"]}),
            np.array([[0.9, 0.1], [0.3, 0.7]]),
            ["0", "07"],
        )
        catalog.save("scratch_cnn.digits.test_predictions", table)
        loaded = catalog.load("scratch_cnn.digits.test_predictions")
    assert loaded["label"].tolist() == ["0", "07"] and loaded["predicted"].tolist() == ["0", "07"]
