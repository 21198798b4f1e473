"""The predict pipeline: new images -> predictions with a chosen model, unreadable files
listed, the model exported as a SavedModel that gives the same probabilities."""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import pytest
from tests.conftest import run_pipeline, transfer_model, write_two_class_split

from imgclf.datasets import ImageDirectoryDataset, SavedModelDataset
from imgclf.evaluation.new_images import predict_images
from imgclf.pipelines.predict import create_pipeline
from imgclf.pipelines.predict.nodes import choose_model

CLASSES = ["bright", "dark"]
IMAGE = {"size": 32, "color_mode": "grayscale"}


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return transfer_model(num_classes=2).model


@pytest.fixture
def folder_with_broken_files(tmp_path):
    split = write_two_class_split(tmp_path / "incoming", per_class=3, size=40)
    root = tmp_path / "incoming"
    (root / "dark" / "empty.png").write_bytes(b"")
    (root / "dark" / "notes.png").write_text("not a picture")
    good = split["train"]["path"].iloc[0]
    truncated = root / "bright" / "truncated.png"
    truncated.write_bytes(open(good, "rb").read()[:60])
    return root


def inputs(model, new_images, tmp_path, *, trained_classes=CLASSES, classes=CLASSES):
    leaderboard = pd.DataFrame(
        {
            "model": ["baseline.logistic_regression", "transfer.tiny"],
            "family": ["baseline", "transfer"],
            "test_accuracy": [0.9, 0.8],
        }
    )
    return {
        "leaderboard": leaderboard,
        "trained_models": {"transfer/tiny": lambda: model},
        "trained_model_histories": {"transfer/tiny": lambda: {"classes": trained_classes}},
        "new_images": new_images,
        "classes": classes,
        "params:image": IMAGE,
        "params:predict": {"model": "best", "batch_size": 4, "top_k": 3},
        "params:ingest": {"max_pixels": 10_000_000},
        "exported_model": SavedModelDataset(filepath=str(tmp_path / "exported" / "saved_model")),
    }


@pytest.mark.slow
def test_predict_labels_a_folder_lists_the_broken_files_and_exports_the_model(
    model, folder_with_broken_files, tmp_path
):
    new_images = ImageDirectoryDataset(path=str(folder_with_broken_files)).load()

    out = run_pipeline(create_pipeline(), inputs(model, new_images, tmp_path))

    predictions, unreadable = out["predictions"], out["unreadable_images"]
    assert out["prediction_model_name"] == "transfer.tiny"  # the best network, not the baseline
    assert len(predictions) == 6
    assert list(predictions.columns) == [
        "path",
        "label",
        "confidence",
        "label_2",
        "confidence_2",
        "true_label",
        "correct",
    ]  # top_k 3 of 2 classes: two
    assert set(predictions["label"]) <= set(CLASSES)
    assert (predictions["confidence"] >= predictions["confidence_2"]).all()
    np.testing.assert_allclose(
        predictions["confidence"] + predictions["confidence_2"], 1, atol=1e-5
    )
    reasons = dict(
        zip(unreadable["path"].map(lambda p: p.rsplit("/", 1)[-1]), unreadable["reason"])
    )
    assert reasons == {
        "empty.png": "empty file",
        "notes.png": "not an image",
        "truncated.png": "corrupt or truncated",
    }
    summary = out["prediction_summary"]
    assert (summary["images"], summary["predicted"], summary["unreadable"]) == (9, 6, 3)
    assert summary["accuracy"] == pytest.approx(predictions["correct"].mean())

    # the SavedModel takes raw pixels and returns the Keras model's probabilities
    served = SavedModelDataset(filepath=str(tmp_path / "exported" / "saved_model")).load()
    pixels = np.random.default_rng(1).uniform(0, 255, (5, 32, 32, 1)).astype("float32")
    np.testing.assert_allclose(
        np.asarray(served.serve(pixels)), model.predict(pixels, verbose=0), atol=1e-5
    )


def test_a_model_trained_on_other_classes_is_refused_with_the_difference(model, tmp_path):
    images = pd.DataFrame({"path": []})
    with pytest.raises(
        ValueError,
        match=r"trained on the classes \['bright', 'dark'\].*only `classes` has \['grey'\]",
    ):
        run_pipeline(
            create_pipeline().only_nodes("choose_model", "label_new_images"),
            inputs(model, images, tmp_path, classes=["bright", "grey"]),
        )
    with pytest.raises(ValueError, match="outputs 2 class probabilities but `classes` has 3"):
        run_pipeline(
            create_pipeline().only_nodes("choose_model", "label_new_images"),
            inputs(model, images, tmp_path, trained_classes=None, classes=["a", "b", "c"]),
        )


def test_an_unknown_model_name_lists_the_trained_ones(model, tmp_path):
    parameters = inputs(model, pd.DataFrame({"path": []}), tmp_path)
    parameters["params:predict"] = {"model": "transfer.huge"}
    with pytest.raises(
        ValueError, match=r"no trained model named 'transfer\.huge'; found: transfer\.tiny"
    ):
        run_pipeline(create_pipeline().only_nodes("choose_model", "label_new_images"), parameters)


def test_best_needs_a_trained_network():
    baseline_only = pd.DataFrame(
        {"model": ["baseline.x"], "family": ["baseline"], "test_accuracy": [0.5]}
    )
    with pytest.raises(ValueError, match="no trained network"):
        choose_model(baseline_only, {"model": "best"})
    with pytest.raises(ValueError, match="unknown key"):
        choose_model(baseline_only, {"modle": "best"})


def test_an_image_over_the_pixel_limit_is_listed_not_decoded(model, tmp_path):
    split = write_two_class_split(tmp_path / "big", per_class=1, size=40)
    images = pd.concat([split["train"], split["val"]])
    predictions, unreadable = predict_images(
        model, images, CLASSES, image=IMAGE, batch_size=4, top_k=1, max_pixels=40 * 40 - 1
    )
    assert predictions.empty
    assert unreadable["reason"].tolist() == ["too many pixels", "too many pixels"]
