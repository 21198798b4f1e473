"""Nodes of the ``evaluate`` pipeline: predict, score, plot and explain each model; the
pixel baseline; the leaderboard and the report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import pandas as pd
from PIL import Image
from sklearn.pipeline import Pipeline as SklearnPipeline

from imgclf.evaluation import explain
from imgclf.evaluation.baseline import (
    parse_baseline,
    predict_pixel_classifier,
    train_pixel_classifier,
)
from imgclf.evaluation.config import parse_evaluation
from imgclf.evaluation.leaderboard import (
    leaderboard_table,
    model_facts,
    summary,
    with_integer_columns,
)
from imgclf.evaluation.metrics import classification_scores, normalise_rows
from imgclf.evaluation.predictions import predict_index, prediction_table, table_probabilities
from imgclf.imaging.decode import read_image
from imgclf.reporting import html
from imgclf.reporting.evaluation import (
    channel_maps,
    confusion_matrix_figure,
    figure_image,
    gallery,
    leaderboard_figure,
)
from imgclf.reporting.plots import grouped_bar_chart, training_curves
from imgclf.reporting.tables import markdown_table

logger = logging.getLogger(__name__)

Images = dict[str, Image.Image]
EVALUATION_PLOTS = (
    "confusion_matrix",
    "confusion_matrix_normalised",
    "training_curves",
    "misclassified",
    "least_confident",
)
EXPLANATIONS = ("grad_cam", "activations_first_conv", "activations_last_conv")


def predict_splits(
    model: keras.Model,
    *,
    val_index: pd.DataFrame,
    test_index: pd.DataFrame,
    classes: list[str],
    image: dict[str, Any],
    evaluate: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model's predictions on the validation and test images (see
    :func:`imgclf.evaluation.predictions.prediction_table`)."""
    batch_size = parse_evaluation(evaluate).batch_size
    return tuple(  # type: ignore[return-value]
        prediction_table(
            index,
            predict_index(model, index, classes, image=image, batch_size=batch_size),
            classes,
        )
        for index in (val_index, test_index)
    )


def resolve_baseline(parameters: dict[str, Any], *, name: str) -> dict[str, Any]:
    """The baseline's parameters, validated, with defaults and its ``name``."""
    return {"name": name, **parse_baseline(parameters)}


def train_baseline(
    parameters: dict[str, Any],
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    image: dict[str, Any],
    seed: int,
) -> tuple[SklearnPipeline, dict[str, Any]]:
    """Fit the pixel baseline on the training images; its summary has the keys of a
    training history that the leaderboard reads."""
    return train_pixel_classifier(
        train_index,
        val_index,
        classes,
        parameters=parameters,
        color_mode=image["color_mode"],
        seed=seed,
    )


def predict_baseline_splits(
    model: SklearnPipeline,
    *,
    parameters: dict[str, Any],
    val_index: pd.DataFrame,
    test_index: pd.DataFrame,
    classes: list[str],
    image: dict[str, Any],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The baseline's predictions on the validation and test images, in the same table as
    a network's."""
    return tuple(  # type: ignore[return-value]
        prediction_table(
            index,
            predict_pixel_classifier(
                model,
                index,
                parameters=parameters,
                color_mode=image["color_mode"],
                num_classes=len(classes),
            ),
            classes,
        )
        for index in (val_index, test_index)
    )


def score_model(
    config: dict[str, Any],
    *,
    history: dict[str, Any],
    val_predictions: pd.DataFrame,
    test_predictions: pd.DataFrame,
    classes: list[str],
    evaluate: dict[str, Any],
) -> dict[str, Any]:
    """The model's metrics: ``facts`` (what the leaderboard lists besides scores), ``val``
    (accuracy, loss), ``test`` (see
    :func:`imgclf.evaluation.metrics.classification_scores`), ``misclassified`` and the
    ``least_confident`` test predictions (smallest margin first)."""
    settings = parse_evaluation(evaluate)
    test = classification_scores(
        *table_probabilities(test_predictions, classes), classes, top_k=settings.top_k
    )
    val = classification_scores(*table_probabilities(val_predictions, classes), classes)
    least = test_predictions.nsmallest(settings.least_confident, "margin")
    facts = model_facts(config, history)
    logger.info(
        "%s: test accuracy %.4f, loss %.4f, macro F1 %.4f on %d images",
        facts["model"],
        test["accuracy"],
        test["loss"],
        test["macro"]["f1"],
        test["examples"],
    )
    return {
        "model": facts["model"],
        "classes": list(classes),
        "facts": facts,
        "val": {key: val[key] for key in ("examples", "accuracy", "loss")},
        "test": test,
        "misclassified": int((~test_predictions["correct"]).sum()),
        "least_confident": least[["path", "label", "predicted", "confidence", "margin"]].to_dict(
            "records"
        ),
    }


def plot_evaluation(
    metrics: dict[str, Any],
    history: dict[str, Any],
    test_predictions: pd.DataFrame,
    image: dict[str, Any],
    evaluate: dict[str, Any],
) -> Images:
    """Confusion matrices (counts and row-normalised), training curves (for models trained
    by epochs), and galleries of the misclassified test images (most confident first) and
    of the least confident predictions."""
    settings = parse_evaluation(evaluate)
    name, classes = metrics["model"], metrics["classes"]
    matrix = np.asarray(metrics["test"]["confusion_matrix"])
    figures = {
        "confusion_matrix": confusion_matrix_figure(
            matrix, classes, normalised=False, title=f"{name}: confusion matrix (test)"
        ),
        "confusion_matrix_normalised": confusion_matrix_figure(
            normalise_rows(matrix),
            classes,
            normalised=True,
            title=f"{name}: confusion matrix, share of each true class",
        ),
    }
    if history.get("epochs"):
        figures["training_curves"] = training_curves(history, title=f"{name}: training curves")
    wrong = test_predictions[~test_predictions["correct"]].sort_values(
        "confidence", ascending=False
    )
    figures["misclassified"] = _prediction_gallery(
        wrong.head(settings.gallery_size),
        image,
        title=f"{name}: {len(wrong)} of {len(test_predictions)} test images misclassified"
        + (
            f" (the {settings.gallery_size} most confident)"
            if len(wrong) > settings.gallery_size
            else ""
        ),
    )
    least = test_predictions.nsmallest(settings.gallery_size, "margin")
    figures["least_confident"] = _prediction_gallery(
        least, image, title=f"{name}: least confident predictions (smallest margin first)"
    )
    return {key: figure_image(figure) for key, figure in figures.items()}


def explain_model(
    model: keras.Model,
    test_predictions: pd.DataFrame,
    image: dict[str, Any],
    evaluate: dict[str, Any],
) -> Images:
    """Grad-CAM overlays on a sample of test images (one class after another), and the
    activation maps of the first and last convolution layers for the first of them.
    Works on models that nest their backbone as one layer."""
    settings = parse_evaluation(evaluate)
    sample = _one_class_after_another(test_predictions, settings.grad_cam_images)
    pixels = _pixels(sample["path"], image)
    layer = (
        explain.parse_layer_path(model, settings.grad_cam_layer)
        if settings.grad_cam_layer
        else explain.grad_cam_layer(model, settings.grad_cam_min_map_size)
    )
    heat, _ = explain.grad_cam(model, pixels.astype(np.float32), layer)
    captions = [
        f"{row.label} -> {row.predicted}\n{row.confidence:.2f}" for row in sample.itertuples()
    ]
    first, last = explain.first_and_last_conv(model)
    figures = {
        "grad_cam": gallery(
            list(pixels),
            captions,
            overlays=list(heat),
            title=f"{model.name}: Grad-CAM of the predicted class at {'/'.join(layer)} "
            f"({heat.shape[1]}x{heat.shape[2]})\ncaptions: true -> predicted class, confidence",
        )
    }
    for key, path in (("activations_first_conv", first), ("activations_last_conv", last)):
        maps = explain.activations(model, pixels[:1].astype(np.float32), path)[0]
        figures[key] = channel_maps(
            maps,
            title=f"{model.name}: {'/'.join(path)} on {sample['label'].iloc[0]}",
            channels=settings.activation_channels,
        )
    return {key: figure_image(figure) for key, figure in figures.items()}


def build_leaderboard(**metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per model (keyword arguments: model name -> its metrics), best first."""
    return leaderboard_table(metrics.values())


def leaderboard_markdown(leaderboard: pd.DataFrame) -> str:
    """The leaderboard as a Markdown table."""
    return "# Leaderboard\n\n" + markdown_table(with_integer_columns(leaderboard))


def plot_leaderboard(leaderboard: pd.DataFrame) -> Image.Image:
    """Test accuracy and macro F1 per model, and accuracy against training time."""
    return figure_image(leaderboard_figure(leaderboard))


def summarise_leaderboard(leaderboard: pd.DataFrame, evaluate: dict[str, Any]) -> str:
    """Best overall, best per family, and the quickest model close to the best (Markdown)."""
    return summary(leaderboard, tolerance=parse_evaluation(evaluate).tolerance)


def report_section(
    metrics: dict[str, Any],
    evaluation_plots: Mapping[str, Callable[[], Image.Image]],
    explanations: Mapping[str, Callable[[], Image.Image]] | None = None,
) -> str:
    """One model's part of the report (HTML): its facts, scores, per-class report,
    least-confident table and every plot."""
    test, facts = metrics["test"], metrics["facts"]
    scores = [
        ("test accuracy", f"{test['accuracy']:.4f}"),
        ("test loss", f"{test['loss']:.4f}"),
        ("val accuracy", f"{metrics['val']['accuracy']:.4f}"),
        *((f"top-{k} accuracy", f"{value:.4f}") for k, value in test["top_k_accuracy"].items()),
        *(
            (f"{average} {name}", f"{test[average][name]:.4f}")
            for average in ("macro", "weighted")
            for name in ("precision", "recall", "f1")
        ),
        ("misclassified", f"{metrics['misclassified']} of {test['examples']}"),
    ]
    about = [
        (key, "—" if value is None else value)
        for key, value in facts.items()
        if key not in ("model", "family", "variant")
    ]
    least = pd.DataFrame(metrics["least_confident"])
    name = html.escape(metrics["model"])
    parts = [
        f'<h3 id="{name}">{name}</h3>',
        html.key_values(scores),
        html.details("model and training", html.key_values(about)),
        html.details("per-class report", html.table(pd.DataFrame(test["per_class"]))),
        html.details("least confident test predictions", html.table(least)),
        html.figures(evaluation_plots, EVALUATION_PLOTS),
    ]
    if explanations:
        parts.append(html.figures(explanations, EXPLANATIONS))
    return "\n".join(parts)


def write_report(
    dataset_profile: dict[str, Any],
    split_report: dict[str, Any],
    leaderboard: pd.DataFrame,
    leaderboard_summary: str,
    leaderboard_plot: Image.Image,
    **sections: str,
) -> str:
    """The report page (self-contained HTML): data profile, split, leaderboard with its
    summary and plot, then every model's section (keyword arguments: model name ->
    :func:`report_section`), in leaderboard order."""
    per_class = pd.DataFrame(split_report.get("per_class", {})).T
    data = [
        ("image files found", dataset_profile.get("image_files")),
        ("valid images", dataset_profile.get("images")),
        ("quarantined", dataset_profile.get("quarantined")),
        ("quarantine reasons", dataset_profile.get("quarantine_reasons") or "none"),
        ("sizes (most common)", dataset_profile.get("sizes", {}).get("most_common")),
        ("modes", dataset_profile.get("modes")),
        ("formats", dataset_profile.get("formats")),
        ("duplicate groups", dataset_profile.get("duplicates", {}).get("groups")),
    ]
    split = [
        ("strategy", split_report.get("strategy")),
        ("images", split_report.get("totals")),
        ("validation", split_report.get("val_from")),
        ("warnings", "; ".join(split_report.get("warnings", [])) or "none"),
    ]
    split_body = html.key_values(split)
    if not per_class.empty:
        chart = grouped_bar_chart(per_class, title="images per class and split")
        split_body += html.table(per_class.rename_axis("class").reset_index()) + html.image_tag(
            figure_image(chart), "images per class and split"
        )
    ranked = [sections[name] for name in leaderboard["model"] if name in sections]
    ranked += [
        section for name, section in sections.items() if name not in set(leaderboard["model"])
    ]
    return html.page(
        "imgclf report",
        [
            ("data", "Data", html.key_values(data)),
            ("split", "Split", split_body),
            (
                "leaderboard",
                "Leaderboard",
                html.markdown_lines(leaderboard_summary)
                + html.table(with_integer_columns(leaderboard))
                + html.image_tag(leaderboard_plot, "leaderboard"),
            ),
            ("models", "Models", "\n".join(ranked)),
        ],
    )


def _pixels(paths: pd.Series, image: dict[str, Any]) -> np.ndarray:
    return np.stack(
        [
            read_image(str(path), color_mode=image["color_mode"], size=image["size"])
            for path in paths
        ]
    )


def _prediction_gallery(rows: pd.DataFrame, image: dict[str, Any], *, title: str):
    title += "\ncaptions: true -> predicted class, confidence (margin over the runner-up)"
    captions = [
        f"{row.label} -> {row.predicted}\n{row.confidence:.2f} (margin {row.margin:.2f})"
        for row in rows.itertuples()
    ]
    return gallery(list(_pixels(rows["path"], image)) if len(rows) else [], captions, title=title)


def _one_class_after_another(table: pd.DataFrame, count: int) -> pd.DataFrame:
    """Up to ``count`` rows: the first of each label, then the second of each, ..."""
    turn = table.groupby("label", sort=False).cumcount()
    return (
        table.assign(turn=turn).sort_values("turn", kind="stable").head(count).drop(columns="turn")
    )
