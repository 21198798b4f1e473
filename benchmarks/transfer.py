"""Benchmark: how much faster is a no-augmentation transfer variant with the feature cache?

    .venv/bin/python benchmarks/transfer.py              # prints one JSON object
    .venv/bin/python benchmarks/transfer.py --epochs 2   # smoke test

On the environment's split (base: the demo data, as ``kedro run`` reads it) it trains the
``transfer.<variant>`` variant (default ``adam``) for ``--epochs`` epochs (10) with the
shared ``backbone`` (``--backbone``, default the environment's; weights ``none``: random
initialisation, no download), two ways, each from the same seeded backbone and head:

- ``cached``: what the pipeline does: ``transfer.extract_features`` runs the backbone once
  over train, val and test, then ``train_on_features`` trains the head on the features.
  Test accuracy: the head on the test features.
- ``naive``: the whole model (backbone + head) fit on the images, the frozen backbone run
  on every image of every epoch. Test accuracy: the whole model on the test images.

Both report wall seconds; ``cached`` splits them into extraction (all three splits) and
head training, and times the next run's extraction, which finds the cache unchanged and
reuses it (``seconds_saved_by_reuse``). Targets: ``speedup`` = naive seconds / cached
seconds (extraction included) at least 10, and the test accuracies within 1 point.

Options: ``--env`` (default base), ``--variant``, ``--epochs``, ``--backbone``,
``--project``. Progress and logs go to stderr; only the JSON result goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import sys
import time
from pathlib import Path
from typing import Any

from project_split import PROJECT, load_split

TARGET = {"speedup_min": 10.0, "accuracy_points_max": 1.0}


def progress(message: str) -> None:
    print(f"[transfer benchmark] {message}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="base")
    parser.add_argument("--variant", default="adam")
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--backbone", default=None, help="backbone name (default: the env's)")
    parser.add_argument("--project", type=Path, default=PROJECT)
    arguments = parser.parse_args()

    with contextlib.redirect_stdout(sys.stderr):
        split = load_split(
            arguments.project,
            arguments.env,
            names=("train_index", "val_index", "test_index", "classes"),
        )
        result = run(split, arguments)
    print(json.dumps(result, indent=2))


def run(split: dict[str, Any], arguments: argparse.Namespace) -> dict[str, Any]:
    import keras
    import numpy as np

    from imgclf.imaging.dataset import make_dataset
    from imgclf.pipelines.transfer.nodes import (
        extract_features,
        resolve_variant,
        train_on_features,
        variant_network,
    )
    from imgclf.training.fit import set_seeds, train_model

    params = split["params"]
    image, seed, classes = params["image"], params["seed"], split["classes"]
    backbone = {**params["backbone"], "weights": None}
    if arguments.backbone:
        backbone["name"] = arguments.backbone
    blocks = {
        "image": image,
        "backbone": backbone,
        "defaults": params["transfer"]["defaults"],
        "variant": params["transfer"].get(arguments.variant),
    }
    name = f"transfer.{arguments.variant}"
    parameters = resolve_variant(*blocks.values(), name=name)
    parameters["training"].update(
        epochs=arguments.epochs,
        verbose=0,
        callbacks={**parameters["training"]["callbacks"], "backup_and_restore": False},
    )
    progress(f"{parameters['name']}: {backbone['name']} at {image}, {arguments.epochs} epochs")

    def extract(previous: dict[str, Any] | None) -> dict[str, Any]:
        return extract_features(
            params["transfer"]["features"],
            previous,
            **blocks,
            train_index=split["train_index"],
            val_index=split["val_index"],
            test_index=split["test_index"],
            classes=classes,
            seed=seed,
            name=name,
        )

    started = time.perf_counter()
    features = extract(None)
    extracted = time.perf_counter()
    model, history = train_on_features(
        parameters, features, classes=classes, seed=seed, checkpoint_dir="unused"
    )
    cached_done = time.perf_counter()
    cached_test = _head_accuracy(model, features["test_features"], features["test_labels"])
    progress(f"cached: {cached_done - started:.1f} s, test accuracy {cached_test:.4f}")

    keras.backend.clear_session()
    set_seeds(seed)
    network = variant_network(parameters, num_classes=len(classes))
    naive_started = time.perf_counter()
    naive_model, naive_history = train_model(
        network.model,
        split["train_index"],
        split["val_index"],
        classes,
        image=image,
        training=parameters["training"],
        seed=seed,
    )
    naive_seconds = time.perf_counter() - naive_started
    test = make_dataset(
        split["test_index"],
        classes,
        image_size=image["size"],
        color_mode=image["color_mode"],
        batch_size=64,
    )
    probabilities = naive_model.predict(test, verbose=0)
    naive_test = float(np.mean(probabilities.argmax(axis=1) == features["test_labels"]))
    progress(f"naive: {naive_seconds:.1f} s, test accuracy {naive_test:.4f}")

    reuse_started = time.perf_counter()
    extract(features)  # the next run: nothing the cache was made from changed
    reuse_seconds = time.perf_counter() - reuse_started
    progress(f"reusing the unchanged cache: {reuse_seconds:.1f} s")

    cached_seconds = cached_done - started
    difference = round(100 * (cached_test - naive_test), 2)
    speedup = naive_seconds / cached_seconds
    return {
        "benchmark": "transfer",
        "env": arguments.env,
        "variant": parameters["name"],
        "backbone": backbone,
        "image": image,
        "epochs": arguments.epochs,
        "images": {name: len(split[f"{name}_index"]) for name in ("train", "val", "test")},
        "head_parameters": history["parameters"]["total"] - _backbone_total(model),
        "cached": {
            "extract_seconds": round(extracted - started, 3),
            "reuse_unchanged_cache_seconds": round(reuse_seconds, 3),
            "seconds_saved_by_reuse": round(extracted - started - reuse_seconds, 3),
            "head_training_seconds": round(cached_done - extracted, 3),
            "seconds": round(cached_seconds, 3),
            "seconds_per_epoch": history["seconds_per_epoch"],
            "best_val_accuracy": history["best_value"],
            "test_accuracy": round(cached_test, 4),
        },
        "naive": {
            "seconds": round(naive_seconds, 3),
            "seconds_per_epoch": naive_history["seconds_per_epoch"],
            "best_val_accuracy": naive_history["best_value"],
            "test_accuracy": round(naive_test, 4),
        },
        "speedup": round(speedup, 2),
        "speedup_head_training_only": round(naive_seconds / (cached_done - extracted), 2),
        "test_accuracy_difference_points": difference,
        "target": TARGET,
        "met": {
            "speedup": speedup >= TARGET["speedup_min"],
            "accuracy": math.fabs(difference) <= TARGET["accuracy_points_max"],
        },
    }


def _head_accuracy(model: Any, features: Any, labels: Any) -> float:
    """Accuracy of the model's head (the layers after the backbone) on cached features."""
    import keras
    import numpy as np

    layers = model.layers[[layer.name for layer in model.layers].index("backbone") + 1 :]
    predictions = []
    for start in range(0, len(features), 256):
        outputs = features[start : start + 256]
        for layer in layers:
            outputs = layer(outputs, training=False)
        predictions.append(keras.ops.convert_to_numpy(outputs).argmax(axis=1))
    return float(np.mean(np.concatenate(predictions) == labels))


def _backbone_total(model: Any) -> int:
    from imgclf.models.summary import count_parameters

    return count_parameters(model.get_layer("backbone"))["total"]


if __name__ == "__main__":
    main()
