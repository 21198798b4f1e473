"""The ``scratch_cnn`` pipeline: ``train_index``, ``val_index`` and ``classes`` -> one trained
CNN per variant.

One template, instantiated under a namespace per variant (one collapsible box each in
kedro-viz). Every variant writes ``scratch_cnn.<variant>.config`` (the parameters it was
trained with), ``scratch_cnn.<variant>.model``, ``scratch_cnn.<variant>.history`` and
``scratch_cnn.<variant>.training_curves``. Tuned variants first run an Optuna study and
also write ``.best_params``, ``.trials``, ``.optimization_history`` and
``.param_importances``.

Parameters: ``params:scratch_cnn.defaults`` merged with ``params:scratch_cnn.<variant>``,
and the project-wide ``params:image``, ``params:seed`` and ``params:checkpoint_dir``.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline, node

from imgclf.pipelines.variants import named_resolver, plot_training_curves, tuning_nodes

from .nodes import resolve_variant, train_cnn, tune_cnn

FAMILY = "scratch_cnn"
# variant -> whether it is tuned by Optuna first. Add a variant here and give it a
# parameter block under `scratch_cnn`: the catalog's dataset factories cover its outputs.
VARIANTS = {"shallow": False, "deep": False, "tuned": True}
SPLIT = ["train_index", "val_index", "classes"]
# keyword inputs shared by the tuning and training nodes
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
        (_variant_pipeline(variant, tuned) for variant, tuned in VARIANTS.items()),
        Pipeline([]),
    )


def _variant_pipeline(variant: str, tuned: bool) -> Pipeline:
    namespace = f"{FAMILY}.{variant}"
    defaults, own = f"params:{FAMILY}.defaults", f"params:{namespace}"
    resolved = "config" if not tuned else "search_config"
    nodes = [
        node(
            named_resolver(resolve_variant, namespace),
            inputs=[defaults, own],
            outputs=resolved,
            name="resolve_parameters",
        ),
    ]
    if tuned:
        nodes += tuning_nodes(tune_cnn, DATA)
    nodes += [
        node(
            train_cnn,
            inputs={"parameters": "config", **DATA, "checkpoint_dir": "params:checkpoint_dir"},
            outputs=["model", "history"],
            name="train",
        ),
        node(plot_training_curves, inputs="history", outputs="training_curves", name="plot"),
    ]
    return Pipeline(
        nodes,
        namespace=namespace,
        inputs=set(SPLIT),
        parameters={defaults, own, "params:image", "params:seed", "params:checkpoint_dir"},
    )
