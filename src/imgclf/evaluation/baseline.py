"""The baseline every CNN is compared with: a scikit-learn logistic regression on
downsampled raw pixels (standardised), trained on the same split.

The training summary has the keys of a Keras training history
(:func:`imgclf.training.fit.summarise_history`) that the leaderboard reads, so the
baseline is scored and listed the same way as the networks.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from imgclf.config import block_items
from imgclf.imaging.dataset import labels_to_ids
from imgclf.imaging.decode import read_image, size_tuple
from imgclf.imaging.index_files import check_index_files
from imgclf.models.checks import choice, positive_int, size_pair
from imgclf.models.summary import BYTES_PER_MB

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)

# name and image (the project's image settings) are what the resolved config adds
VALID_KEYS = ("name", "image", "image_size", "C", "max_iter", "solver")
SOLVERS = ("lbfgs", "newton-cg", "newton-cholesky", "sag", "saga")


def parse_baseline(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """The baseline block with defaults: ``image_size`` (side in pixels the images are
    shrunk to, default 16), ``C`` (inverse L2 regularisation strength, default 1.0),
    ``max_iter`` (solver iterations, default 500) and ``solver`` (scikit-learn's, default
    ``lbfgs``; the leaderboard lists it as the optimizer).

    Raises:
        ValueError: for unknown keys or bad values.
    """
    parameters = block_items(parameters, VALID_KEYS, "baseline")
    size = size_pair(parameters.get("image_size", 16), "image_size", "baseline")
    strength = parameters.get("C", 1.0)
    if isinstance(strength, bool) or not isinstance(strength, int | float) or strength <= 0:
        raise ValueError(f"baseline.C must be a positive number; got {strength!r}")
    return {
        **parameters,
        "image_size": list(size),
        "C": float(strength),
        "max_iter": positive_int(parameters.get("max_iter", 500), "max_iter", "baseline"),
        "solver": choice(parameters.get("solver", "lbfgs"), "solver", SOLVERS, "baseline"),
    }


def pixel_features(
    index: pd.DataFrame, *, image_size: Sequence[int], color_mode: str
) -> np.ndarray:
    """One row per image: its pixels at ``image_size``, flattened, scaled to [0, 1].

    Raises:
        ValueError: for files missing or changed since ingest.
    """
    check_index_files(index)
    size = size_tuple(list(image_size))
    rows = [
        read_image(str(path), color_mode=color_mode, size=size).reshape(-1)
        for path in index["path"]
    ]
    return np.stack(rows).astype(np.float32) / 255.0


def train_pixel_classifier(
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: Sequence[str],
    *,
    parameters: Mapping[str, Any],
    color_mode: str,
    seed: int,
) -> tuple[Pipeline, dict[str, Any]]:
    """Fit the baseline on ``train_index`` and measure it on ``val_index``.

    Returns:
        The fitted scikit-learn pipeline, and a summary with the history keys the
        leaderboard reads: ``epochs`` (empty), ``epochs_run`` (None), ``iterations``,
        ``monitor`` and ``best_value`` (val accuracy), ``total_seconds``, ``parameters``
        and ``model_size_mb``.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    settings = parse_baseline(parameters)
    features = {"image_size": settings["image_size"], "color_mode": color_mode}
    started = time.perf_counter()
    train_x = pixel_features(train_index, **features)
    train_y = labels_to_ids(train_index["label"], classes)
    classifier = make_pipeline(
        StandardScaler(),
        LogisticRegression(
            C=settings["C"],
            max_iter=settings["max_iter"],
            solver=settings["solver"],
            random_state=seed,
        ),
    )
    classifier.fit(train_x, train_y)
    seconds = time.perf_counter() - started
    val_accuracy = float(
        np.mean(
            classifier.predict(pixel_features(val_index, **features))
            == labels_to_ids(val_index["label"], classes)
        )
    )
    model = classifier[-1]
    weights = model.coef_.size + model.intercept_.size
    stored = sum(
        array.nbytes for array in (model.coef_, model.intercept_, *_scaler_arrays(classifier))
    )
    iterations = int(np.max(model.n_iter_))
    if iterations >= settings["max_iter"]:
        logger.warning(
            "%s: logistic regression stopped at max_iter=%d before converging; raise "
            "max_iter for a better baseline",
            settings.get("name", "baseline"),
            settings["max_iter"],
        )
    logger.info(
        "%s: val accuracy %.4f on %d pixel features (%.1f s)",
        settings.get("name", "baseline"),
        val_accuracy,
        train_x.shape[1],
        seconds,
    )
    return classifier, {
        "variant": settings.get("name"),
        "epochs": [],
        "epochs_run": None,
        "iterations": iterations,
        "monitor": "val_accuracy",
        "best_epoch": None,
        "best_value": val_accuracy,
        "total_seconds": round(seconds, 3),
        "seconds_per_epoch": None,
        "parameters": {"total": int(weights), "trainable": int(weights), "non_trainable": 0},
        "model_size_mb": round(stored / BYTES_PER_MB, 3),
        "classes": list(classes),
    }


def predict_pixel_classifier(
    classifier: Pipeline,
    index: pd.DataFrame,
    *,
    parameters: Mapping[str, Any],
    color_mode: str,
    num_classes: int,
) -> np.ndarray:
    """Class probabilities ``(len(index), num_classes)``; classes absent from the
    training data get probability 0."""
    settings = parse_baseline(parameters)
    found = classifier.predict_proba(
        pixel_features(index, image_size=settings["image_size"], color_mode=color_mode)
    )
    probabilities = np.zeros((len(index), num_classes))
    probabilities[:, classifier.classes_] = found
    return probabilities


def _scaler_arrays(classifier: Pipeline) -> list[np.ndarray]:
    scaler = classifier[0]
    return [scaler.mean_, scaler.scale_]
