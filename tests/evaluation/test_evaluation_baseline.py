import numpy as np
import pytest
from tests.conftest import write_two_class_split

from imgclf.evaluation.baseline import parse_baseline, predict_classifier, train_classifier
from imgclf.imaging.hog import hog_features
from imgclf.training.summary import check_summary

CLASSES = ["bright", "dark", "never_seen"]


def fit_and_predict(tmp_path, parameters):
    split = write_two_class_split(tmp_path, per_class=12)
    model, history = train_classifier(
        split["train"], split["val"], CLASSES, parameters=parameters, color_mode="grayscale", seed=0
    )
    probabilities = predict_classifier(
        model, split["val"], parameters=parameters, color_mode="grayscale", num_classes=3
    )
    truth = split["val"]["label"].map({"bright": 0, "dark": 1}).to_numpy()
    return model, history, probabilities, truth


def test_the_pixel_baseline_separates_an_easy_split_and_reports_like_a_history(tmp_path):
    parameters = {"name": "baseline.logistic_regression", "image_size": 4}
    _, history, probabilities, truth = fit_and_predict(tmp_path, parameters)

    assert probabilities.shape == (12, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1)
    assert not probabilities[:, 2].any()  # no training image: probability 0
    assert (probabilities.argmax(axis=1) == truth).all()
    assert history["best_value"] == 1.0 and history["monitor"] == "val_accuracy"
    assert history["parameters"]["total"] == 4 * 4 + 1  # one weight per pixel, one intercept
    assert history["epochs"] == [] and history["classes"] == CLASSES
    check_summary(history, "baseline")  # the contract the leaderboard reads


def test_a_classifier_without_probabilities_is_calibrated_and_hog_features_feed_it(tmp_path):
    parameters = {
        "name": "baseline.hog_svm",
        "estimator": "LinearSVC",
        "features": {"name": "hog", "pixels_per_cell": 4},
        "image_size": 16,
    }
    model, history, probabilities, _ = fit_and_predict(tmp_path, parameters)

    assert type(model[-1]).__name__ == "CalibratedClassifierCV"  # LinearSVC has no predict_proba
    np.testing.assert_allclose(probabilities.sum(axis=1), 1)
    # 16 px in 4 px cells: 3x3 blocks of 2x2 cells of 9 orientations, one weight each
    assert history["parameters"]["total"] == 3 * 3 * 2 * 2 * 9 + 1
    check_summary(history, "baseline")


def test_an_svc_by_dotted_path_on_raw_pixels(tmp_path):
    parameters = {"estimator": "sklearn.svm.SVC", "standardize": False, "C": 10.0}
    model, _, probabilities, truth = fit_and_predict(tmp_path, parameters)
    assert [type(step).__name__ for step in model] == ["CalibratedClassifierCV"]  # no scaler
    assert (probabilities.argmax(axis=1) == truth).all()


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"image_size": 0}, "image_size"),
        ({"C": -1}, "The 'C' parameter of LogisticRegression must be"),
        ({"max_iter": 1.5}, "max_iter"),
        ({"kernel": "rbf"}, "unknown key.*kernel"),
        ({"solver": "adam"}, "'solver' parameter of LogisticRegression must be"),
        ({"estimator": "SVM"}, "'SVM' is not a scikit-learn classifier; did you mean .*SVC"),
        ({"estimator": "sklearn.linear_model.LinearRegression"}, "not a scikit-learn classifier"),
        ({"features": "sift"}, "baseline.features must be one of pixels, hog"),
        ({"features": {"name": "hog", "cells": 2}}, "unknown key.*cells"),
        ({"standardize": "yes"}, "standardize must be true or false"),
    ],
)
def test_bad_baseline_parameters_are_refused(parameters, message):
    with pytest.raises(ValueError, match=message):
        parse_baseline(parameters)


def test_hog_puts_a_vertical_edge_in_the_horizontal_gradient_bin():
    image = np.zeros((1, 8, 8), np.float32)
    image[:, :, 4:] = 1.0  # dark left, bright right: gradients point along x (0 degrees)
    features = hog_features(image, orientations=9, pixels_per_cell=4, cells_per_block=2)
    assert features.shape == (1, 1 * 1 * 2 * 2 * 9)
    cells = features.reshape(2, 2, 9)  # the one block's four cells
    assert (cells[..., 1:] == 0).all() and (cells[..., 0] > 0).all()
    np.testing.assert_allclose(np.linalg.norm(features), 1.0, rtol=1e-3)


def test_hog_refuses_images_smaller_than_a_block():
    with pytest.raises(ValueError, match="raise image_size or lower pixels_per_cell"):
        hog_features(np.zeros((1, 6, 6)), pixels_per_cell=4, cells_per_block=2)
