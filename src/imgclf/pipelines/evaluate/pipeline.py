"""The ``evaluate`` pipeline: every declared variant's model scored on the test set,
compared with the scikit-learn baselines and with each other, and explained.

For each variant ``<family>.<variant>`` the active environment declares (the baselines,
such as ``baseline.logistic_regression``, included) it writes ``.val_predictions`` and
``.test_predictions`` (one row per image), ``.metrics`` (test accuracy and loss,
precision, recall and F1 per class, macro and weighted, top-k accuracy, confusion matrix,
least confident predictions), ``.evaluation_plots`` (confusion matrices, training curves,
galleries of misclassified and least confident images) and, for networks,
``.explanations`` (Grad-CAM overlays, first and last convolution activation maps). A
declared variant whose model is missing is scored as "not trained" and the others go on.
Each sweep gets ``<family>.<variant>.sweep_comparison`` (one row per arm) and
``.sweep_plot``. Then ``leaderboard`` (CSV), ``leaderboard_markdown``,
``leaderboard_plot``, ``leaderboard_summary`` and the self-contained HTML ``report``.

Parameters: ``params:evaluate``, each baseline's ``params:baseline.defaults`` and
``params:baseline.<name>``, and the project-wide ``params:image`` (the baselines',
``color_mode: auto`` decided by
``train_index``; a variant's images are read at the settings in its ``.config``) and
``params:seed``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from kedro.pipeline import Node, Pipeline, node

from imgclf.evaluation.config import parse_evaluation
from imgclf.pipelines.family import IMAGE_INPUTS, bind, own_parameters, with_image_settings
from imgclf.variants import Variant

from .nodes import (
    SWEEP_PLOT,
    SWEEP_TABLE,
    build_leaderboard,
    compare_settings,
    compare_sweep,
    explain_model,
    leaderboard_markdown,
    plot_evaluation,
    plot_leaderboard,
    predict_baseline_splits,
    predict_splits,
    report_section,
    resolve_baseline,
    score_model,
    summarise_leaderboard,
    train_baseline,
    write_report,
)

SPLIT = {"val_index": "val_index", "test_index": "test_index", "classes": "classes"}


def create_pipeline(variants: Sequence[Variant] = (), **kwargs: Any) -> Pipeline:
    """Create the pipeline: the baselines' training, the evaluation of every variant of
    ``variants`` (networks and baselines), a comparison per sweep, the leaderboard and the
    report."""
    evaluated = [variant.namespace for variant in variants]
    sweeps: dict[str, dict[str, str]] = {}
    for variant in variants:
        if variant.sweep is not None:
            sweeps.setdefault(variant.sweep, {})[variant.arm] = f"{variant.namespace}.metrics"
    pipelines = [_baseline_pipeline(variant) for variant in variants if not variant.network]
    pipelines += [
        _model_pipeline(variant.namespace, network=variant.network, tuned=variant.tuned)
        for variant in variants
    ]
    pipelines += [
        Pipeline(
            [
                node(
                    bind(compare_sweep, sweep=sweep),
                    inputs=arms,
                    outputs=[f"{sweep}.sweep_comparison", f"{sweep}.sweep_plot"],
                    name="compare_sweep",
                    namespace=f"evaluate.{sweep}",
                )
            ]
        )
        for sweep, arms in sweeps.items()
    ]
    report_inputs = {
        "dataset_profile": "dataset_profile",
        "split_report": "split_report",
        "leaderboard": "leaderboard",
        "leaderboard_summary": "leaderboard_summary",
        "leaderboard_plot": "leaderboard_plot",
        "class_distribution_plot": "class_distribution_plot",
        "class_sample_grid": "class_sample_grid",
        **{name: f"{name}.report_section" for name in evaluated},
        **{f"{SWEEP_TABLE}{sweep}": f"{sweep}.sweep_comparison" for sweep in sweeps},
        **{f"{SWEEP_PLOT}{sweep}": f"{sweep}.sweep_plot" for sweep in sweeps},
    }
    ranking = [
        _settings_node(),
        node(
            build_leaderboard,
            inputs={name: f"{name}.metrics" for name in evaluated},
            outputs="leaderboard",
            name="build_leaderboard",
        ),
        node(
            leaderboard_markdown, "leaderboard", "leaderboard_markdown", name="leaderboard_markdown"
        ),
        node(
            plot_leaderboard,
            ["leaderboard", "classes"],
            "leaderboard_plot",
            name="plot_leaderboard",
        ),
        node(
            compare_settings,
            inputs={"settings": "settings", **{name: f"{name}.metrics" for name in evaluated}},
            outputs="setting_comparisons",
            name="compare_settings",
        ),
        node(
            summarise_leaderboard,
            ["leaderboard", "setting_comparisons", "settings"],
            "leaderboard_summary",
            name="summarise_leaderboard",
        ),
        node(write_report, inputs=report_inputs, outputs="report", name="write_report"),
    ]
    published = {
        "leaderboard",
        "leaderboard_markdown",
        "leaderboard_plot",
        "leaderboard_summary",
        "setting_comparisons",
    }
    pipelines.append(
        Pipeline(
            ranking,
            namespace="evaluate",
            inputs={
                name
                for name in {*report_inputs.values(), *(f"{m}.metrics" for m in evaluated)}
                if name not in published
            }
            | {"classes"},
            outputs={*published, "report"},
            parameters={"params:evaluate"},
        )
    )
    return sum(pipelines, Pipeline([]))


def _settings_node() -> Node:
    """``params:evaluate`` validated into an :class:`EvaluationConfig` (``settings``), once
    for the nodes of its namespace that read it."""
    return node(parse_evaluation, "params:evaluate", "settings", name="resolve_parameters")


def _baseline_pipeline(variant: Variant) -> Pipeline:
    """A baseline's own pipeline: its parameters resolved, the classifier fitted, its
    predictions on the validation and test images."""
    own = own_parameters(variant)
    return Pipeline(
        [
            node(
                bind(
                    with_image_settings(resolve_baseline), name=variant.namespace, arm=variant.arm
                ),
                [*IMAGE_INPUTS, *own],
                "config",
                name="resolve_parameters",
            ),
            node(
                train_baseline,
                inputs={
                    "parameters": "config",
                    "train_index": "train_index",
                    "val_index": "val_index",
                    "classes": "classes",
                    "seed": "params:seed",
                },
                outputs=["model", "history"],
                name="train",
            ),
            node(
                predict_baseline_splits,
                inputs={"model": "model", "parameters": "config", **SPLIT},
                outputs=["val_predictions", "test_predictions"],
                name="predict",
            ),
        ],
        namespace=variant.namespace,
        inputs={"train_index", *SPLIT.values()},
        parameters={*own, "params:image", "params:seed"},
    )


def _model_pipeline(name: str, *, network: bool, tuned: bool = False) -> Pipeline:
    """Score, plot (and for a network: predict and explain) the model ``name``, with the
    ``evaluate`` parameters parsed once (``settings``); a tuned variant's report section
    shows its Optuna plots."""
    nodes = [_settings_node()]
    if network:
        nodes.append(
            node(
                predict_splits,
                inputs={
                    "model": "model",
                    "config": "config",
                    "train_index": "train_index",
                    **SPLIT,
                    "settings": "settings",
                },
                outputs=["val_predictions", "test_predictions"],
                name="predict",
            )
        )
    nodes += [
        node(
            bind(score_model, name=name),
            inputs={
                "config": "config",
                "history": "history",
                "val_predictions": "val_predictions",
                "test_predictions": "test_predictions",
                "classes": "classes",
                "settings": "settings",
            },
            outputs="metrics",
            name="score",
        ),
        node(
            plot_evaluation,
            inputs=["config", "metrics", "history", "test_predictions", "settings"],
            outputs="evaluation_plots",
            name="plot",
        ),
    ]
    sections = {"metrics": "metrics", "evaluation_plots": "evaluation_plots"}
    if network:
        nodes.append(
            node(
                explain_model,
                inputs=["model", "config", "test_predictions", "settings"],
                outputs="explanations",
                name="explain",
            )
        )
        sections["explanations"] = "explanations"
    tuning_plots = ["optimization_history", "param_importances"] if tuned else []
    sections.update({plot: plot for plot in tuning_plots})
    nodes.append(node(report_section, sections, "report_section", name="report_section"))
    # a network's predictions are made here; the baseline's come from its own namespace
    made = ["metrics", "evaluation_plots", "report_section"]
    made += ["val_predictions", "test_predictions", "explanations"] if network else []
    read = [
        "config",
        "history",
        *(["model"] if network else ["val_predictions", "test_predictions"]),
        *tuning_plots,
    ]
    shared = ["train_index", *SPLIT.values()] if network else ["classes"]
    return Pipeline(
        nodes,
        namespace=f"evaluate.{name}",
        inputs={**{key: f"{name}.{key}" for key in read}, **{key: key for key in shared}},
        outputs={key: f"{name}.{key}" for key in made},
        parameters={"params:evaluate"},
    )
