"""Benchmark: does Hyperband pruning save training without losing the best result?

    .venv/bin/python benchmarks/tuning.py                 # prints one JSON object
    .venv/bin/python benchmarks/tuning.py --trials 2 --epochs 1   # smoke test

On the base environment's split (the demo data, as ``kedro run`` reads it) it runs the
``scratch_cnn.tuned`` variant's Optuna study twice, through the project's own
``tune_model``, with the same trial budget, epochs per trial, sampler and seed:

- ``unpruned``: pruner ``{name: none}`` (every trial trains every epoch), run first;
- ``pruned``: the variant's configured pruner (default ``{name: hyperband}``).

Each study has its own fresh sqlite storage in a temporary folder; the pruned one keeps the
configured study name (Hyperband's brackets depend on it), the unpruned one adds
``.unpruned``. Per study it reports the epochs actually trained (the intermediate values of
every trial), wall time, the best val_accuracy of a complete trial and the trials complete,
pruned and failed.

Targets: ``epoch_ratio`` (pruned epochs / unpruned epochs) at most 0.5, and the pruned
study's best value at most 1.0 accuracy point below the unpruned one's
(``best_difference_points`` = (pruned best - unpruned best) x 100 >= -1.0).

Options: ``--env`` (default base), ``--trials`` (12), ``--epochs`` per trial (6),
``--seed`` (default the project's ``seed``), ``--project`` (default this repository).

Progress and logs go to stderr; only the JSON result goes to stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from project_split import PROJECT, load_split

VARIANT = "tuned"
TARGETS = {"epoch_ratio_max": 0.5, "best_within_points": 1.0}


def progress(message: str) -> None:
    print(f"[tuning benchmark] {message}", file=sys.stderr, flush=True)


def run_one(
    label: str,
    study_name: str,
    pruner: dict[str, Any],
    parameters: dict[str, Any],
    inputs: dict[str, Any],
    *,
    folder: str,
    trials: int,
    epochs: int,
    seed: int,
) -> dict[str, Any]:
    """Run one study in its own storage (``<folder>/<label>.db``) and summarise it."""
    import pandas as pd

    from imgclf.imaging.decode import image_shape
    from imgclf.models.cnn import build_cnn
    from imgclf.training.objective import tune_model
    from imgclf.training.trials import trials_table

    image, classes = inputs["params"]["image"], inputs["classes"]
    parameters = copy.deepcopy(parameters)
    parameters["tuning"].update(
        n_trials=trials,
        epochs=epochs,
        storage=f"sqlite:///{Path(folder) / label}.db",
        study_name=study_name,
        pruner=pruner,
    )

    def build_model(p: dict[str, Any]):
        return build_cnn(
            p["architecture"],
            input_shape=image_shape(image["size"], image["color_mode"]),
            num_classes=len(classes),
            name=p["name"].replace(".", "_"),
        )

    progress(f"study {label}: {trials} trials of up to {epochs} epochs, pruner {pruner}")
    started = time.perf_counter()
    study = tune_model(
        parameters,
        build_model,
        inputs["train_index"],
        inputs["val_index"],
        classes,
        seed=seed,
    )
    wall = time.perf_counter() - started
    table = trials_table(study)
    complete = table[table["state"] == "COMPLETE"]
    progress(f"study {label}: {int(table['epochs'].sum())} epochs trained in {wall:.1f} s")
    return {
        "study_name": study.study_name,
        "pruner": pruner,
        "epochs_trained": int(table["epochs"].sum()),
        "wall_seconds": round(wall, 2),
        "best_value": None if complete.empty else float(study.best_value),
        "trials_complete": len(complete),
        "trials_pruned": int((table["state"] == "PRUNED").sum()),
        "trials_failed": int((table["state"] == "FAIL").sum()),
        "trials": [
            {
                "number": int(row.number),
                "state": row.state,
                "epochs": int(row.epochs),
                "value": None if pd.isna(row.value) else round(float(row.value), 4),
                "per_epoch": [
                    round(value, 4)
                    for _, value in sorted(study.trials[row.number].intermediate_values.items())
                ],
            }
            for row in table.itertuples()
        ],
    }


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    from imgclf.pipelines.scratch_cnn.nodes import resolve_variant
    from imgclf.training.tuning import parse_tuning_config

    inputs = load_split(arguments.project, arguments.env)
    params = inputs["params"]
    family = params["scratch_cnn"]
    parameters = resolve_variant(
        params["image"], family["defaults"], family[VARIANT], name=f"scratch_cnn.{VARIANT}"
    )
    seed = params["seed"] if arguments.seed is None else arguments.seed
    tuning = parse_tuning_config(parameters["tuning"])
    configured = dict(tuning.pruner)
    options = {"trials": arguments.trials, "epochs": arguments.epochs, "seed": seed}
    with tempfile.TemporaryDirectory(prefix="imgclf-tuning-benchmark-") as folder:
        options["folder"] = folder
        # Hyperband assigns trials to brackets by a hash of the study name and trial number:
        # the pruned study keeps the configured name, so it prunes as `kedro run` would.
        name = tuning.study_name or parameters["name"]
        none = {"name": "none"}
        unpruned = run_one("unpruned", f"{name}.unpruned", none, parameters, inputs, **options)
        pruned = run_one("pruned", name, configured, parameters, inputs, **options)
    ratio = pruned["epochs_trained"] / unpruned["epochs_trained"]
    if pruned["best_value"] is None or unpruned["best_value"] is None:
        difference = None
    else:
        difference = round((pruned["best_value"] - unpruned["best_value"]) * 100, 2)
    return {
        "env": arguments.env,
        "variant": parameters["name"],
        "trials": arguments.trials,
        "epochs_per_trial": arguments.epochs,
        "seed": seed,
        "image": params["image"],
        "sampler": dict(tuning.sampler),
        "pruner": configured,
        "train_images": len(inputs["train_index"]),
        "val_images": len(inputs["val_index"]),
        "classes": len(inputs["classes"]),
        "cpu_count": os.cpu_count(),
        "unpruned": unpruned,
        "pruned": pruned,
        "epoch_ratio": round(ratio, 3),
        "wall_ratio": round(pruned["wall_seconds"] / unpruned["wall_seconds"], 3),
        "best_difference_points": difference,
        "targets": TARGETS,
        "epoch_ratio_met": ratio <= TARGETS["epoch_ratio_max"],
        "best_within_met": difference is not None and difference >= -TARGETS["best_within_points"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--env", default="base", help="Kedro environment (default: base)")
    parser.add_argument("--trials", type=int, default=12, help="trials per study (default 12)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per trial (default 6)")
    parser.add_argument("--seed", type=int, help="default: the project's `seed` parameter")
    parser.add_argument("--project", type=Path, default=PROJECT, help="project root")
    arguments = parser.parse_args()
    if arguments.trials < 1 or arguments.epochs < 1:
        parser.error("--trials and --epochs must be at least 1")
    # Kedro's console log handler, Keras' progress bars: all to stderr; stdout is the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        result = measure(arguments)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
