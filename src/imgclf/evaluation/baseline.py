"""The baselines every CNN is compared with: scikit-learn classifiers on hand-made image
features, trained on the same split, each declared in YAML as a variant of the
``baseline`` family::

    baseline:
      defaults:
        features: pixels       # pixels | hog, or {name: hog, pixels_per_cell: 8, ...}
        image_size: 16         # side (or [height, width]) the images are shrunk to first
        standardize: true      # scale each feature to zero mean, unit variance
      logistic_regression:
        estimator: LogisticRegression   # any scikit-learn classifier, by its class name
        C: 1.0                          # or dotted path; other keys are its arguments
        max_iter: 500
      svc:
        estimator: SVC
        standardize: false
        C: 10.0

- ``features: pixels``: the image's pixels at ``image_size``, scaled to [0, 1] (grayscale
  or RGB, the project's colour mode). ``hog``: histograms of oriented gradients of the
  grayscale image (:mod:`imgclf.imaging.hog`; options ``orientations``,
  ``pixels_per_cell``, ``cells_per_block``).
- ``estimator``: a class name that scikit-learn's classifiers list
  (``sklearn.utils.discovery.all_estimators``), e.g. LogisticRegression, SVC, LinearSVC,
  RandomForestClassifier, KNeighborsClassifier, or a dotted path to any classifier. Keys
  that are not the baseline's own go to its constructor; ``random_state`` is the project's
  ``seed`` unless set. A classifier without ``predict_proba`` (LinearSVC, SVC) is calibrated
  by ``CalibratedClassifierCV(ensemble=False)``, as scikit-learn advises, so that its
  predictions have probabilities like a network's.

The training summary has the keys of a Keras training history
(:func:`imgclf.training.fit.summarise_history`) that the leaderboard reads, so a
baseline is scored and listed the same way as the networks.
"""

from __future__ import annotations

import difflib
import functools
import importlib
import inspect
import logging
import pickle
import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from imgclf.config import block_items
from imgclf.imaging.dataset import labels_to_ids
from imgclf.imaging.decode import read_image, size_tuple
from imgclf.imaging.hog import hog_features
from imgclf.imaging.index_files import check_index_files
from imgclf.models.checks import positive_int, size_pair
from imgclf.models.summary import BYTES_PER_MB

logger = logging.getLogger(__name__)

# the baseline's own keys (name and image: what the resolver adds); others are the
# estimator's arguments
OWN_KEYS = ("name", "image", "estimator", "features", "image_size", "standardize")
FEATURES = {"pixels": (), "hog": ("orientations", "pixels_per_cell", "cells_per_block")}
DEFAULT_ESTIMATOR = "LogisticRegression"


def parse_baseline(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """A baseline's block with its defaults: ``estimator`` (LogisticRegression),
    ``features`` (``{"name": "pixels"}``), ``image_size`` (16, as ``[height, width]``),
    ``standardize`` (true) and the estimator's arguments as given.

    Raises:
        ValueError: for an unknown estimator (with the close matches), a key that is
            neither the baseline's nor an argument of its estimator, or a bad value.
    """
    if not isinstance(parameters, Mapping):
        raise ValueError(f"a baseline must be a mapping; got {parameters!r}")
    estimator = parameters.get("estimator", DEFAULT_ESTIMATOR)
    cls = estimator_class(estimator)
    parameters = block_items(parameters, (*OWN_KEYS, *estimator_arguments(cls)), "baseline")
    _check_arguments(cls, estimator_settings(parameters))
    standardize = parameters.get("standardize", True)
    if not isinstance(standardize, bool):
        raise ValueError(f"baseline.standardize must be true or false; got {standardize!r}")
    size = size_pair(parameters.get("image_size", 16), "image_size", "baseline")
    return {
        **parameters,
        "estimator": estimator,
        "features": parse_features(parameters.get("features")),
        "image_size": list(size),
        "standardize": standardize,
    }


def parse_features(features: Any) -> dict[str, Any]:
    """``pixels``, ``hog`` or ``{name: hog, <option>: <int>}`` as ``{"name": ..., ...}``."""
    if features is None:
        features = "pixels"
    if isinstance(features, str):
        features = {"name": features}
    if not isinstance(features, Mapping) or features.get("name") not in FEATURES:
        raise ValueError(
            f"baseline.features must be one of {', '.join(FEATURES)} or a mapping with a "
            f"name among them; got {features!r}"
        )
    name = features["name"]
    options = block_items(
        {k: v for k, v in features.items() if k != "name"}, FEATURES[name], "baseline.features"
    )
    for key, value in options.items():
        positive_int(value, key, "baseline.features")
    return {"name": name, **options}


def estimator_class(name: str) -> type:
    """The scikit-learn classifier called ``name`` (a class name or a dotted path).

    Raises:
        ValueError: for a name scikit-learn's classifiers do not have (with the close
            matches), or a dotted path that is not a classifier.
    """
    from sklearn.base import ClassifierMixin

    if not isinstance(name, str) or not name:
        raise ValueError(f"baseline.estimator must be a classifier's name; got {name!r}")
    if "." in name:
        module, _, attribute = name.rpartition(".")
        try:
            found = getattr(importlib.import_module(module), attribute)
        except (ImportError, AttributeError) as error:
            raise ValueError(f"baseline.estimator {name!r}: {error}") from None
        if not (inspect.isclass(found) and issubclass(found, ClassifierMixin)):
            raise ValueError(f"baseline.estimator {name!r} is not a scikit-learn classifier")
        return found
    classifiers = _classifiers()
    if name not in classifiers:
        close = difflib.get_close_matches(name, classifiers, n=4, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "e.g. LogisticRegression, SVC"
        raise ValueError(f"baseline.estimator {name!r} is not a scikit-learn classifier; {hint}")
    return classifiers[name]


@functools.cache
def _classifiers() -> dict[str, type]:
    """scikit-learn's classifiers by class name (listing them imports every sklearn module,
    so once per process)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from sklearn.utils.discovery import all_estimators

        return dict(all_estimators(type_filter="classifier"))


def _check_arguments(cls: type, arguments: Mapping[str, Any]) -> None:
    """Refuse, before any image is read, argument values the estimator would refuse when
    fitted (scikit-learn's own parameter constraints)."""
    try:
        cls(**arguments)._validate_params()
    except (TypeError, ValueError) as error:
        raise ValueError(f"baseline estimator {cls.__name__}: {error}") from None


def estimator_arguments(cls: type) -> list[str]:
    """The constructor arguments of classifier ``cls``."""
    return [name for name in inspect.signature(cls.__init__).parameters if name != "self"]


def estimator_settings(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The estimator's constructor arguments among a parsed baseline's keys."""
    return {key: value for key, value in settings.items() if key not in OWN_KEYS}


def make_classifier(settings: Mapping[str, Any], seed: int) -> Any:
    """The unfitted scikit-learn pipeline of a parsed baseline: (StandardScaler), the
    estimator (calibrated when it has no ``predict_proba``)."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    cls = estimator_class(settings["estimator"])
    arguments = estimator_settings(settings)
    if "random_state" in estimator_arguments(cls):
        arguments.setdefault("random_state", seed)
    estimator = cls(**arguments)
    if not hasattr(estimator, "predict_proba"):
        estimator = CalibratedClassifierCV(estimator, ensemble=False)
    steps = [StandardScaler(), estimator] if settings["standardize"] else [estimator]
    return make_pipeline(*steps)


def image_features(
    index: pd.DataFrame, settings: Mapping[str, Any], *, color_mode: str
) -> np.ndarray:
    """One row per image of ``index``: its ``features`` at ``image_size``.

    Raises:
        ValueError: for files missing or changed since ingest, or images too small for
            their HOG blocks.
    """
    check_index_files(index)
    size = size_tuple(list(settings["image_size"]))
    features = dict(settings["features"])
    name = features.pop("name")
    mode = "grayscale" if name == "hog" else color_mode
    pixels = (
        np.stack(
            [read_image(str(path), color_mode=mode, size=size) for path in index["path"]]
        ).astype(np.float32)
        / 255.0
    )
    if name == "hog":
        return hog_features(pixels[..., 0], **features)
    return pixels.reshape(len(index), -1)


def train_classifier(
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: Sequence[str],
    *,
    parameters: Mapping[str, Any],
    color_mode: str,
    seed: int,
) -> tuple[Any, dict[str, Any]]:
    """Fit the baseline on ``train_index`` and measure it on ``val_index``.

    Returns:
        The fitted scikit-learn pipeline, and a summary with the history keys the
        leaderboard reads: ``epochs`` (empty), ``epochs_run`` (None), ``iterations``,
        ``monitor`` and ``best_value`` (val accuracy), ``total_seconds``, ``parameters``
        (the fitted arrays' values) and ``model_size_mb`` (the pickled pipeline).
    """
    from sklearn.exceptions import ConvergenceWarning

    settings = parse_baseline(parameters)
    name = settings.get("name", "baseline")
    started = time.perf_counter()
    train_x = image_features(train_index, settings, color_mode=color_mode)
    classifier = make_classifier(settings, seed)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        classifier.fit(train_x, labels_to_ids(train_index["label"], classes))
    seconds = time.perf_counter() - started
    if any(issubclass(warning.category, ConvergenceWarning) for warning in caught):
        logger.warning(
            "%s: %s stopped before converging; raise its max_iter for a better baseline",
            name,
            settings["estimator"],
        )
    predicted = classifier.predict(image_features(val_index, settings, color_mode=color_mode))
    val_accuracy = float(np.mean(predicted == labels_to_ids(val_index["label"], classes)))
    weights = fitted_size(classifier)
    iterations = getattr(classifier[-1], "n_iter_", None)
    logger.info(
        "%s: %s on %d %s features, val accuracy %.4f (%.1f s)",
        name,
        settings["estimator"],
        train_x.shape[1],
        settings["features"]["name"],
        val_accuracy,
        seconds,
    )
    return classifier, {
        "variant": settings.get("name"),
        "epochs": [],
        "epochs_run": None,
        "iterations": None if iterations is None else int(np.max(iterations)),
        "monitor": "val_accuracy",
        "best_epoch": None,
        "best_value": val_accuracy,
        "total_seconds": round(seconds, 3),
        "seconds_per_epoch": None,
        "parameters": {"total": weights, "trainable": weights, "non_trainable": 0},
        "model_size_mb": round(len(pickle.dumps(classifier)) / BYTES_PER_MB, 3),
        "classes": list(classes),
    }


def fitted_size(classifier: Any) -> int:
    """The values a fitted estimator learnt: the sizes of the arrays among its fitted
    attributes (``coef_``, ``intercept_``, ``support_vectors_``, ...; trees count their
    nodes)."""
    final = classifier[-1]
    estimators = [c.estimator for c in getattr(final, "calibrated_classifiers_", [])] or [final]
    total = 0
    for estimator in estimators:
        for attribute, value in vars(estimator).items():
            if attribute.endswith("_") and not attribute.startswith("_"):
                if isinstance(value, np.ndarray) and value.dtype.kind in "fc":
                    total += value.size
        total += sum(
            tree.tree_.node_count
            for tree in getattr(estimator, "estimators_", [])
            if hasattr(tree, "tree_")
        )
    return int(total)


def predict_classifier(
    classifier: Any,
    index: pd.DataFrame,
    *,
    parameters: Mapping[str, Any],
    color_mode: str,
    num_classes: int,
) -> np.ndarray:
    """Class probabilities ``(len(index), num_classes)``; classes absent from the
    training data get probability 0."""
    settings = parse_baseline(parameters)
    found = classifier.predict_proba(image_features(index, settings, color_mode=color_mode))
    probabilities = np.zeros((len(index), num_classes))
    probabilities[:, classifier.classes_] = found
    return probabilities
