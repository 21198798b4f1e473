"""A model with a class and a box output: its configuration, loss, metric and training."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgclf.datasets.image_directory import BOX_COLUMNS
from imgclf.evaluation.boxes import box_iou
from imgclf.imaging.dataset import make_dataset
from imgclf.models.boxes import BoxIoU, SmoothL1, box_layer
from imgclf.models.cnn import build_cnn
from imgclf.models.head import BoxOutput, Output, parse_output
from imgclf.pipelines.transfer.nodes import resolve_variant
from imgclf.training.fit import train_model

BOXES = np.array([[0.1, 0.1, 0.5, 0.5], [0.0, 0.0, 0.2, 0.2], [0.2, 0.2, 0.6, 0.4]])
OTHER = np.array([[0.1, 0.1, 0.5, 0.5], [0.5, 0.5, 0.9, 0.9], [0.4, 0.2, 0.8, 0.4]])
ARCHITECTURE = {
    "blocks": [{"filters": 8, "kernel_size": 3, "padding": "same"}],
    "head": {"pooling": "flatten", "dense": [{"units": 16}]},
    "output": {"class": "softmax", "box": {}},
}


def test_an_output_is_a_name_or_a_class_and_a_box():
    assert parse_output("sigmoid", "v") == Output(activation="sigmoid")
    both = parse_output({"class": "softmax", "box": {"loss_weight": 4}}, "v")
    assert both == Output(activation="softmax", box=BoxOutput(loss_weight=4.0, beta=0.1))
    assert both.to_parameters() == {"class": "softmax", "box": {"loss_weight": 4.0, "beta": 0.1}}
    assert parse_output({"box": None}, "v").to_parameters() == "softmax"
    with pytest.raises(ValueError, match=r"'output.box.beta' must be a positive number; got 0"):
        parse_output({"box": {"beta": 0}}, "transfer.s3")
    with pytest.raises(ValueError, match=r"in transfer.s3 output.box: weight; valid .*loss_weight"):
        parse_output({"box": {"weight": 1}}, "transfer.s3")


def test_the_iou_of_boxes_is_overlap_over_union():
    expected = [1.0, 0.0, (0.2 * 0.2) / (0.4 * 0.2 * 2 - 0.2 * 0.2)]
    np.testing.assert_allclose(box_iou(BOXES, OTHER), expected)
    metric = BoxIoU()
    metric.update_state(BOXES[:2], OTHER[:2])
    metric.update_state(BOXES[2:], OTHER[2:])
    assert float(metric.result()) == pytest.approx(np.mean(expected))


def test_smooth_l1_is_quadratic_within_beta_and_linear_beyond():
    loss = SmoothL1(beta=0.1)
    true = np.zeros((1, 4), np.float32)
    # errors 0.05 and 0.3: 0.5 * 0.05**2 / 0.1 and 0.3 - 0.05, averaged over four edges
    predicted = np.array([[0.05, 0.3, 0.0, 0.0]], np.float32)
    assert float(loss(true, predicted)) == pytest.approx((0.0125 + 0.25) / 4)


def square_images(root, count: int = 24, size: int = 24) -> pd.DataFrame:
    """Images of a bright square on black, the square's box as the label's box."""
    random, rows = np.random.default_rng(0), []
    for number in range(count):
        side = int(random.integers(6, 12))
        left, top = (int(value) for value in random.integers(0, size - side, 2))
        pixels = np.zeros((size, size), np.uint8)
        pixels[top : top + side, left : left + side] = 255
        path = root / f"{number}.png"
        Image.fromarray(pixels).save(path)
        box = [left / size, top / size, (left + side) / size, (top + side) / size]
        rows.append(
            {
                "path": str(path),
                "label": "big" if side > 8 else "small",
                **dict(zip(BOX_COLUMNS, box)),
            }
        )
    return pd.DataFrame(rows)


def test_a_box_model_trains_logs_its_box_iou_and_comes_back_from_its_file(tmp_path):
    index = square_images(tmp_path)
    model = build_cnn(ARCHITECTURE, input_shape=(24, 24, 1), num_classes=2, name="boxes")
    assert box_layer(model) is not None
    training = {"epochs": 2, "batch_size": 8, "augmentation": {"horizontal_flip": True}}
    model, history = train_model(
        model,
        index[:16],
        index[16:],
        ["big", "small"],
        image={"size": 24, "color_mode": "grayscale"},
        training=training,
        seed=0,
    )
    last = history["epochs"][-1]
    assert {"box_iou", "val_box_iou", "box_loss", "class_loss", "val_accuracy"} <= set(last)
    assert last["accuracy"] == last["class_accuracy"]  # the name every monitor reads
    assert history["best_epoch"] is not None  # by val_accuracy
    path = tmp_path / "boxes.keras"
    model.save(path)
    loaded = keras.models.load_model(path)
    images = np.stack([np.asarray(Image.open(p))[..., None] for p in index["path"][:4]])
    outputs = loaded.predict(images.astype(np.float32), verbose=0)
    assert outputs["class"].shape == (4, 2) and outputs["box"].shape == (4, 4)
    assert (0 <= outputs["box"]).all() and (outputs["box"] <= 1).all()
    np.testing.assert_allclose(
        outputs["box"], model.predict(images.astype(np.float32), verbose=0)["box"], atol=1e-6
    )


def test_a_box_variant_that_rotates_is_refused_before_training():
    with pytest.raises(
        ValueError, match=r"transfer.s3: a box variant cannot be augmented with rotation"
    ):
        resolve_variant(
            {"size": 32, "color_mode": "grayscale"},
            {"name": "vgg16", "weights": None},
            {"training": {"augmentation": {"rotation": 0.1}}},
            {"output": {"class": "softmax", "box": {}}},
            name="transfer.s3",
        )


def test_a_box_dataset_needs_boxes_in_the_index(tmp_path):
    index = square_images(tmp_path, count=2).drop(columns=BOX_COLUMNS)
    with pytest.raises(ValueError, match=r"predicts boxes, but the image index has none.*`boxes`"):
        make_dataset(index, ["big", "small"], image_size=24, color_mode="grayscale", boxes=True)


def test_a_box_model_on_an_index_without_boxes_is_refused_before_training(tmp_path):
    index = square_images(tmp_path, count=4).drop(columns=BOX_COLUMNS)
    model = build_cnn(ARCHITECTURE, input_shape=(24, 24, 1), num_classes=2, name="boxes")
    with pytest.raises(ValueError, match=r"predicts boxes, but the image index has none"):
        train_model(
            model,
            index[:2],
            index[2:],
            ["big", "small"],
            image={"size": 24, "color_mode": "grayscale"},
            training={"epochs": 1},
            seed=0,
        )
    assert not model.compiled  # refused before compiling, let alone fitting
