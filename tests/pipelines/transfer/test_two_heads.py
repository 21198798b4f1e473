"""S3's two-head VGG16 (docs/transfer.md, "S3 boxes") on the test environment with random
weights: it trains on the demo's boxes, evaluate scores and draws its boxes, predict
writes them and the export returns both outputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from tests.conftest import copy_project, kedro_run
from tests.test_docs_examples import example

from imgclf.datasets.image_directory import BOX_COLUMNS

pytestmark = pytest.mark.slow  # every test here reads the outputs of the same four runs

VARIANT = "transfer.s3_boxes"


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("two_heads") / "project")
    (root / "conf" / "test" / "parameters_s3_boxes.yml").write_text(example("S3 boxes"))
    run = ("--env", "test", "--pipelines")
    weights = ("--params", "backbone.weights=none")
    kedro_run(root, *run, "ingest,split", *weights)
    kedro_run(root, *run, "transfer", "--namespaces", VARIANT, *weights)
    kedro_run(root, *run, "evaluate", *weights)
    kedro_run(root, *run, "predict", "--params", f"predict.model={VARIANT}")
    return root / "data" / "test"


def test_it_trains_on_the_boxes_and_logs_their_iou(finished):
    history = json.loads((finished / "07_model_output/transfer/s3_boxes/history.json").read_text())
    epoch = history["epochs"][-1]
    assert 0 <= epoch["box_iou"] <= 1 and 0 <= epoch["val_box_iou"] <= 1
    assert epoch["loss"] == pytest.approx(epoch["class_loss"] + 10 * epoch["box_loss"], rel=1e-3)
    config = json.loads((finished / "06_models/transfer/s3_boxes/config.json").read_text())
    assert config["output"] == {"class": "softmax", "box": {"loss_weight": 10.0, "beta": 0.1}}


def test_evaluate_scores_and_draws_the_boxes(finished):
    metrics = json.loads((finished / "08_reporting/transfer/s3_boxes/metrics.json").read_text())
    box = metrics["test"]["box"]
    assert set(box) == {"mean_iou", "share_iou_at_least_0.5", "mean_box_iou"}
    assert all(0 <= value <= 1 for value in box.values())
    predictions = pd.read_csv(finished / "07_model_output/transfer/s3_boxes/test_predictions.csv")
    assert box["mean_iou"] == pytest.approx(predictions["iou"].mean())
    # the true boxes are the demo's, from ingest; the predicted ones lie in the image
    index = pd.read_parquet(finished / "05_model_input/test_index.parquet")
    truth = index.set_index("path").loc[predictions["path"], BOX_COLUMNS].to_numpy()
    np.testing.assert_allclose(predictions[BOX_COLUMNS].to_numpy(), truth)
    drawn = Image.open(finished / "08_reporting/transfer/s3_boxes/evaluation/boxes.png")
    pixels = np.asarray(drawn.convert("RGB")).astype(int)
    green = (pixels[..., 1] > 200) & (pixels[..., 0] < 80) & (pixels[..., 2] < 80)
    red = (pixels[..., 0] > 200) & (pixels[..., 1] < 80) & (pixels[..., 2] < 80)
    assert green.sum() > 100 and red.sum() > 100  # both boxes are drawn


def test_predict_writes_each_images_box_and_the_export_returns_both(finished):
    predictions = pd.read_csv(finished / "07_model_output/predictions/predictions.csv")
    assert ((predictions[BOX_COLUMNS] >= 0) & (predictions[BOX_COLUMNS] <= 1)).all().all()
    with Image.open(predictions["path"].iloc[0]) as image:
        width = image.width
    np.testing.assert_allclose(
        predictions["box_x_max_px"], (predictions["box_x_max"] * width).round(1), atol=0.051
    )
    import tensorflow as tf

    exported = tf.saved_model.load(str(finished / "06_models/exported/saved_model"))
    config = json.loads((finished / "06_models/transfer/s3_boxes/config.json").read_text())
    size = config["image"]["size"]
    outputs = exported.serve(tf.fill((2, size, size, 1), 120.0))
    assert outputs["class"].shape == (2, 12) and outputs["box"].shape == (2, 4)
