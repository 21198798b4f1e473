"""Nodes of the ``transfer`` pipeline: a frozen pretrained backbone with a new head.

Variants that train without augmentation use the backbone as a feature extractor:
:func:`extract_features` runs it once over the train, val and test images and the
variants train only their heads on those features (:func:`train_on_features`).
Augmented variants run every augmented image through the frozen backbone
(:func:`train_on_images`). Either way the saved model is the whole network, taking raw
pixels. The heavy lifting lives in :mod:`imgclf.models` and :mod:`imgclf.training`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np
import pandas as pd

from imgclf.imaging.augment import parse_augmentation
from imgclf.imaging.dataset import labels_to_ids, make_dataset
from imgclf.imaging.decode import image_shape, size_tuple
from imgclf.models.backbones import build_backbone, parse_backbone
from imgclf.models.head import parse_head, parse_output
from imgclf.models.summary import count_parameters
from imgclf.models.transfer import TransferModel, build_transfer_model, feature_extractor
from imgclf.pipelines.variants import merge_variant, train_variant, without_optimizer
from imgclf.training.fit import (
    BYTES_PER_MB,
    ArraySplit,
    keras_verbosity,
    set_seeds,
    weights_bytes,
)

logger = logging.getLogger(__name__)

VARIANT_KEYS = ("backbone", "head", "output", "training")
SPLITS = ("train", "val", "test")
FEATURE_SETTINGS = ("batch_size", "dtype")


def resolve_variant(
    defaults: Mapping[str, Any],
    variant: Mapping[str, Any] | None,
    backbone: Mapping[str, Any],
    *,
    name: str,
) -> dict[str, Any]:
    """The variant's parameters: ``transfer.defaults`` with its own block merged in, and
    ``backbone`` the shared ``backbone`` block with the variant's ``backbone`` keys over it.

    Returns:
        ``{"name", "backbone", "head", "output", "training"}``, every setting spelled out.

    Raises:
        ValueError: for unknown keys or an invalid block (the message names it).
    """
    resolved = merge_variant(defaults, variant, name=name, valid_keys=VARIANT_KEYS)
    own_backbone = resolved.get("backbone") or {}
    resolved["backbone"] = parse_backbone({**backbone, **own_backbone}).to_parameters()
    parse_head(resolved.get("head"), f"{name} head")
    resolved["output"] = parse_output(resolved.get("output", "softmax"), name)
    return resolved


def extract_features(
    backbone: Mapping[str, Any],
    settings: Mapping[str, Any],
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    test_index: pd.DataFrame,
    classes: list[str],
    image: Mapping[str, Any],
    seed: int,
) -> dict[str, np.ndarray]:
    """Run the frozen backbone once over every split: the cache the no-augmentation
    variants train their heads on.

    Args:
        backbone: the shared ``backbone`` block.
        settings: ``transfer.features``: ``batch_size`` and ``dtype`` (float32 or
            float16, which halves the cache).

    Returns:
        Arrays ``<split>_features``, ``<split>_labels`` (class ids) and ``<split>_paths``
        for train, val and test, and ``metadata``: a JSON string with the backbone, the
        image parameters, the classes and a digest of the backbone's weights.
    """
    unknown = sorted(set(settings) - set(FEATURE_SETTINGS))
    if unknown:
        raise ValueError(
            f"unknown key(s) in transfer.features: {', '.join(unknown)}; "
            f"valid keys are: {', '.join(FEATURE_SETTINGS)}"
        )
    dtype = settings.get("dtype", "float32")
    if dtype not in ("float32", "float16"):
        raise ValueError(f"transfer.features.dtype must be float32 or float16; got {dtype!r}")
    config = parse_backbone(backbone).to_parameters()
    set_seeds(seed)
    extractor = feature_extractor(
        build_backbone(config, image_size=size_tuple(image["size"])),
        backbone_name=config["name"],
        input_shape=image_shape(image["size"], image["color_mode"]),
    )
    arrays: dict[str, np.ndarray] = {}
    for split, index in zip(SPLITS, (train_index, val_index, test_index)):
        started = time.perf_counter()
        dataset = make_dataset(
            index,
            classes,
            image_size=image["size"],
            color_mode=image["color_mode"],
            batch_size=int(settings.get("batch_size", 64)),
            cache=False,
        )
        features = extractor.predict(
            dataset.map(lambda images, labels: images), verbose=keras_verbosity("auto")
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
    arrays["metadata"] = np.asarray(
        json.dumps(
            _feature_metadata(config, image, classes, weights_digest(extractor)),
            sort_keys=True,
        )
    )
    return arrays


def train_on_features(
    parameters: Mapping[str, Any],
    features: Mapping[str, np.ndarray],
    *,
    classes: list[str],
    image: Mapping[str, Any],
    seed: int,
    checkpoint_dir: str,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train the variant's head on the cached backbone features; return the whole model
    (backbone + trained head), which takes raw pixels.

    Raises:
        ValueError: if the variant augments (cached features cannot be), or if the cache
            was computed with another backbone, other image parameters or other classes.
    """
    if not parse_augmentation(parameters["training"]["augmentation"]).is_identity:
        raise ValueError(
            f"{parameters['name']} trains on cached backbone features, which cannot be "
            "augmented: remove its training.augmentation, or use an augmented variant"
        )
    set_seeds(seed)
    network = variant_network(parameters, image=image, num_classes=len(classes))
    found = json.loads(str(features["metadata"]))
    wanted = _feature_metadata(
        parameters["backbone"], image, classes, weights_digest(network.extractor)
    )
    if found != wanted:
        differ = sorted(key for key in wanted if found.get(key) != wanted[key])
        raise ValueError(
            f"{parameters['name']}: the cached features (transfer.features) were computed with "
            f"other {', '.join(differ)}: variants without augmentation use the shared `backbone` "
            "parameters; run transfer.extract_features again (kedro run --pipelines transfer)"
        )
    splits = {
        split: ArraySplit(features[f"{split}_features"], features[f"{split}_labels"])
        for split in ("train", "val")
    }
    _, history = train_variant(
        parameters,
        network.head,
        splits["train"],
        splits["val"],
        classes,
        image=None,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
    )
    return _trained(parameters, network.model, history, features="cached")


def train_on_images(
    parameters: Mapping[str, Any],
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    classes: list[str],
    image: Mapping[str, Any],
    seed: int,
    checkpoint_dir: str,
) -> tuple[keras.Model, dict[str, Any]]:
    """Train the variant's head on (augmented) images run through the frozen backbone."""
    set_seeds(seed)
    network = variant_network(parameters, image=image, num_classes=len(classes))
    model, history = train_variant(
        parameters,
        network.model,
        train_index,
        val_index,
        classes,
        image=image,
        seed=seed,
        checkpoint_dir=checkpoint_dir,
    )
    return _trained(parameters, model, history, features="computed every epoch")


def weights_digest(model: keras.Model) -> str:
    """A SHA-256 digest of a model's weights, in order."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(np.ascontiguousarray(keras.ops.convert_to_numpy(weight)).tobytes())
    return digest.hexdigest()


def variant_network(
    parameters: Mapping[str, Any], *, image: Mapping[str, Any], num_classes: int
) -> TransferModel:
    """The variant's untrained network (model, feature extractor and head); with Keras'
    global seed set first, the same backbone weights every time."""
    backbone = parse_backbone(parameters["backbone"])
    return build_transfer_model(
        build_backbone(backbone, image_size=size_tuple(image["size"])),
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


def _trained(
    parameters: Mapping[str, Any], model: keras.Model, history: dict[str, Any], *, features: str
) -> tuple[keras.Model, dict[str, Any]]:
    history = {
        **history,
        # the whole model's counts, not those of the head that trained on cached features
        "parameters": count_parameters(model),
        "model_size_mb": round(weights_bytes(model) / BYTES_PER_MB, 3),
    }
    return without_optimizer(model), {
        "variant": parameters["name"],
        "backbone_features": features,
        **history,
    }
