"""One pipeline builder for every training family, and the nodes their variants share.

A family (``scratch_cnn``, ``transfer``, ``finetune``) says, for each declared
:class:`imgclf.variants.Variant`, which :class:`Steps` it runs: how its parameters are
resolved, how it trains and tunes, and which datasets those read. :func:`variant_pipeline`
turns that into the variant's namespaced pipeline:

``resolve_parameters`` -> (tuned: ``tune_hyperparameters`` -> ``apply_best_parameters``)
-> ``train`` -> ``plot``

writing ``<family>.<variant>.config``, ``.model``, ``.history`` and ``.training_curves``
(tuned: also ``.best_params``, ``.trials``, ``.optimization_history``,
``.param_importances``).
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
from kedro.pipeline import Node, Pipeline, node
from matplotlib.figure import Figure
from PIL import Image

from imgclf.config import block_items
from imgclf.imaging.settings import image_settings, resolve_image
from imgclf.lazy import lazy_module
from imgclf.reporting.plots import figure_image, training_curves
from imgclf.training.accelerate import accelerated
from imgclf.training.config import parse_training_config
from imgclf.variants import Variant, variant_blocks

if TYPE_CHECKING:
    from imgclf.models.head import Output
    from imgclf.training.fit import Split

# imported when a node first needs them (imgclf.lazy): building the pipelines loads no
# TensorFlow, Keras or Optuna
keras = lazy_module("keras")
fit = lazy_module("imgclf.training.fit")
objective = lazy_module("imgclf.training.objective")
search_space = lazy_module("imgclf.training.search_space")
trials = lazy_module("imgclf.training.trials")
tuning = lazy_module("imgclf.training.tuning")
tuning_plots = lazy_module("imgclf.reporting.tuning")

logger = logging.getLogger(__name__)

# what a resolver wrapped by with_image_settings reads first
IMAGE_INPUTS = ("params:image", "train_index")
# Where every variant's train node keeps its backup and writes its TensorBoard logs.
FOLDERS = {"checkpoint_dir": "params:checkpoint_dir", "tensorboard_dir": "params:tensorboard_dir"}
# keys every variant may set, whatever its family
COMMON_KEYS = ("image", "training", "tuning", "sweep")


@dataclasses.dataclass(frozen=True)
class Steps:
    """What one variant's pipeline runs.

    Attributes:
        resolve: ``resolve(*resolve_inputs, name=..., arm=...)`` -> the variant's
            parameters (``config``).
        resolve_inputs: the datasets the resolver reads, in its order.
        train: ``train(parameters, **data, seed=..., checkpoint_dir=..., tensorboard_dir=...)``
            -> model, history.
        tune: ``tune(parameters, **data, seed=...)`` -> what :func:`tune_variant` returns.
        data: keyword inputs of ``train`` and ``tune`` -> dataset names.
    """

    resolve: Callable[..., dict[str, Any]]
    resolve_inputs: Sequence[str]
    train: Callable[..., tuple[keras.Model, dict[str, Any]]]
    tune: Callable[..., tuple[dict[str, Any], pd.DataFrame, Image.Image, Image.Image]]
    data: Mapping[str, str]


def family_pipeline(
    family: str, variants: Sequence[Variant], steps: Callable[[Variant], Steps]
) -> Pipeline:
    """The pipelines of ``family``'s variants among ``variants``, one namespace each."""
    return sum(
        (
            variant_pipeline(variant, steps(variant))
            for variant in variants
            if variant.family == family
        ),
        Pipeline([]),
    )


def with_image_settings(resolve: Callable[..., dict[str, Any]]) -> Callable[..., dict[str, Any]]:
    """``resolve`` reading the project's ``image`` block and the training images
    (:data:`IMAGE_INPUTS`) in place of its first argument, the image settings: ``image``
    validated, ``color_mode: auto`` decided by the index (:func:`image_settings`)."""

    def resolve_with_image(
        image: Mapping[str, Any], train_index: pd.DataFrame, *inputs: Any, **named: Any
    ) -> dict[str, Any]:
        return resolve(image_settings(image, train_index), *inputs, **named)

    resolve_with_image.__name__ = resolve_with_image.__qualname__ = resolve.__name__
    resolve_with_image.__doc__ = resolve.__doc__
    return resolve_with_image


def variant_pipeline(variant: Variant, steps: Steps) -> Pipeline:
    """The variant's pipeline, under the namespace ``<family>.<variant>``."""
    resolved = "search_config" if variant.tuned else "config"
    data = {**steps.data, "seed": "params:seed"}
    nodes = [
        node(
            bind(steps.resolve, name=variant.namespace, arm=variant.arm),
            inputs=list(steps.resolve_inputs),
            outputs=resolved,
            name="resolve_parameters",
        )
    ]
    if variant.tuned:
        nodes += tuning_nodes(steps.tune, data)
    nodes += [
        node(
            on_accelerator(steps.train),
            inputs={"parameters": "config", **data, **FOLDERS},
            outputs=["model", "history"],
            name="train",
        ),
        node(plot_training_curves, inputs="history", outputs="training_curves", name="plot"),
    ]
    external = {*steps.resolve_inputs, *data.values(), *FOLDERS.values()}
    return Pipeline(
        nodes,
        namespace=variant.namespace,
        inputs={name for name in external if not name.startswith("params:")},
        parameters={name for name in external if name.startswith("params:")},
    )


def own_parameters(variant: Variant) -> list[str]:
    """The variant's parameter datasets: its family's ``defaults`` and its own block (a
    sweep arm's overrides are read from that block's ``sweep``)."""
    return [f"params:{variant.family}.defaults", f"params:{variant.family}.{variant.declared}"]


def resolve_common(
    image: Mapping[str, Any] | None,
    defaults: Mapping[str, Any] | None,
    own: Mapping[str, Any] | None,
    *,
    name: str,
    arm: str | None,
    valid_keys: Sequence[str],
) -> dict[str, Any]:
    """What every variant's parameters have: ``defaults``, its own block and its sweep arm
    merged key by key (see :func:`imgclf.variants.variant_blocks`); ``image`` the shared
    ``image`` with the variant's keys over it; ``training`` spelled out; ``tuning``
    validated (and dropped where it is null).

    Returns:
        ``{"name": name, **merged}``.

    Raises:
        ValueError: for keys not in ``valid_keys`` (or common to every family), or a bad
            image, training or tuning block; the message names the variant.
    """
    merged = variant_blocks(defaults, own, arm, name=name)
    block_items(merged, (*valid_keys, *COMMON_KEYS), f"the parameters of {name}")
    merged["image"] = resolve_image(image, merged.get("image"), name)
    merged["training"] = parse_training_config(merged.get("training")).to_parameters()
    if merged.get("tuning") is None:
        merged.pop("tuning", None)
    else:
        tuning.parse_tuning_config(merged["tuning"])
    return {"name": name, **merged}


def check_box_variant(output: Output, resolved: Mapping[str, Any]) -> None:
    """Refuse, before any training, what a variant with a box output cannot do: rotation
    or shear in its augmentation, balanced class weights.

    Raises:
        ValueError: naming the variant and the setting to change.
    """
    if output.box is not None:
        fit.check_box_training(resolved["training"], resolved["name"])


def on_accelerator(
    train: Callable[..., tuple[keras.Model, dict[str, Any]]],
) -> Callable[..., tuple[keras.Model, dict[str, Any]]]:
    """``train(parameters, ...)`` run inside :func:`imgclf.training.accelerate.accelerated`
    of ``parameters["training"]``, so that the model it builds and trains is placed and
    computed as the variant's ``distribute`` and ``precision`` say (Kedro and kedro-viz
    still see ``train``'s name, signature and docstring)."""

    @functools.wraps(train)
    def train_accelerated(parameters: Mapping[str, Any], *inputs: Any, **named: Any) -> Any:
        with accelerated(parameters["training"]):
            return train(parameters, *inputs, **named)

    return train_accelerated


def bind(function: Callable[..., Any], **keywords: Any) -> Callable[..., Any]:
    """``function(*inputs, **keywords)`` as a plain function (not a partial), so that Kedro
    and kedro-viz show its name and docstring: e.g. the variant's name for its resolver."""

    def bound(*inputs: Any, **named: Any) -> Any:
        return function(*inputs, **named, **keywords)

    bound.__name__ = bound.__qualname__ = function.__name__
    bound.__doc__ = function.__doc__
    return bound


def tune_variant(
    parameters: Mapping[str, Any],
    build_model: Callable[[Mapping[str, Any]], keras.Model],
    *,
    train: Split,
    val: Split,
    classes: list[str],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame, Image.Image, Image.Image]:
    """Run (or continue) the variant's Optuna study; trials read images at their
    ``image`` settings (or take ``train`` and ``val`` as given: precomputed arrays).

    Returns:
        The best trial (number, value, suggested values, and the parameter paths
        they set), a table of every trial, the optimisation history plot and the
        parameter importance plot.
    """
    study = objective.tune_model(parameters, build_model, train, val, classes, seed=seed)
    space = tuning.parse_tuning_config(parameters["tuning"]).search_space
    best = trials.best_parameters(study, space)
    logger.info(
        "%s: best trial %d, %s %.4f, %s",
        parameters["name"],
        best["trial"],
        parameters["tuning"].get("monitor", "val_accuracy"),
        best["value"],
        best["params"],
    )
    return (
        best,
        trials.trials_table(study),
        figure_image(tuning_plots.plot_optimization_history(study)),
        figure_image(tuning_plots.plot_parameter_importances(study)),
    )


def tuning_nodes(
    tune: Callable[..., tuple[dict[str, Any], pd.DataFrame, Image.Image, Image.Image]],
    inputs: Mapping[str, str],
) -> list[Node]:
    """A tuned variant's nodes between ``resolve_parameters`` (which then outputs
    ``search_config``) and ``train`` (which reads ``config``): ``tune``, called with
    ``parameters`` and ``inputs`` and returning what :func:`tune_variant` returns, then the
    best trial's values applied."""
    return [
        node(
            tune,
            inputs={"parameters": "search_config", **inputs},
            outputs=["best_params", "trials", "optimization_history", "param_importances"],
            name="tune_hyperparameters",
        ),
        node(
            apply_best_parameters,
            inputs=["search_config", "best_params"],
            outputs="config",
            name="apply_best_parameters",
        ),
    ]


def apply_best_parameters(parameters: Mapping[str, Any], best: Mapping[str, Any]) -> dict[str, Any]:
    """The variant's parameters with the best trial's values in place."""
    space = tuning.parse_tuning_config(parameters["tuning"]).search_space
    return search_space.apply_suggestions(parameters, space, best["params"])


def plot_training_curves(history: Mapping[str, Any]) -> Figure:
    """Loss, accuracy and learning rate per epoch, the best epoch marked."""
    return training_curves(dict(history), title=f"{history['variant']}: training curves")


def train_variant(
    parameters: Mapping[str, Any],
    model: keras.Model,
    train: Split,
    val: Split,
    classes: list[str],
    *,
    seed: int,
    checkpoint_dir: str,
    tensorboard_dir: str,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train a variant's model with its ``training`` block (see
    :func:`imgclf.training.fit.train_model`) on images read at its ``image`` settings (or
    on precomputed arrays), and log the result. A killed run resumes from its backup in
    ``checkpoint_dir/<variant>`` when run again with the same parameters and data; with
    ``training.callbacks.tensorboard`` on, each run writes TensorBoard logs to
    ``tensorboard_dir/<variant>/<start time>``."""
    model, history = fit.train_model(
        model,
        train,
        val,
        classes,
        image=parameters["image"],
        training=parameters["training"],
        seed=seed,
        backup_dir=Path(checkpoint_dir) / parameters["name"],
        fingerprint=parameters,
        tensorboard_dir=Path(tensorboard_dir) / parameters["name"] / time.strftime("%Y%m%d-%H%M%S"),
    )
    logger.info(
        "%s: best %s %.4f at epoch %s of %d (%.1f s)",
        parameters["name"],
        history["monitor"],
        history["best_value"] or float("nan"),
        history["best_epoch"],
        history["epochs_run"],
        history["total_seconds"],
    )
    return model, {"variant": parameters["name"], **history}


def without_optimizer(model: keras.Model) -> keras.Model:
    """The trained network, uncompiled, so that its saved file holds no optimizer state (for
    Adam, twice the trainable weights): what prediction and fine-tuning need."""
    return keras.Model(model.input, model.output, name=model.name)
