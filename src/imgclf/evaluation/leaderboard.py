"""The leaderboard: one row per evaluated model, and the short written summary that
closes the seed reports (best overall, best per family, the fastest model close to the
best).

A row comes from a model's metrics (see :func:`model_facts` and
``imgclf.pipelines.evaluate.nodes.score_model``), never from the model file, so the
leaderboard of a hundred models loads no network.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from imgclf.imaging.augment import parse_augmentation
from imgclf.reporting.tables import display_value

COLUMNS = [
    "model",
    "status",
    "family",
    "variant",
    "backbone",
    "weights",
    "optimizer",
    "augmentation",
    "parameters_total",
    "parameters_trainable",
    "size_mb",
    "epochs_run",
    "best_epoch",
    "seconds_per_epoch",
    "training_seconds",
    "val_accuracy",
    "test_accuracy",
    "test_loss",
    "macro_f1",
]

INTEGER_COLUMNS = ("parameters_total", "parameters_trainable", "epochs_run", "best_epoch")
TRAINED, NOT_TRAINED = "trained", "not trained"
RANDOM_WEIGHTS = "random"
SWEEP_COLUMNS = ["arm", "model", "val_accuracy", "test_accuracy", "macro_f1", "training_seconds"]


def model_facts(config: Mapping[str, Any], history: Mapping[str, Any]) -> dict[str, Any]:
    """What the leaderboard says of a model besides its scores, from the ``.config`` and
    ``.history`` its training pipeline wrote: family and variant (from the config's
    ``name``), backbone, optimizer, augmentation, parameters, size and timing."""
    name = str(config["name"])
    family, _, variant = name.partition(".")
    training = config.get("training") or {}
    # a baseline's estimator and features stand where a network's optimizer and backbone do
    optimizer = (training.get("optimizer") or {}).get("name") or config.get("estimator")
    backbone, features = config.get("backbone") or {}, config.get("features") or {}
    parameters = history.get("parameters") or {}
    return {
        "model": name,
        "family": family,
        "variant": variant,
        "backbone": backbone.get("name") or features.get("name"),
        "weights": backbone_weights(backbone),
        "optimizer": optimizer,
        "augmentation": parse_augmentation(training.get("augmentation")).describe(),
        "parameters_total": parameters.get("total"),
        "parameters_trainable": parameters.get("trainable"),
        "size_mb": history.get("model_size_mb"),
        "epochs_run": history.get("epochs_run"),
        "best_epoch": history.get("best_epoch"),
        "seconds_per_epoch": history.get("seconds_per_epoch"),
        "training_seconds": history.get("total_seconds"),
    }


def backbone_weights(backbone: Mapping[str, Any]) -> str | None:
    """What a pretrained backbone started from: ``imagenet``, ``random``
    (``weights: none``) or the name of the weights file; None without a backbone."""
    if not backbone:
        return None
    weights = backbone.get("weights")
    if weights is None or str(weights).lower() in ("none", "null"):
        return RANDOM_WEIGHTS
    return "imagenet" if weights == "imagenet" else Path(str(weights)).name


def random_weight_models(table: pd.DataFrame) -> list[str]:
    """The trained models whose backbone started from random weights."""
    if "weights" not in table:
        return []
    return table[(table["weights"] == RANDOM_WEIGHTS) & (table["status"] == TRAINED)][
        "model"
    ].tolist()


def random_weights_warning(models: list[str]) -> str:
    """What it means that ``models`` started from random backbone weights, in a sentence
    the summary and the report open with."""
    return (
        f"{', '.join(models)} started from random backbone weights "
        "(`backbone.weights: none`), not from ImageNet: this is not transfer learning, and "
        "such models score far below what the same backbone reaches with ImageNet weights. "
        "Run with `--params backbone.weights=imagenet` (downloads about 100 MB once) for "
        "meaningful transfer and fine-tuning results."
    )


def with_integer_columns(table: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard with its counts as nullable integers again (a CSV round trip turns
    a column with a missing value into floats)."""
    return table.astype({column: "Int64" for column in INTEGER_COLUMNS if column in table})


def leaderboard_row(metrics: Mapping[str, Any]) -> dict[str, Any]:
    """A model's leaderboard row from its metrics; for a model not trained yet, only its
    name, family, variant and the status "not trained"."""
    if not metrics.get("trained", True):
        family, _, variant = str(metrics["model"]).partition(".")
        return {
            "model": metrics["model"],
            "status": NOT_TRAINED,
            "family": family,
            "variant": variant,
        }
    return {
        **metrics["facts"],
        "status": TRAINED,
        "val_accuracy": metrics["val"]["accuracy"],
        "test_accuracy": metrics["test"]["accuracy"],
        "test_loss": metrics["test"]["loss"],
        "macro_f1": metrics["test"]["macro"]["f1"],
    }


def leaderboard_table(metrics: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model's metrics, best first: by test accuracy, then lower test loss;
    models not trained yet last.

    Raises:
        ValueError: if there are no metrics, or two share a model name.
    """
    rows = [leaderboard_row(entry) for entry in metrics]
    if not rows:
        raise ValueError("the leaderboard needs the metrics of at least one model")
    table = pd.DataFrame(rows, columns=COLUMNS).astype(
        {column: "Int64" for column in INTEGER_COLUMNS}
    )
    repeated = table["model"][table["model"].duplicated()].tolist()
    if repeated:
        raise ValueError(f"models listed twice: {', '.join(repeated)}")
    table = table.sort_values(
        ["test_accuracy", "test_loss"], ascending=[False, True], na_position="last"
    )
    return table.reset_index(drop=True)


def sweep_table(arms: Mapping[str, Mapping[str, Any]]) -> pd.DataFrame:
    """A sweep's arms in the order declared (arm name -> its metrics): arm, model, val and
    test accuracy, macro F1 and training seconds (empty scores for arms not trained)."""
    rows = [{"arm": arm, **leaderboard_row(metrics)} for arm, metrics in arms.items()]
    return pd.DataFrame(rows).reindex(columns=SWEEP_COLUMNS)


def summary(table: pd.DataFrame, *, tolerance: float, comparisons: Sequence[str] = ()) -> str:
    """The leaderboard in a few Markdown sentences: the best model overall, the best of each
    family, and the quickest to train among the models within ``tolerance`` (0.01 = one
    percentage point) of the best test accuracy; then the ``comparisons`` (Markdown list
    items, see :func:`imgclf.evaluation.comparisons.comparison_lines`).

    Raises:
        ValueError: for an empty table or a negative tolerance.
    """
    if tolerance < 0:
        raise ValueError(f"tolerance must be at least 0; got {tolerance}")
    untrained = table[table["status"] == NOT_TRAINED]["model"].tolist()
    table = table[table["status"] != NOT_TRAINED]
    if table.empty:
        raise ValueError("cannot summarise a leaderboard without a trained model")
    ranked = table.sort_values(["test_accuracy", "test_loss"], ascending=[False, True])
    best = ranked.iloc[0]
    random = random_weight_models(table)
    lines = [
        "## Summary",
        "",
        *([f"- **Random weights:** {random_weights_warning(random)}"] if random else []),
        f"- **Best overall: {best['model']}**, test accuracy {best['test_accuracy']:.3f}, "
        f"macro F1 {best['macro_f1']:.3f}, test loss {best['test_loss']:.3f}"
        f"{_size(best)}.",
        "- Best of each family:",
    ]
    for family, rows in ranked.groupby("family", sort=False):
        top = rows.iloc[0]
        lines.append(
            f"  - {family}: {top['model']}, test accuracy {top['test_accuracy']:.3f} "
            f"({_gap(top, best)})"
        )
    close = ranked[ranked["test_accuracy"] >= best["test_accuracy"] - tolerance]
    quickest = close.sort_values("training_seconds", na_position="last").iloc[0]
    points = round(tolerance * 100, 2)
    within = f"within {points:g} point{'' if points == 1 else 's'} of the best"
    if len(close) == 1:
        lines.append(
            f"- No other model is {within}; {best['model']} trained in "
            f"{_seconds(best['training_seconds'])}."
        )
    elif quickest["model"] == best["model"]:
        lines.append(
            f"- {best['model']} is also the quickest to train of the {len(close)} models "
            f"{within} ({_seconds(best['training_seconds'])})."
        )
    else:
        lines.append(
            f"- **Quickest {within}: {quickest['model']}**, test accuracy "
            f"{quickest['test_accuracy']:.3f}, trained in {_seconds(quickest['training_seconds'])} "
            f"against {_seconds(best['training_seconds'])} for the best{_size(quickest)}."
        )
    baseline = ranked[ranked["family"] == "baseline"]
    if not baseline.empty and len(baseline) < len(ranked):
        floor = baseline.iloc[0]
        networks = ranked[ranked["family"] != "baseline"]
        beaten = int((networks["test_accuracy"] > floor["test_accuracy"]).sum())
        lines.append(
            f"- The best baseline ({floor['model']}) scores {floor['test_accuracy']:.3f}: "
            f"{beaten} of {len(networks)} networks beat it."
        )
    lines += comparisons
    if untrained:
        lines.append(
            f"- Not trained yet, so not ranked: {', '.join(untrained)} (run their pipelines, "
            "then evaluate again)."
        )
    lines.append(
        "- Test accuracy is measured on "
        "one split; differences of a point or two between models can be noise."
    )
    return "\n".join(lines) + "\n"


def _gap(row: pd.Series, best: pd.Series) -> str:
    if row["model"] == best["model"]:
        return "the best overall"
    return f"{(best['test_accuracy'] - row['test_accuracy']) * 100:.1f} points below the best"


def _size(row: pd.Series) -> str:
    if pd.isna(row["parameters_total"]):
        return ""
    return f", {int(row['parameters_total']):,} parameters, {row['size_mb']:.1f} MB"


def _seconds(value: Any) -> str:
    shown = display_value(value, digits=1)
    return shown if shown == "—" else f"{shown} s"
