"""Benchmark: does the tf.data input pipeline keep the CPU model fed as well as tensors in memory?

    .venv/bin/python benchmarks/train_input.py            # prints one JSON object
    .venv/bin/python benchmarks/train_input.py --epochs 2 --no-with-augmentation  # smoke test

On the environment's split (base: the demo data, as ``kedro run`` reads it) it fits the
``scratch_cnn.shallow`` variant's CNN, at the environment's image size and colour mode, on
the train index with two feeds, each with a fresh model built with the same seed, compiled
with the variant's training settings, at the variant's batch size, augmentation off:

- ``pipeline``: the project's ``make_dataset`` (Pillow decoding in tf.data, in-memory
  cache, shuffle, batch, prefetch). Its first epoch also decodes every image (cache fill);
- ``in_memory``: every image decoded once up front (by the same pipeline, not timed as
  training) into one numpy array, then ``model.fit(x, y, shuffle=True)``;
- ``pipeline_augmented`` (``--with-augmentation``, on by default): the pipeline with the
  variant's configured augmentation; extra information, not part of the target.

Each epoch is timed by a callback. The first epoch (cache fill, tracing) is reported apart;
the comparison uses the median of epochs 2 and later. With ``--repeats`` the whole
comparison runs again (feeds in alternating order) and the figures are medians of repeats.

Target: ``ratio`` = pipeline median epoch / in-memory median epoch at most 1.10.

Options: ``--env`` (default base), ``--epochs`` per fit (4, at least 2), ``--repeats`` (1),
``--[no-]with-augmentation`` (on), ``--seed`` (default the project's ``seed``),
``--project`` (default this repository).

Progress and logs go to stderr; only the JSON result goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from epoch_timer import epoch_timer
from project_split import PROJECT, load_split

VARIANT = "shallow"
TARGET = {"ratio_max": 1.10}


def progress(message: str) -> None:
    print(f"[train_input benchmark] {message}", file=sys.stderr, flush=True)


def fit_timed(data: Any, labels: Any, parameters: dict[str, Any], setup: dict[str, Any]) -> list:
    """Fit a fresh, seeded model for ``setup["epochs"]`` epochs; each epoch's seconds."""
    import keras

    from imgclf.imaging.decode import image_shape
    from imgclf.models.cnn import build_cnn
    from imgclf.training.config import parse_training_config
    from imgclf.training.fit import compile_model, set_seeds

    training = parse_training_config(parameters["training"])
    image = setup["image"]
    keras.backend.clear_session()
    set_seeds(setup["seed"])
    model = build_cnn(
        parameters["architecture"],
        input_shape=image_shape(image["size"], image["color_mode"]),
        num_classes=setup["num_classes"],
        name=parameters["name"].replace(".", "_"),
    )
    steps = math.ceil(setup["images"] / training.batch_size)
    compile_model(model, training, setup["num_classes"], steps)
    timer = epoch_timer(lambda epoch, seconds: progress(f"  epoch {epoch}: {seconds:.2f} s"))
    if labels is None:  # a tf.data pipeline: it batches and shuffles itself
        model.fit(data, epochs=setup["epochs"], callbacks=[timer], verbose=0, shuffle=False)
    else:
        model.fit(
            data,
            labels,
            batch_size=training.batch_size,
            epochs=setup["epochs"],
            callbacks=[timer],
            verbose=0,
            shuffle=True,
        )
    return timer.seconds


def summarise(runs: list[list[float]], images: int) -> dict[str, Any]:
    """Medians over repeats of the first epoch and of each repeat's median of epochs 2.."""
    later = statistics.median(statistics.median(seconds[1:]) for seconds in runs)
    return {
        "epoch_seconds": runs,
        "first_epoch_seconds": round(statistics.median(seconds[0] for seconds in runs), 3),
        "epoch_seconds_median": round(later, 3),
        "images_per_second": round(images / later, 1),
    }


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import tensorflow as tf

    from imgclf.imaging.dataset import make_dataset
    from imgclf.pipelines.scratch_cnn.nodes import resolve_variant

    inputs = load_split(arguments.project, arguments.env)
    params, train_index, classes = inputs["params"], inputs["train_index"], inputs["classes"]
    family = params["scratch_cnn"]
    parameters = resolve_variant(
        params["image"], family["defaults"], family[VARIANT], name=f"scratch_cnn.{VARIANT}"
    )
    image, batch_size = params["image"], parameters["training"]["batch_size"]
    seed = params["seed"] if arguments.seed is None else arguments.seed
    setup = {
        "image": image,
        "seed": seed,
        "epochs": arguments.epochs,
        "images": len(train_index),
        "num_classes": len(classes),
    }

    def pipeline(augmentation: Any = None, training: bool = True) -> tf.data.Dataset:
        return make_dataset(
            train_index,
            classes,
            image_size=image["size"],
            color_mode=image["color_mode"],
            batch_size=batch_size,
            training=training,
            augmentation=augmentation,
            seed=seed,
            cache=True,
        )

    progress(f"decoding {len(train_index)} images into memory")
    started = time.perf_counter()
    batches = list(pipeline(training=False).as_numpy_iterator())
    x = np.concatenate([images for images, _ in batches])
    y = np.concatenate([labels for _, labels in batches])
    decode_seconds = time.perf_counter() - started
    del batches

    feeds = {
        "pipeline": lambda: fit_timed(pipeline(), None, parameters, setup),
        "in_memory": lambda: fit_timed(x, y, parameters, setup),
    }
    if arguments.with_augmentation:
        augmentation = parameters["training"]["augmentation"]
        feeds["pipeline_augmented"] = lambda: fit_timed(
            pipeline(augmentation), None, parameters, setup
        )
    runs: dict[str, list[list[float]]] = {name: [] for name in feeds}
    for repeat in range(arguments.repeats):
        order = list(feeds) if repeat % 2 == 0 else [*reversed(list(feeds)[:2]), *list(feeds)[2:]]
        for name in order:
            progress(f"repeat {repeat + 1}/{arguments.repeats}: {name}")
            runs[name].append(feeds[name]())
    results = {name: summarise(seconds, len(train_index)) for name, seconds in runs.items()}
    ratio = (
        results["pipeline"]["epoch_seconds_median"] / results["in_memory"]["epoch_seconds_median"]
    )
    if arguments.with_augmentation:
        augmented = results["pipeline_augmented"]
        augmented["augmentation"] = parameters["training"]["augmentation"]
        augmented["ratio_to_in_memory"] = round(
            augmented["epoch_seconds_median"] / results["in_memory"]["epoch_seconds_median"], 3
        )
    return {
        "env": arguments.env,
        "variant": parameters["name"],
        "image_size": image["size"],
        "color_mode": image["color_mode"],
        "batch_size": batch_size,
        "images": len(train_index),
        "classes": len(classes),
        "epochs": arguments.epochs,
        "repeats": arguments.repeats,
        "seed": seed,
        "tensorflow": tf.__version__,
        "cpu_count": os.cpu_count(),
        "in_memory_array_mb": round(x.nbytes / 1024**2, 1),
        "in_memory_decode_seconds": round(decode_seconds, 2),
        **results,
        "ratio": round(ratio, 3),
        "target": TARGET,
        "target_met": ratio <= TARGET["ratio_max"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--env", default="base", help="Kedro environment (default: base)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs per fit (default 4, >= 2)")
    parser.add_argument("--repeats", type=int, default=1, help="comparisons to run (default 1)")
    parser.add_argument("--seed", type=int, help="default: the project's `seed` parameter")
    parser.add_argument(
        "--with-augmentation",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the pipeline with the variant's augmentation (default: on)",
    )
    parser.add_argument("--project", type=Path, default=PROJECT, help="project root")
    arguments = parser.parse_args()
    if arguments.epochs < 2 or arguments.repeats < 1:
        parser.error("--epochs must be at least 2 and --repeats at least 1")
    # Kedro's console log handler, Keras' output: all to stderr; stdout is the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        result = measure(arguments)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
