"""Nodes of the ``transfer`` pipeline: a frozen pretrained backbone with a new head.

Variants that train without augmentation use the backbone as a feature extractor:
:func:`extract_features` runs it once over the train, val and test images and the
variants train only their heads on those features (:func:`train_on_features`).
Augmented variants run every augmented image through the frozen backbone
(:func:`train_on_images`). Either way the saved model is the whole network, taking raw
pixels. The heavy lifting lives in :mod:`imgclf.models` and :mod:`imgclf.training`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image

from imgclf.config import block_items
from imgclf.imaging.augment import parse_augmentation
from imgclf.imaging.dataset import labels_to_ids, make_dataset
from imgclf.imaging.decode import image_shape, size_tuple
from imgclf.lazy import lazy_module
from imgclf.models.checks import choice, positive_int
from imgclf.models.head import parse_head, parse_output
from imgclf.models.summary import BYTES_PER_MB, count_parameters
from imgclf.models.transfer import TransferModel, build_transfer_model, feature_extractor
from imgclf.pipelines.family import (
    check_box_variant,
    resolve_common,
    train_variant,
    tune_variant,
    with_image_settings,
    without_optimizer,
)
from imgclf.variants import variant_backbone

backbones = lazy_module("imgclf.models.backbones")
fit = lazy_module("imgclf.training.fit")
keras = lazy_module("keras")

logger = logging.getLogger(__name__)

VARIANT_KEYS = ("backbone", "head", "output")
SPLITS = ("train", "val", "test")
FEATURE_DTYPES = ("float32", "float16")


@dataclasses.dataclass(frozen=True)
class FeatureSettings:
    """The ``transfer.features`` block: images per batch when the backbone computes the
    feature caches, and the caches' data type (float16 halves them)."""

    batch_size: int = 64
    dtype: str = "float32"


def parse_feature_settings(settings: Mapping[str, Any] | None) -> FeatureSettings:
    """Validate ``transfer.features``.

    Raises:
        ValueError: for unknown keys, a batch size that is not a positive int, or a data
            type other than float32 and float16.
    """
    values = block_items(settings, FeatureSettings, "transfer.features")
    if "batch_size" in values:
        positive_int(values["batch_size"], "batch_size", "transfer.features")
    values["dtype"] = choice(
        values.get("dtype", "float32"), "dtype", FEATURE_DTYPES, "transfer.features"
    )
    return FeatureSettings(**values)


def resolve_variant(
    image: Mapping[str, Any],
    backbone: Mapping[str, Any],
    defaults: Mapping[str, Any],
    variant: Mapping[str, Any] | None,
    *,
    name: str,
    arm: str | None = None,
) -> dict[str, Any]:
    """The variant's parameters: ``transfer.defaults`` with its own block (and its sweep
    arm's overrides) merged in; ``backbone`` and ``image`` the shared blocks with the
    variant's keys over them.

    Returns:
        ``{"name", "backbone", "head", "output", "image", "training", ["tuning"]}``, every
        setting spelled out.

    Raises:
        ValueError: for unknown keys or an invalid block (the message names it).
    """
    resolved = resolve_common(image, defaults, variant, name=name, arm=arm, valid_keys=VARIANT_KEYS)
    merged = variant_backbone(backbone, resolved.get("backbone"))
    resolved["backbone"] = backbones.parse_backbone(merged).to_parameters()
    parse_head(resolved.get("head"), f"{name} head")
    output = parse_output(resolved.get("output", "softmax"), name)
    check_box_variant(output, resolved)
    resolved["output"] = output.to_parameters()
    return resolved


def extract_features(
    settings: Mapping[str, Any],
    previous: Mapping[str, np.ndarray] | None,
    *,
    image: Mapping[str, Any],
    backbone: Mapping[str, Any],
    defaults: Mapping[str, Any],
    variant: Mapping[str, Any] | None,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    test_index: pd.DataFrame,
    classes: list[str],
    seed: int,
    name: str,
    arm: str | None = None,
) -> dict[str, np.ndarray]:
    """Run the frozen backbone once over every split: the cache that the variants with
    this backbone configuration (and no augmentation) train their heads on. A previous
    cache made from the same backbone weights, image settings, classes, data type and
    images (paths, labels and contents) is returned as it is instead.

    Args:
        settings: ``transfer.features``: ``batch_size`` and ``dtype`` (float32 or
            float16, which halves the cache).
        previous: the cache as the last run left it (None if there is none).
        image, backbone, defaults, variant, name, arm: what :func:`resolve_variant` reads
            for variant ``name`` (sweep arm ``arm``), one of those that use this cache:
            its ``backbone`` and ``image`` are the cache's (``image`` the project's block,
            its ``color_mode: auto`` decided by ``train_index``).

    Returns:
        Arrays ``<split>_features``, ``<split>_labels`` (class ids) and ``<split>_paths``
        for train, val and test, and ``metadata``: a JSON string with the backbone, the
        image parameters, the classes, a digest of the backbone's weights, the data type
        and a digest of each split.
    """
    features_settings = parse_feature_settings(settings)
    dtype = features_settings.dtype
    parameters = with_image_settings(resolve_variant)(
        image, train_index, backbone, defaults, variant, name=name, arm=arm
    )
    backbone, image = parameters["backbone"], parameters["image"]
    fit.set_seeds(seed)
    extractor = feature_extractor(
        backbones.build_backbone(backbone, image_size=size_tuple(image["size"])),
        backbone_name=backbone["name"],
        input_shape=image_shape(image["size"], image["color_mode"]),
    )
    indexes = dict(zip(SPLITS, (train_index, val_index, test_index)))
    metadata = {
        **_feature_metadata(backbone, image, classes, weights_digest(extractor)),
        "dtype": dtype,
        "splits": {split: fit.split_digest(index) for split, index in indexes.items()},
    }
    if previous and json.loads(str(previous["metadata"])) == metadata:
        logger.info(
            "Backbone features of %s unchanged since the last run: reusing them",
            ", ".join(f"{len(index)} {split}" for split, index in indexes.items()),
        )
        return dict(previous)
    arrays: dict[str, np.ndarray] = {}
    for split, index in indexes.items():
        started = time.perf_counter()
        dataset = make_dataset(
            index,
            classes,
            image_size=image["size"],
            color_mode=image["color_mode"],
            batch_size=features_settings.batch_size,
            cache=False,
        )
        features = extractor.predict(
            dataset.map(lambda images, labels: images), verbose=fit.keras_verbosity("auto")
        )
        arrays[f"{split}_features"] = features.astype(dtype)
        arrays[f"{split}_labels"] = labels_to_ids(index["label"], classes)
        arrays[f"{split}_paths"] = np.asarray(index["path"].astype(str).tolist(), dtype=str)
        seconds = time.perf_counter() - started
        logger.info(
            "Backbone features of %d %s images %s in %.1f s (%.0f images/s)",
            len(index),
            split,
            features.shape[1:],
            seconds,
            len(index) / seconds,
        )
    arrays["metadata"] = np.asarray(json.dumps(metadata, sort_keys=True))
    return arrays


def train_on_features(
    parameters: Mapping[str, Any],
    features: Mapping[str, np.ndarray],
    *,
    classes: list[str],
    seed: int,
    checkpoint_dir: str,
    tensorboard_dir: str,
) -> tuple[Any, dict[str, Any]]:
    """Train the variant's head on the cached backbone features; return the whole model
    (backbone + trained head), which takes raw pixels.

    Raises:
        ValueError: if the variant augments (cached features cannot be), or if the cache
            was computed with another backbone, other image parameters or other classes.
    """
    fit.set_seeds(seed)
    network, splits = _feature_splits(parameters, features, classes)
    _, history = train_variant(
        parameters,
        network.head,
        splits["train"],
        splits["val"],
        classes,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        tensorboard_dir=tensorboard_dir,
    )
    return _trained(network.model, history, features="cached")


def train_on_images(
    parameters: Mapping[str, Any],
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    seed: int,
    checkpoint_dir: str,
    tensorboard_dir: str,
) -> tuple[Any, dict[str, Any]]:
    """Train the variant's head on (augmented) images run through the frozen backbone."""
    fit.set_seeds(seed)
    network = variant_network(parameters, num_classes=len(classes))
    model, history = train_variant(
        parameters,
        network.model,
        train_index,
        val_index,
        classes,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
        tensorboard_dir=tensorboard_dir,
    )
    return _trained(model, history, features="computed every epoch")


def tune_on_features(
    parameters: Mapping[str, Any],
    features: Mapping[str, np.ndarray],
    *,
    classes: list[str],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame, Image.Image, Image.Image]:
    """Run (or continue) the variant's Optuna study, each trial training a new head on the
    cached features (see :func:`imgclf.pipelines.family.tune_variant`)."""
    fit.set_seeds(seed)  # the backbone the features came from
    _, splits = _feature_splits(parameters, features, classes)
    return tune_variant(
        parameters,
        lambda trial: variant_network(trial, num_classes=len(classes)).head,
        train=splits["train"],
        val=splits["val"],
        classes=classes,
        seed=seed,
    )


def tune_on_images(
    parameters: Mapping[str, Any],
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    seed: int,
) -> tuple[dict[str, Any], pd.DataFrame, Image.Image, Image.Image]:
    """Run (or continue) the variant's Optuna study, each trial building its own frozen
    backbone (its backbone, cut and image may be tuned) and training a new head on images
    (see :func:`imgclf.pipelines.family.tune_variant`)."""
    return tune_variant(
        parameters,
        lambda trial: variant_network(trial, num_classes=len(classes)).model,
        train=train_index,
        val=val_index,
        classes=classes,
        seed=seed,
    )


def weights_digest(model: keras.Model) -> str:
    """A SHA-256 digest of a model's weights, in order."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def variant_network(parameters: Mapping[str, Any], *, num_classes: int) -> TransferModel:
    """The variant's untrained network (model, feature extractor and head) for its
    ``image`` settings; with Keras' global seed set first, the same backbone weights
    every time."""
    backbone, image = backbones.parse_backbone(parameters["backbone"]), parameters["image"]
    return build_transfer_model(
        backbones.build_backbone(backbone, image_size=size_tuple(image["size"])),
        backbone_name=backbone.name,
        head=parameters["head"],
        output=parameters["output"],
        input_shape=image_shape(image["size"], image["color_mode"]),
        num_classes=num_classes,
        name=parameters["name"].replace(".", "_"),
    )


def _feature_metadata(
    backbone: Mapping[str, Any], image: Mapping[str, Any], classes: list[str], digest: str
) -> dict[str, Any]:
    return {
        "backbone": dict(backbone),
        "image": {"size": image["size"], "color_mode": image["color_mode"]},
        "classes": list(classes),
        "backbone_weights_sha256": digest,
    }


def _feature_splits(
    parameters: Mapping[str, Any], features: Mapping[str, np.ndarray], classes: list[str]
) -> tuple[TransferModel, dict[str, fit.ArraySplit]]:
    """The variant's network, and the cached train and val features it trains on, after
    checking that the cache was made by this network's backbone for these classes."""
    if not parse_augmentation(parameters["training"]["augmentation"]).is_identity:
        raise ValueError(
            f"{parameters['name']} trains on cached backbone features, which cannot be "
            "augmented: remove its training.augmentation, or train it on images"
        )
    network = variant_network(parameters, num_classes=len(classes))
    found = json.loads(str(features["metadata"]))
    wanted = _feature_metadata(
        parameters["backbone"], parameters["image"], classes, weights_digest(network.extractor)
    )
    differ = sorted(key for key in wanted if found.get(key) != wanted[key])
    if differ:
        raise ValueError(
            f"{parameters['name']}: its cached backbone features were computed with other "
            f"{', '.join(differ)}; run its transfer pipeline again "
            "(kedro run --pipelines transfer)"
        )
    splits = {
        split: fit.ArraySplit(features[f"{split}_features"], features[f"{split}_labels"])
        for split in ("train", "val")
    }
    return network, splits


def _trained(
    model: keras.Model, history: dict[str, Any], *, features: str
) -> tuple[keras.Model, dict[str, Any]]:
    return without_optimizer(model), {
        **history,
        "backbone_features": features,
        # the whole model's counts, not those of the head that trained on cached features
        "parameters": count_parameters(model),
        "model_size_mb": round(fit.weights_bytes(model) / BYTES_PER_MB, 3),
    }
