"""The evaluate pipeline's report page: the data, the split, the leaderboard, each sweep and
each model, in one self-contained HTML file (see :mod:`imgclf.reporting.html`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import pandas as pd
from PIL import Image

from imgclf.evaluation.leaderboard import random_weight_models, random_weights_warning
from imgclf.reporting import html
from imgclf.reporting.plots import figure_image, grouped_bar_chart

# The plots of a model's section, in the order shown.
EVALUATION_PLOTS = (
    "confusion_matrix",
    "confusion_matrix_normalised",
    "training_curves",
    "misclassified",
    "least_confident",
)
EXPLANATIONS = ("grad_cam", "activations_first_conv", "activations_last_conv")
TUNING_PLOTS = ("optimization_history", "param_importances")
Plots = Mapping[str, Callable[[], Image.Image]]

# The leaderboard columns the report shows first, with their headings; the others are
# behind a fold.
KEY_COLUMNS = {
    "model": "model",
    "test_accuracy": "test accuracy",
    "macro_f1": "macro F1",
    "val_accuracy": "val accuracy",
    "training_seconds": "seconds",
    "parameters_total": "parameters",
    "weights": "backbone weights",
}


def key_leaderboard(leaderboard: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard's :data:`KEY_COLUMNS` under their headings, parameter counts with
    thousands separators, seconds to one decimal."""
    table = leaderboard.reindex(columns=list(KEY_COLUMNS)).astype(object)
    table["parameters_total"] = [
        "—" if pd.isna(value) else f"{int(value):,}" for value in table["parameters_total"]
    ]
    table["training_seconds"] = [
        "—" if pd.isna(value) else f"{float(value):,.1f}" for value in table["training_seconds"]
    ]
    return table.rename(columns=KEY_COLUMNS)


def model_section(
    metrics: Mapping[str, Any],
    evaluation_plots: Plots | None,
    explanations: Plots | None,
    tuning: Mapping[str, Image.Image | None] | None = None,
) -> str:
    """One model's part of the report: its scores, facts, per-class report,
    least-confident table and every plot (loaded lazily, in :data:`EVALUATION_PLOTS` and
    :data:`EXPLANATIONS` order), then a tuned variant's Optuna plots (``tuning``: name ->
    image, see :data:`TUNING_PLOTS`); for a model not trained yet, which pipeline to run."""
    name = html.escape(metrics["model"])
    if not metrics["trained"]:
        family = html.escape(metrics["model"].split(".")[0])
        return (
            f'<h3 id="{name}">{name}</h3>\n<p>Not trained yet: run '
            f"<code>kedro run --pipelines {family}</code>, then evaluate again.</p>"
        )
    test, facts = metrics["test"], metrics["facts"]
    scores = [
        ("test accuracy", f"{test['accuracy']:.4f}"),
        ("test loss", f"{test['loss']:.4f}"),
        ("val accuracy", f"{metrics['val']['accuracy']:.4f}"),
        *((f"top-{k} accuracy", f"{value:.4f}") for k, value in test["top_k_accuracy"].items()),
        *(
            (f"{average} {score}", f"{test[average][score]:.4f}")
            for average in ("macro", "weighted")
            for score in ("precision", "recall", "f1")
        ),
        ("misclassified", f"{metrics['misclassified']} of {test['examples']}"),
    ]
    about = [
        (key, "—" if value is None else value)
        for key, value in facts.items()
        if key not in ("model", "family", "variant")
    ]
    parts = [
        f'<h3 id="{name}">{name}</h3>',
        html.key_values(scores),
        html.details("model and training", html.key_values(about)),
        html.details("per-class report", html.table(pd.DataFrame(test["per_class"]))),
        html.details(
            "least confident test predictions", html.table(pd.DataFrame(metrics["least_confident"]))
        ),
        html.figures(evaluation_plots or {}, EVALUATION_PLOTS),
    ]
    if explanations:
        parts.append(html.figures(explanations, EXPLANATIONS))
    plots = {name: image for name, image in (tuning or {}).items() if image is not None}
    if plots:
        parts.append(html.figures(plots, TUNING_PLOTS))
    return "\n".join(parts)


def _colour(colour: Mapping[str, Any] | None) -> str | None:
    if not colour:
        return None
    return (
        f"{colour['color_mode_auto']} ({colour['grayscale_images']} grayscale, "
        f"{colour['colour_images']} colour images)"
    )


def _strategy(split_report: Mapping[str, Any]) -> str | None:
    strategy, reason = split_report.get("strategy"), split_report.get("strategy_reason")
    return f"{strategy} ({reason})" if strategy and reason else strategy


def report_page(
    dataset_profile: Mapping[str, Any],
    split_report: Mapping[str, Any],
    *,
    leaderboard: pd.DataFrame,
    leaderboard_summary: str,
    leaderboard_plot: Image.Image,
    sweeps: Sequence[tuple[str, pd.DataFrame, Image.Image]],
    sections: Mapping[str, str],
    class_distribution: Image.Image | None = None,
    class_samples: Image.Image | None = None,
) -> str:
    """The report page: a warning first when transfer models started from random weights;
    data profile with the class distribution and sample images, split with images per class
    and split, leaderboard (key columns, then all of them behind a fold) with its summary
    and plot, each sweep's table and plot (name, table, plot), then every model's section
    (model name -> :func:`model_section`) in leaderboard order."""
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
        ("colour (image.color_mode auto)", _colour(dataset_profile.get("colour"))),
    ]
    dropped = split_report.get("classes_dropped") or {}
    split = [
        ("strategy", _strategy(split_report)),
        (
            "classes left out",
            "; ".join(f"{name}: {reason}" for name, reason in dropped.items()) or "none",
        ),
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
    data_body = html.key_values(data)
    if class_distribution is not None:
        data_body += html.image_tag(class_distribution, "images per class")
    if class_samples is not None:
        data_body += html.image_tag(class_samples, "sample images per class")
    parts = [
        ("data", "Data", data_body),
        ("split", "Split", split_body),
        (
            "leaderboard",
            "Leaderboard",
            html.markdown_lines(leaderboard_summary)
            + html.table(key_leaderboard(leaderboard))
            + html.details("all columns", html.table(leaderboard))
            + html.image_tag(leaderboard_plot, "leaderboard"),
        ),
    ]
    if sweeps:
        body = "\n".join(
            f"<h3>{html.escape(sweep)}</h3>"
            + html.table(table)
            + html.image_tag(plot, f"sweep {sweep}")
            for sweep, table, plot in sweeps
        )
        parts.append(("sweeps", "Sweeps", body))
    parts.append(("models", "Models", "\n".join(ranked)))
    random = random_weight_models(leaderboard)
    notices = [f"**Random weights:** {random_weights_warning(random)}"] if random else []
    return html.page("imgclf report", parts, notices)
