"""The evaluate nodes on a hand-made prediction table: a perfect model and a sigmoid one."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tests.conftest import write_two_class_split

from imgclf.evaluation.predictions import class_probabilities, prediction_table
from imgclf.pipelines.evaluate.nodes import plot_evaluation, report_section, score_model

EVALUATE = {"gallery_size": 4, "least_confident": 3, "top_k": [3]}
CONFIG = {"name": "scratch_cnn.perfect", "training": {"optimizer": {"name": "adam"}}}
HISTORY = {"epochs": [], "parameters": {"total": 10, "trainable": 10}, "total_seconds": 1.0}


def test_a_perfect_model_scores_one_and_its_mistake_gallery_is_empty(tmp_path):
    split = write_two_class_split(tmp_path, per_class=4)
    classes = split["classes"]
    index = split["val"]
    truth = (index["label"] == "dark").to_numpy()
    probabilities = np.column_stack([np.where(truth, 0.1, 0.8), np.where(truth, 0.9, 0.2)])
    table = prediction_table(index, probabilities, classes)

    metrics = score_model(
        CONFIG,
        history=HISTORY,
        val_predictions=table,
        test_predictions=table,
        classes=classes,
        evaluate=EVALUATE,
    )
    plots = plot_evaluation(
        metrics, HISTORY, table, {"size": 16, "color_mode": "grayscale"}, EVALUATE
    )
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
