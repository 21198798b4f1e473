"""The ``predict`` pipeline: ``new_images`` -> ``predictions`` with a trained model, and
that model exported for serving.

``choose_model`` picks ``params:predict.model`` (default ``best``: the leaderboard's best
network, so the ``evaluate`` pipeline must have run). ``label_new_images`` loads that
model from ``trained_models`` (every ``.keras`` file the training pipelines wrote) and
writes ``predictions``, ``unreadable_images`` (files that could not be read, with the
reason) and ``prediction_summary``. ``export_model`` writes it to ``exported_model``, a
TensorFlow SavedModel that takes raw pixels. Images are read at the size and colour mode
the chosen model takes.

Parameters: ``params:predict``, and the project-wide ``params:ingest`` (its
``max_pixels``).
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline, node

from .nodes import choose_model, export_model, label_new_images


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the pipeline."""
    return Pipeline(
        [
            node(
                choose_model,
                ["leaderboard", "params:predict"],
                "prediction_model_name",
                name="choose_model",
            ),
            node(
                label_new_images,
                inputs={
                    "model_name": "prediction_model_name",
                    "trained_models": "trained_models",
                    "trained_model_histories": "trained_model_histories",
                    "new_images": "new_images",
                    "classes": "classes",
                    "predict": "params:predict",
                    "ingest": "params:ingest",
                },
                outputs=["predictions", "unreadable_images", "prediction_summary"],
                name="label_new_images",
            ),
            node(
                export_model,
                ["prediction_model_name", "trained_models"],
                "exported_model",
                name="export_model",
            ),
        ]
    )
