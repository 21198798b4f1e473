import numpy as np
import pytest
from tests.conftest import write_two_class_split

from imgclf.evaluation.baseline import (
    parse_baseline,
    predict_pixel_classifier,
    train_pixel_classifier,
)
from imgclf.training.summary import check_summary


def test_the_pixel_baseline_separates_an_easy_split_and_reports_like_a_history(tmp_path):
    split = write_two_class_split(tmp_path, per_class=12)
    classes = ["bright", "dark", "never_seen"]
    parameters = {"name": "baseline.logistic_regression", "image_size": 4}

    model, history = train_pixel_classifier(
        split["train"], split["val"], classes, parameters=parameters, color_mode="grayscale", seed=0
    )
    probabilities = predict_pixel_classifier(
        model, split["val"], parameters=parameters, color_mode="grayscale", num_classes=3
    )

    assert probabilities.shape == (12, 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1)
    assert not probabilities[:, 2].any()  # no training image: probability 0
    truth = split["val"]["label"].map({"bright": 0, "dark": 1}).to_numpy()
    assert (probabilities.argmax(axis=1) == truth).all()
    assert history["best_value"] == 1.0 and history["monitor"] == "val_accuracy"
    assert history["parameters"]["total"] == 4 * 4 + 1  # one weight per pixel, one intercept
    assert history["epochs"] == [] and history["classes"] == classes
    check_summary(history, "baseline")  # the contract the leaderboard reads


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"image_size": 0}, "image_size"),
        ({"C": -1}, "C must be a positive number"),
        ({"max_iter": 1.5}, "max_iter"),
        ({"kernel": "rbf"}, "kernel"),
        ({"solver": "adam"}, "'solver' must be one of lbfgs"),
    ],
)
def test_bad_baseline_parameters_are_refused(parameters, message):
    with pytest.raises(ValueError, match=message):
        parse_baseline(parameters)
