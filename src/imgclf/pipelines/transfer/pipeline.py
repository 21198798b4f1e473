"""The ``transfer`` pipeline: split indexes -> one backbone + new head per variant.

``transfer.extract_features`` runs the frozen backbone (``params:backbone``) once over
train, val and test and writes ``transfer.features``. Variants that train on those
cached features (``adam``, ``sgd``) train only their heads; the others (``adam_aug``,
``sgd_aug``) run augmented images through the frozen backbone every epoch. Every
variant writes ``transfer.<variant>.config``, ``.model`` (the whole network, taking raw
pixels), ``.history`` and ``.training_curves``.

Parameters: ``params:transfer.defaults`` merged with ``params:transfer.<variant>``, the
shared ``params:backbone``, ``params:transfer.features``, and the project-wide
``params:image``, ``params:seed`` and ``params:checkpoint_dir``.
"""

from __future__ import annotations

from typing import Any

from kedro.pipeline import Pipeline, node

from imgclf.pipelines.variants import named_resolver, plot_training_curves

from .nodes import extract_features, resolve_variant, train_on_features, train_on_images

FAMILY = "transfer"
FEATURES, IMAGES = "features", "images"
# variant -> what its head trains on: the cached backbone features (no augmentation) or
# images through the frozen backbone. Add a variant here and give it a parameter block.
VARIANTS = {"adam": FEATURES, "sgd": FEATURES, "adam_aug": IMAGES, "sgd_aug": IMAGES}
SPLIT = ["train_index", "val_index", "test_index", "classes"]
COMMON = {"image": "params:image", "seed": "params:seed"}


def create_pipeline(**kwargs: Any) -> Pipeline:
    """Create the pipeline: the shared feature extraction, then every variant of
    :data:`VARIANTS` in its own namespace."""
    features = Pipeline(
        [
            node(
                extract_features,
                inputs={
                    "backbone": "params:backbone",
                    "settings": f"params:{FAMILY}.features",
                    **{name: name for name in SPLIT},
                    **COMMON,
                },
                outputs="features",
                name="extract_features",
            )
        ],
        namespace=FAMILY,
        inputs=set(SPLIT),
        parameters={"params:backbone", f"params:{FAMILY}.features", *COMMON.values()},
    )
    return sum(
        (_variant_pipeline(variant, trains_on) for variant, trains_on in VARIANTS.items()),
        features,
    )


def _variant_pipeline(variant: str, trains_on: str) -> Pipeline:
    namespace = f"{FAMILY}.{variant}"
    defaults, own = f"params:{FAMILY}.defaults", f"params:{namespace}"
    if trains_on == FEATURES:
        train, data = train_on_features, {"features": "features"}
    else:
        train, data = train_on_images, {"train_index": "train_index", "val_index": "val_index"}
    data["classes"] = "classes"
    return Pipeline(
        [
            node(
                named_resolver(resolve_variant, namespace),
                inputs=[defaults, own, "params:backbone"],
                outputs="config",
                name="resolve_parameters",
            ),
            node(
                train,
                inputs={
                    "parameters": "config",
                    **data,
                    **COMMON,
                    "checkpoint_dir": "params:checkpoint_dir",
                },
                outputs=["model", "history"],
                name="train",
            ),
            node(plot_training_curves, inputs="history", outputs="training_curves", name="plot"),
        ],
        namespace=namespace,
        inputs={**data, "features": f"{FAMILY}.features"} if trains_on == FEATURES else data,
        parameters={defaults, own, "params:backbone", "params:checkpoint_dir", *COMMON.values()},
    )
