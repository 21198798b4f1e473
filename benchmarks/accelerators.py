"""Benchmark: one training epoch under each accelerator setting of the ``training`` block
(``precision``, ``jit_compile``, ``distribute``), on the machine it runs on.

    .venv/bin/python benchmarks/accelerators.py                 # prints one JSON object
    .venv/bin/python benchmarks/accelerators.py --images 64     # a quicker look
    .venv/bin/python benchmarks/accelerators.py --repeats 3     # medians of three runs

Two of the seed study's networks, built from the environment's parameters (default
``base``) at 128×128 RGB, as the seed's reports trained them:

- ``transfer``: the ``transfer.adam`` variant (the environment's backbone, ResNet50 in
  base, with random weights so nothing is downloaded) trained on images, the frozen
  backbone run forward every step: what a variant with augmentation costs;
- ``scratch_cnn``: S0's ``scratch_cnn.deep`` CNN.

Each trains for two epochs on ``--images`` random images (default 256) at the variant's
batch size, inside :func:`imgclf.training.accelerate.accelerated` as the pipelines do. The
first epoch traces (and with XLA compiles) the step; the second is the figure
(``epoch_seconds``, ``images_per_second``), and ``speedup`` is float32's second epoch
divided by it. With ``--repeats N`` every setting runs N times, the settings in turn, and
the figures are medians (on a shared machine one run can be off by several times; use 3).
Settings: float32, mixed_float16, mixed_bfloat16, each with
``jit_compile`` false and true; with two GPUs or more, float32 and mixed_float16 with
``distribute: mirrored`` too. ``--settings`` picks some by name (e.g. ``float32
mixed_float16+xla``).

Progress goes to stderr; only the JSON result goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
from typing import Any

from epoch_timer import epoch_timer
from project_split import PROJECT, load_parameters

SIZE = 128
MODELS = ("transfer", "scratch_cnn")


def progress(message: str) -> None:
    print(f"[accelerators benchmark] {message}", file=sys.stderr, flush=True)


def settings_to_try(gpus: int) -> dict[str, dict[str, Any]]:
    """Setting name -> the training keys it sets."""
    settings = {}
    for precision in ("float32", "mixed_float16", "mixed_bfloat16"):
        settings[precision] = {"precision": precision, "jit_compile": False}
        settings[f"{precision}+xla"] = {"precision": precision, "jit_compile": True}
    if gpus > 1:
        for precision in ("float32", "mixed_float16"):
            settings[f"{precision}+mirrored"] = {"precision": precision, "distribute": "mirrored"}
    return settings


def variant_parameters(params: dict[str, Any], model: str) -> dict[str, Any]:
    """The variant's resolved parameters at 128 px RGB (random backbone weights)."""
    image = {"size": SIZE, "color_mode": "rgb"}
    if model == "transfer":
        from imgclf.pipelines.transfer.nodes import resolve_variant

        family = params["transfer"]
        backbone = {**params["backbone"], "weights": "none"}
        return resolve_variant(
            image, backbone, family["defaults"], family.get("adam"), name="transfer.adam"
        )
    from imgclf.pipelines.scratch_cnn.nodes import resolve_variant

    family = params["scratch_cnn"]
    return resolve_variant(image, family["defaults"], family["deep"], name="scratch_cnn.deep")


def build(model: str, parameters: dict[str, Any], num_classes: int) -> Any:
    from imgclf.imaging.decode import image_shape
    from imgclf.models.cnn import build_cnn
    from imgclf.pipelines.transfer.nodes import variant_network

    if model == "transfer":
        return variant_network(parameters, num_classes=num_classes).model
    return build_cnn(
        parameters["architecture"],
        input_shape=image_shape(SIZE, "rgb"),
        num_classes=num_classes,
        name="scratch_cnn_deep",
    )


def time_epochs(model: str, parameters: dict[str, Any], setting: dict[str, Any], data) -> list:
    """Seconds of each of two epochs of a fresh model trained under ``setting``."""
    import keras

    from imgclf.training.accelerate import accelerated
    from imgclf.training.config import parse_training_config
    from imgclf.training.fit import compile_model, set_seeds

    images, labels, num_classes = data
    training = parse_training_config({**parameters["training"], **setting})
    keras.backend.clear_session()
    set_seeds(0)
    timer = epoch_timer()
    with accelerated(training):
        network = build(model, parameters, num_classes)
        steps = -(-len(images) // training.batch_size)
        compile_model(network, training, num_classes, steps)
        network.fit(
            images,
            labels,
            batch_size=training.batch_size,
            epochs=2,
            callbacks=[timer],
            verbose=0,
        )
    return timer.seconds


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    import numpy as np
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")  # each setting's fresh model retraces: not news
    params = load_parameters(arguments.project, arguments.env)
    gpus = len(tf.config.list_physical_devices("GPU"))
    settings = settings_to_try(gpus)
    chosen = arguments.settings or list(settings)
    unknown = sorted(set(chosen) - set(settings))
    if unknown:
        raise SystemExit(f"unknown setting(s) {unknown}; choose among {list(settings)}")
    rng = np.random.default_rng(0)
    num_classes = 12
    data = (
        rng.integers(0, 256, (arguments.images, SIZE, SIZE, 3)).astype("float32"),
        rng.integers(0, num_classes, arguments.images),
        num_classes,
    )
    results: dict[str, Any] = {}
    for model in arguments.models:
        parameters = variant_parameters(params, model)
        rows: dict[str, Any] = {}
        timings: dict[str, list[list[float]]] = {name: [] for name in chosen}
        for repeat in range(arguments.repeats):  # settings in turn, so noise hits them all
            for name in (name for name in chosen if name not in rows):
                progress(f"{model}: {name} ({repeat + 1}/{arguments.repeats})")
                try:
                    timings[name].append(time_epochs(model, parameters, settings[name], data))
                except Exception as error:  # a setting this machine cannot run: say which
                    rows[name] = {"error": f"{type(error).__name__}: {str(error)[:300]}"}
                    progress(f"  failed: {rows[name]['error']}")
                    continue
                first, second = timings[name][-1]
                progress(f"  {second:.2f} s per epoch after a first of {first:.2f} s")
        for name in (name for name in chosen if name not in rows):
            seconds = [second for _, second in timings[name]]
            median = statistics.median(seconds)
            rows[name] = {
                **settings[name],
                "first_epoch_seconds": round(statistics.median(f for f, _ in timings[name]), 3),
                "epoch_seconds": round(median, 3),
                "all_epoch_seconds": seconds,
                "images_per_second": round(arguments.images / median, 1),
            }
        baseline = rows.get("float32", {}).get("epoch_seconds")
        for row in rows.values():
            if baseline and "epoch_seconds" in row:
                row["speedup"] = round(baseline / row["epoch_seconds"], 2)
        described = parameters["backbone"]["name"] if model == "transfer" else "S0 deep CNN"
        results[model] = {
            "variant": parameters["name"],
            "network": described,
            "batch_size": parameters["training"]["batch_size"],
            "settings": rows,
        }
    return {
        "env": arguments.env,
        "image": {"size": SIZE, "color_mode": "rgb"},
        "images": arguments.images,
        "repeats": arguments.repeats,
        "device": "GPU" if gpus else "CPU",
        "gpus": [device.name for device in tf.config.list_physical_devices("GPU")],
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "tensorflow": tf.__version__,
        **results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="base")
    parser.add_argument("--images", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each setting")
    parser.add_argument("--models", nargs="+", choices=MODELS, default=list(MODELS))
    parser.add_argument("--settings", nargs="+", help="setting names (default: all)")
    parser.add_argument("--project", default=PROJECT)
    arguments = parser.parse_args()
    if arguments.images < 1 or arguments.repeats < 1:
        parser.error("--images and --repeats must be at least 1")
    with contextlib.redirect_stdout(sys.stderr):  # Kedro's log; stdout is the JSON
        result = measure(arguments)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
