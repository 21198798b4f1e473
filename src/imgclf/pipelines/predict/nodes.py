"""Nodes of the ``predict`` pipeline: choose a trained model, label new images with it,
and export it for serving."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

from imgclf.config import block_items
from imgclf.evaluation.leaderboard import TRAINED
from imgclf.evaluation.new_images import (
    check_model_classes,
    model_image_settings,
    predict_images,
)
from imgclf.lazy import lazy_module
from imgclf.models.checks import positive_int
from imgclf.pipelines.ingest.settings import parse_ingest

keras = lazy_module("keras")

logger = logging.getLogger(__name__)

BEST = "best"
VALID_KEYS = ("model", "batch_size", "top_k")


def choose_model(leaderboard: pd.DataFrame, predict: dict[str, Any]) -> str:
    """The name of the model to predict with: ``predict.model``, or with ``best`` the
    leaderboard's best network (a baseline is not a Keras model).

    Raises:
        ValueError: for bad ``predict`` parameters, or a leaderboard without networks.
    """
    predict = block_items(predict, VALID_KEYS, "predict")
    choice = predict.get("model", BEST)
    if not isinstance(choice, str) or not choice:
        raise ValueError(f"predict.model must be 'best' or a model name; got {choice!r}")
    if choice != BEST:
        return choice
    trained = leaderboard["status"] == TRAINED if "status" in leaderboard else True
    networks = leaderboard[(leaderboard["family"] != "baseline") & trained]
    if networks.empty:
        raise ValueError("the leaderboard lists no trained network: run the training pipelines")
    best = networks.iloc[0]
    logger.info(
        "predicting with the leaderboard's best network, %s (test accuracy %.4f)",
        best["model"],
        best["test_accuracy"],
    )
    return str(best["model"])


def label_new_images(
    model_name: str,
    *,
    trained_models: Mapping[str, Callable[[], Any]],
    trained_model_histories: Mapping[str, Callable[[], dict[str, Any]]],
    new_images: pd.DataFrame,
    classes: list[str],
    predict: dict[str, Any],
    ingest: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """Predict the class of every new image with the model ``model_name``, each image read
    at the size and colour mode the model takes.

    Returns:
        The predictions (path, label, confidence and the runner-up classes, see
        :func:`imgclf.evaluation.new_images.predict_images`), the unreadable files with
        their reasons, and a summary: model, counts, predicted classes and, when the
        images have labels, the accuracy.

    Raises:
        ValueError: if the model is not found, or was trained with other classes.
    """
    model = _partition(trained_models, model_name, "model")()
    history = trained_model_histories.get(_partition_key(model_name))
    check_model_classes(model, history().get("classes") if history else None, classes)
    predictions, unreadable = predict_images(
        model,
        new_images,
        classes,
        image=model_image_settings(model),
        batch_size=positive_int(predict.get("batch_size", 64), "batch_size", "predict"),
        top_k=predict.get("top_k", 3),
        max_pixels=parse_ingest(ingest).max_pixels,
    )
    summary: dict[str, Any] = {
        "model": model_name,
        "images": len(new_images),
        "predicted": len(predictions),
        "unreadable": len(unreadable),
        "predicted_classes": predictions["label"].value_counts().to_dict(),
    }
    if "correct" in predictions:
        scored = predictions["correct"].dropna()
        summary["accuracy"] = float(scored.astype(bool).mean()) if len(scored) else None
    return predictions, unreadable, summary


def export_model(model_name: str, trained_models: Mapping[str, Callable[[], Any]]) -> Any:
    """The model ``model_name``, for the catalog's SavedModel export."""
    return _partition(trained_models, model_name, "model")()


def _partition_key(model_name: str) -> str:
    return model_name.replace(".", "/")


def _partition(
    partitions: Mapping[str, Callable[[], Any]], model_name: str, what: str
) -> Callable[[], Any]:
    key = _partition_key(model_name)
    if key not in partitions:
        known = ", ".join(sorted(name.replace("/", ".") for name in partitions)) or "none"
        raise ValueError(
            f"no trained {what} named {model_name!r}; found: {known}. Set predict.model to one "
            "of them (or 'best'), or train it first"
        )
    return partitions[key]
