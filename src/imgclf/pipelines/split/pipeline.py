"""The ``split`` pipeline: ``image_index`` -> ``classes``, ``train_index``, ``val_index``,
``test_index``, ``split_report`` and ``split_counts_plot``.

Parameters: ``params:split`` (strategy ``ratios`` | ``counts`` | ``source``, an optional
class subset, leakage policy) and the project-wide ``params:seed``.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline, node

from .nodes import (
    assign_splits,
    build_split_indexes,
    build_split_report,
    choose_classes,
    plot_split_counts,
    validate_split_params,
)


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the split pipeline, its nodes in the ``split`` namespace (one collapsible box in
    kedro-viz); the datasets it shares with the rest of the project keep their names."""
    nodes = Pipeline(
        [
            node(
                validate_split_params,
                inputs="params:split",
                outputs="split_config",
                name="validate_split_params",
            ),
            node(
                choose_classes,
                inputs=["image_index", "split_config"],
                outputs=["classes", "split_class_selection"],
                name="choose_classes",
            ),
            node(
                assign_splits,
                inputs=["image_index", "classes", "split_config", "params:seed"],
                outputs=["split_assignment", "split_notes"],
                name="assign_splits",
            ),
            node(
                build_split_indexes,
                inputs=["image_index", "split_assignment"],
                outputs=["train_index", "val_index", "test_index"],
                name="build_split_indexes",
            ),
            node(
                build_split_report,
                inputs={
                    "train_index": "train_index",
                    "val_index": "val_index",
                    "test_index": "test_index",
                    "classes": "classes",
                    "class_selection": "split_class_selection",
                    "split_notes": "split_notes",
                    "split_config": "split_config",
                    "seed": "params:seed",
                },
                outputs="split_report",
                name="build_split_report",
            ),
            node(
                plot_split_counts,
                inputs="split_report",
                outputs="split_counts_plot",
                name="plot_split_counts",
            ),
        ],
    )
    return Pipeline(
        nodes,
        namespace="split",
        inputs={"image_index"},
        outputs={
            "classes",
            "train_index",
            "val_index",
            "test_index",
            "split_report",
            "split_counts_plot",
        },
        parameters={"params:split", "params:seed"},
    )
