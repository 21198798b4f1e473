"""The ``finetune`` pipeline: ``transfer.<source>.model`` -> the same model with its
backbone's last layers unfrozen, trained on with a low learning rate.

Every variant writes ``finetune.<variant>.config``, ``.model``, ``.history`` and
``.training_curves``; a tuned variant first runs an Optuna study and also writes
``.best_params``, ``.trials``, ``.optimization_history`` and ``.param_importances``.

Parameters: ``params:finetune.defaults`` merged with ``params:finetune.<variant>``, and
the project-wide ``params:image``, ``params:seed`` and ``params:checkpoint_dir``.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline, node

from imgclf.pipelines.variants import named_resolver, plot_training_curves, tuning_nodes

from .nodes import finetune, resolve_variant, tune_finetune

FAMILY = "finetune"
# variant -> (the transfer variant it starts from, whether Optuna tunes it first). Add a
# variant here and give it a parameter block under `finetune`.
VARIANTS = {"adam_aug": ("adam_aug", False), "sgd_aug": ("sgd_aug", False)}
DATA = {
    "train_index": "train_index",
    "val_index": "val_index",
    "classes": "classes",
    "image": "params:image",
    "seed": "params:seed",
}


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the pipeline: every variant of :data:`VARIANTS` in its own namespace."""
    return sum(
        (_variant_pipeline(variant, *settings) for variant, settings in VARIANTS.items()),
        Pipeline([]),
    )


def _variant_pipeline(variant: str, source: str, tuned: bool) -> Pipeline:
    namespace = f"{FAMILY}.{variant}"
    defaults, own = f"params:{FAMILY}.defaults", f"params:{namespace}"
    resolved = "search_config" if tuned else "config"
    nodes = [
        node(
            named_resolver(resolve_variant, namespace),
            inputs=[defaults, own, "transfer_config"],
            outputs=resolved,
            name="resolve_parameters",
        )
    ]
    if tuned:
        nodes += tuning_nodes(tune_finetune, {"transfer_model": "transfer_model", **DATA})
    nodes += [
        node(
            finetune,
            inputs={
                "parameters": "config",
                "transfer_model": "transfer_model",
                **DATA,
                "checkpoint_dir": "params:checkpoint_dir",
            },
            outputs=["model", "history"],
            name="train",
        ),
        node(plot_training_curves, inputs="history", outputs="training_curves", name="plot"),
    ]
    return Pipeline(
        nodes,
        namespace=namespace,
        inputs={
            "train_index": "train_index",
            "val_index": "val_index",
            "classes": "classes",
            "transfer_model": f"transfer.{source}.model",
            "transfer_config": f"transfer.{source}.config",
        },
        parameters={defaults, own, "params:image", "params:seed", "params:checkpoint_dir"},
    )
