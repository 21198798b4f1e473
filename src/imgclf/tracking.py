"""What a run writes, also logged to the MLflow run that kedro-mlflow opens for it.

kedro-mlflow (configured by ``conf/<env>/mlflow.yml``) starts one MLflow run per
``kedro run`` and logs the parameters the nodes read, flattened (``scratch_cnn.deep.blocks``,
``transfer.defaults.training.epochs``, ...). :class:`TrackOutputs` adds, as each dataset
is saved:

- ``<family>.<variant>.history``: every epoch's loss, accuracy, val_loss, val_accuracy and
  learning rate as the metrics ``<family>.<variant>.history.<name>``, stepped by epoch;
- ``<family>.<variant>.metrics``: ``.test_accuracy``, ``.test_loss``, ``.macro_f1``,
  ``.val_accuracy`` and the whole file as ``<family>/<variant>/metrics.json``;
- ``<family>.<variant>.config``, the parameters the variant was built and trained with
  (defaults merged, a tuned variant's best values in place): as the parameters
  ``<family>.<variant>.config.<key>...`` and as ``config.json``;
- a study's ``best_params``, the data profile and the split report (JSON); a study's
  ``trials``, the ``leaderboard`` and the sweep comparisons (tables); every plot and image
  grid (PNG); the leaderboard summary and the HTML ``report``; each under its dataset name
  with dots as folders (``scratch_cnn/deep/training_curves.png``);
- with ``tracking.log_models: true``, each ``<family>.<variant>.model`` as a ``.keras``
  file.

Nothing is logged when no MLflow run is active (tracking disabled for the pipeline).
"""

from __future__ import annotations

import logging
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)

EPOCH_METRICS = ("loss", "accuracy", "val_loss", "val_accuracy", "learning_rate")
JSON_OUTPUTS = ("best_params", "dataset_profile", "split_report")
TABLE_OUTPUTS = ("trials", "leaderboard", "sweep_comparison")
TEXT_OUTPUTS = {"leaderboard_summary": "md", "report": "html"}
IMAGE_FOLDERS = ("evaluation_plots", "explanations")


def artifact_path(dataset_name: str) -> str:
    """Where a dataset's file goes among the run's artifacts: ``scratch_cnn.deep.metrics``
    -> ``scratch_cnn/deep/metrics``, ``leaderboard`` -> ``leaderboard``."""
    return dataset_name.replace(".", "/")


def epoch_metrics(prefix: str, history: Mapping[str, Any]) -> list[tuple[str, float, int]]:
    """``(key, value, epoch)`` for every number of :data:`EPOCH_METRICS` in each row of a
    history's ``epochs``, the key ``<prefix>.history.<name>``."""
    return [
        (f"{prefix}.history.{name}", float(row[name]), int(row["epoch"]))
        for row in history.get("epochs") or []
        for name in EPOCH_METRICS
        if isinstance(row.get(name), int | float)
    ]


def flat_parameters(prefix: str, block: Mapping[str, Any]) -> dict[str, str]:
    """A nested parameter block as MLflow parameters: ``{"training": {"epochs": 3}}`` ->
    ``{"<prefix>.training.epochs": "3"}``; lists and values as text."""
    flat: dict[str, str] = {}
    for key, value in block.items():
        name = f"{prefix}.{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flat_parameters(name, value))
        else:
            flat[name] = str(value)
    return flat


def headline_scores(prefix: str, metrics: Mapping[str, Any]) -> dict[str, float]:
    """A model's headline scores as ``<prefix>.test_accuracy``, ``.test_loss``,
    ``.macro_f1`` and ``.val_accuracy`` (none for a model not trained yet)."""
    if not metrics.get("trained", True):
        return {}
    test = metrics["test"]
    scores = {
        "test_accuracy": test["accuracy"],
        "test_loss": test["loss"],
        "macro_f1": test["macro"]["f1"],
        "val_accuracy": metrics["val"]["accuracy"],
    }
    return {f"{prefix}.{key}": float(value) for key, value in scores.items() if value is not None}


class TrackOutputs:
    """Logs the outputs named above to the active MLflow run as they are saved."""

    def __init__(self) -> None:
        self._log_models = False

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        tracking = context.config_loader["parameters"].get("tracking") or {}
        self._log_models = bool(tracking.get("log_models", False))

    @hook_impl
    def after_dataset_saved(self, dataset_name: str, data: Any) -> None:
        mlflow = sys.modules.get("mlflow")  # imported by kedro-mlflow when it is installed
        if mlflow is None or mlflow.active_run() is None or data is None:
            return
        prefix, _, output = dataset_name.rpartition(".")
        log = self._log_function(output, data)
        if log is None:
            return
        try:
            log(mlflow, prefix, dataset_name, data)
        except Exception as error:  # a tracking server hiccup never fails the run
            logger.warning("could not log %s to MLflow: %s", dataset_name, error)

    def _log_function(self, output: str, data: Any) -> Callable[..., None] | None:
        from matplotlib.figure import Figure
        from PIL import Image

        if output == "model":
            return _log_model if self._log_models else None
        if output in LOG_FUNCTIONS:
            return LOG_FUNCTIONS[output]
        return _log_images if isinstance(data, Figure | Image.Image) else None


def _log_history(mlflow: Any, prefix: str, _: str, history: Mapping[str, Any]) -> None:
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, step) for key, value, step in epoch_metrics(prefix, history)]
    if metrics:
        mlflow.MlflowClient().log_batch(mlflow.active_run().info.run_id, metrics=metrics)


def _log_scores(mlflow: Any, prefix: str, name: str, metrics: Mapping[str, Any]) -> None:
    scores = headline_scores(prefix, metrics)
    if scores:
        mlflow.log_metrics(scores)
    _log_json(mlflow, prefix, name, metrics)


def _log_config(mlflow: Any, _: str, name: str, config: Mapping[str, Any]) -> None:
    mlflow.log_params(flat_parameters(name, config))
    _log_json(mlflow, _, name, config)


def _log_json(mlflow: Any, _: str, name: str, data: Mapping[str, Any]) -> None:
    mlflow.log_dict(dict(data), f"{artifact_path(name)}.json")


def _log_text(mlflow: Any, _: str, name: str, text: str) -> None:
    mlflow.log_text(text, f"{artifact_path(name)}.{TEXT_OUTPUTS[name.rpartition('.')[2]]}")


def _log_table(mlflow: Any, _: str, name: str, table: pd.DataFrame) -> None:
    # plain objects with None for missing cells, which MLflow's JSON table writer takes
    mlflow.log_table(table.astype(object).where(table.notna(), None), f"{artifact_path(name)}.json")


def _log_images(mlflow: Any, _: str, name: str, data: Any) -> None:
    from matplotlib.figure import Figure

    images = data if isinstance(data, Mapping) else {"": data}
    for part, value in images.items():
        image = value() if callable(value) else value
        path = artifact_path(name) + (f"/{part}" if part else "") + ".png"
        if isinstance(image, Figure):
            mlflow.log_figure(image, path)
        else:
            mlflow.log_image(image, path)


def _log_model(mlflow: Any, _: str, name: str, model: Any) -> None:
    with tempfile.TemporaryDirectory() as folder:
        file = Path(folder) / "model.keras"
        model.save(file)
        mlflow.log_artifact(str(file), artifact_path(name))


LOG_FUNCTIONS: dict[str, Callable[..., None]] = {
    "history": _log_history,
    "metrics": _log_scores,
    "config": _log_config,
    **dict.fromkeys(JSON_OUTPUTS, _log_json),
    **dict.fromkeys(TABLE_OUTPUTS, _log_table),
    **dict.fromkeys(TEXT_OUTPUTS, _log_text),
    **dict.fromkeys(IMAGE_FOLDERS, _log_images),
}
