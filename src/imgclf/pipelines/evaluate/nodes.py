"""Nodes of the ``evaluate`` pipeline: predict, score, plot and explain each model; the
scikit-learn baselines; the leaderboard and the report."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from imgclf.datasets.image_directory import BOX_COLUMNS
from imgclf.evaluation.baseline import parse_baseline, predict_classifier, train_classifier
from imgclf.evaluation.boxes import PREDICTED_BOX_COLUMNS, box_scores, mean_box
from imgclf.evaluation.comparisons import comparison_lines, comparison_table, flat_settings
from imgclf.evaluation.config import EvaluationConfig
from imgclf.evaluation.leaderboard import (
    TRAINED,
    leaderboard_table,
    model_facts,
    summary,
    sweep_table,
    with_integer_columns,
)
from imgclf.evaluation.metrics import classification_scores, normalise_rows
from imgclf.evaluation.predictions import predict_outputs, prediction_table, table_probabilities
from imgclf.imaging.decode import read_image
from imgclf.lazy import lazy_module
from imgclf.reporting.evaluation import (
    channel_bars,
    channel_maps,
    confusion_matrix_figure,
    gallery,
    leaderboard_figure,
    sweep_figure,
)
from imgclf.reporting.plots import figure_image, training_curves
from imgclf.reporting.report import model_section, report_page
from imgclf.reporting.tables import markdown_table
from imgclf.training.summary import check_summary
from imgclf.variants import variant_blocks

explain = lazy_module("imgclf.evaluation.explain")
keras = lazy_module("keras")

logger = logging.getLogger(__name__)

Images = dict[str, Image.Image]
# write_report's keyword arguments for a sweep's table and plot: prefix + the sweep's name
SWEEP_TABLE, SWEEP_PLOT = "sweep_table:", "sweep_plot:"


def predict_splits(
    model: Any | None,
    *,
    config: dict[str, Any] | None,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    test_index: pd.DataFrame,
    classes: list[str],
    settings: EvaluationConfig,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The model's predictions on the validation and test images, read at the image
    settings it was trained with (see
    :func:`imgclf.evaluation.predictions.prediction_table`; a box model's tables also
    score the training images' mean box); no rows for a model not trained yet."""
    if model is None:
        return tuple(  # type: ignore[return-value]
            prediction_table(index.iloc[:0], np.zeros((0, len(classes))), classes)
            for index in (val_index, test_index)
        )
    tables = []
    for index in (val_index, test_index):
        probabilities, boxes = predict_outputs(
            model, index, classes, image=config["image"], batch_size=settings.batch_size
        )
        tables.append(prediction_table(index, probabilities, classes, boxes, mean_box(train_index)))
    return tuple(tables)  # type: ignore[return-value]


def resolve_baseline(
    image: dict[str, Any],
    defaults: dict[str, Any] | None,
    own: dict[str, Any] | None,
    *,
    name: str,
    arm: str | None = None,
) -> dict[str, Any]:
    """The baseline's parameters: ``baseline.defaults`` with its own block (and its sweep
    arm's overrides) merged in, validated, with defaults, its ``name`` and the project's
    ``image`` settings (its colour mode)."""
    merged = variant_blocks(defaults, own, arm, name=name)
    return {**parse_baseline(merged), "name": name, "image": dict(image)}


def train_baseline(
    parameters: dict[str, Any],
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    seed: int,
) -> tuple[Any, dict[str, Any]]:
    """Fit the baseline on the training images; its summary has the keys of a training
    history that the leaderboard reads."""
    return train_classifier(
        train_index,
        val_index,
        classes,
        parameters=parameters,
        color_mode=parameters["image"]["color_mode"],
        seed=seed,
    )


def predict_baseline_splits(
    model: Any,
    *,
    parameters: dict[str, Any],
    val_index: pd.DataFrame,
    test_index: pd.DataFrame,
    classes: list[str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The baseline's predictions on the validation and test images, in the same table as
    a network's."""
    return tuple(  # type: ignore[return-value]
        prediction_table(
            index,
            predict_classifier(
                model,
                index,
                parameters=parameters,
                color_mode=parameters["image"]["color_mode"],
                num_classes=len(classes),
            ),
            classes,
        )
        for index in (val_index, test_index)
    )


def score_model(
    config: dict[str, Any] | None,
    *,
    history: dict[str, Any] | None,
    val_predictions: pd.DataFrame,
    test_predictions: pd.DataFrame,
    classes: list[str],
    settings: EvaluationConfig,
    name: str,
) -> dict[str, Any]:
    """The model's metrics: ``facts`` (what the leaderboard lists besides scores), ``val``
    (accuracy, loss), ``test`` (see
    :func:`imgclf.evaluation.metrics.classification_scores`), ``misclassified`` and the
    ``least_confident`` test predictions (smallest margin first). A model not trained yet
    (no config, history or predictions) gets ``{"model": name, "trained": false}``."""
    if config is None or history is None or test_predictions.empty:
        logger.warning(
            "%s has not been trained: listed as not trained (kedro run --pipelines %s)",
            name,
            name.split(".", 1)[0],
        )
        return {"model": name, "trained": False, "classes": list(classes)}
    check_summary(history, name)
    test = classification_scores(
        *table_probabilities(test_predictions, classes), classes, top_k=settings.top_k
    )
    boxes = box_scores(test_predictions)
    if boxes is not None:
        test["box"] = boxes
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
        "trained": True,
        "classes": list(classes),
        "facts": facts,
        "settings": flat_settings(config),
        "val": {key: val[key] for key in ("examples", "accuracy", "loss")},
        "test": test,
        "misclassified": int((~test_predictions["correct"]).sum()),
        "least_confident": least[["path", "label", "predicted", "confidence", "margin"]].to_dict(
            "records"
        ),
    }


def plot_evaluation(
    config: dict[str, Any] | None,
    metrics: dict[str, Any],
    history: dict[str, Any] | None,
    test_predictions: pd.DataFrame,
    settings: EvaluationConfig,
) -> Images:
    """Confusion matrices (counts and row-normalised), training curves (for models trained
    by epochs), galleries of the misclassified test images (most confident first) and of
    the least confident predictions, and for a box model test images with their true and
    predicted boxes; none for a model not trained yet."""
    if not metrics["trained"]:
        return {}
    image = config["image"]
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
    if "iou" in test_predictions:
        figures["boxes"] = _box_gallery(test_predictions, image, settings.gallery_size, name)
    return {key: figure_image(figure) for key, figure in figures.items()}


def _box_gallery(predictions: pd.DataFrame, image: dict[str, Any], count: int, name: str):
    """Test images (one class after another) with their true box (green) and the
    predicted one (red), each captioned with its IoU."""
    rows = _one_class_after_another(predictions, count)
    boxes = [
        [(row[BOX_COLUMNS].to_numpy(), "lime"), (row[PREDICTED_BOX_COLUMNS].to_numpy(), "red")]
        for _, row in rows.iterrows()
    ]
    captions = [f"{row.label} -> {row.predicted}\nIoU {row.iou:.2f}" for row in rows.itertuples()]
    scores = box_scores(predictions)
    return gallery(
        list(_pixels(rows["path"], image)),
        captions,
        boxes=boxes,
        title=f"{name}: true (green) and predicted (red) boxes\nmean IoU "
        f"{scores['mean_iou']:.2f} on {len(predictions)} test images",
    )


def explain_model(
    model: Any | None,
    config: dict[str, Any] | None,
    test_predictions: pd.DataFrame,
    settings: EvaluationConfig,
) -> Images:
    """Grad-CAM overlays on a sample of test images (one class after another), and for
    the first of them the activation maps of the first and last convolution layers and the
    last convolution's pooled activations (when a pooling layer follows it).
    Works on models that nest their backbone as one layer; none for a model not trained
    yet."""
    if model is None or test_predictions.empty:
        return {}
    image = config["image"]
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
    probed = {"activations_first_conv": first, "activations_last_conv": last}
    pooled = explain.pooling_after(model, last)
    if pooled is not None:
        probed["activations_last_conv_pooled"] = pooled
    for key, path in probed.items():
        maps = explain.activations(model, pixels[:1].astype(np.float32), path)[0]
        draw = channel_maps if maps.ndim == 3 else channel_bars
        figures[key] = draw(
            maps,
            title=f"{model.name}: {'/'.join(path)} on {sample['label'].iloc[0]}",
            channels=settings.activation_channels,
        )
    return {key: figure_image(figure) for key, figure in figures.items()}


def build_leaderboard(**metrics: dict[str, Any]) -> pd.DataFrame:
    """One row per model (keyword arguments: model name -> its metrics), best first; models
    not trained yet last, with the status "not trained"."""
    return leaderboard_table(metrics.values())


def compare_sweep(**arms: Any) -> tuple[pd.DataFrame, Image.Image]:
    """A sweep's arms side by side (keyword arguments: arm -> its metrics, and ``sweep``,
    the sweep's name): a table of arm, model, val and test accuracy, macro F1 and training
    seconds in the order declared, and a bar chart of the three scores per arm."""
    sweep = arms.pop("sweep")
    table = sweep_table(arms)
    scores = table.dropna(subset=["test_accuracy"]).set_index("arm")
    chart = sweep_figure(
        scores[["val_accuracy", "test_accuracy", "macro_f1"]],
        title=f"sweep {sweep}: scores per arm",
    )
    return table, figure_image(chart)


def leaderboard_markdown(leaderboard: pd.DataFrame) -> str:
    """The leaderboard as a Markdown table."""
    return "# Leaderboard\n\n" + markdown_table(with_integer_columns(leaderboard))


def plot_leaderboard(leaderboard: pd.DataFrame, classes: list[str]) -> Image.Image:
    """Test accuracy and macro F1 per model, and accuracy against training time, with the
    accuracy of guessing among ``classes`` marked."""
    trained = leaderboard[leaderboard["status"] == TRAINED]
    return figure_image(leaderboard_figure(trained, chance=1 / len(classes)))


def compare_settings(settings: EvaluationConfig, **metrics: dict[str, Any]) -> pd.DataFrame:
    """Every pair of trained models that differ in one setting, and which value won
    (keyword arguments: model name -> its metrics); see
    :mod:`imgclf.evaluation.comparisons`."""
    return comparison_table(metrics.values(), tolerance=settings.tolerance)


def summarise_leaderboard(
    leaderboard: pd.DataFrame, setting_comparisons: pd.DataFrame, settings: EvaluationConfig
) -> str:
    """Best overall, best per family, the quickest model close to the best, and the
    settings compared between pairs of models (Markdown)."""
    return summary(
        leaderboard,
        tolerance=settings.tolerance,
        comparisons=comparison_lines(setting_comparisons),
    )


def report_section(
    metrics: dict[str, Any],
    evaluation_plots: Mapping[str, Callable[[], Image.Image]] | None,
    explanations: Mapping[str, Callable[[], Image.Image]] | None = None,
    optimization_history: Image.Image | None = None,
    param_importances: Image.Image | None = None,
) -> str:
    """One model's part of the report (see :func:`imgclf.reporting.report.model_section`),
    with a tuned variant's Optuna plots."""
    tuning = {
        "optimization_history": optimization_history,
        "param_importances": param_importances,
    }
    return model_section(metrics, evaluation_plots, explanations, tuning)


def write_report(
    dataset_profile: dict[str, Any],
    split_report: dict[str, Any],
    *,
    leaderboard: pd.DataFrame,
    leaderboard_summary: str,
    leaderboard_plot: Image.Image,
    class_distribution_plot: Image.Image,
    class_sample_grid: Image.Image,
    **sections: Any,
) -> str:
    """The report page (see :func:`imgclf.reporting.report.report_page`): keyword
    arguments ``sweep_table:<sweep>`` and ``sweep_plot:<sweep>`` are each sweep's table and
    plot, the others a model's name -> :func:`report_section`."""
    sweeps = [
        (
            name[len(SWEEP_TABLE) :],
            sections.pop(name),
            sections.pop(SWEEP_PLOT + name[len(SWEEP_TABLE) :]),
        )
        for name in list(sections)
        if name.startswith(SWEEP_TABLE)
    ]
    return report_page(
        dataset_profile,
        split_report,
        leaderboard=with_integer_columns(leaderboard),
        leaderboard_summary=leaderboard_summary,
        leaderboard_plot=leaderboard_plot,
        sweeps=sweeps,
        sections=sections,
        class_distribution=class_distribution_plot,
        class_samples=class_sample_grid,
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
