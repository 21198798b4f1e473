"""Benchmark: does the tuning pruner save training without losing the best result?

    .venv/bin/python benchmarks/tuning.py                 # prints one JSON object
    .venv/bin/python benchmarks/tuning.py --seeds 42 1 2 3 4       # one pair of studies each
    .venv/bin/python benchmarks/tuning.py --trials 2 --epochs 1   # smoke test
    .venv/bin/python benchmarks/tuning.py --seeds 1 2 --unpruned-only   # the curves alone
    .venv/bin/python benchmarks/tuning.py --replay a.json b.json   # pruners on recorded curves
    .venv/bin/python benchmarks/tuning.py --unpruned-from a.json --seeds 1 2  # pruned runs only

On the base environment's split (the demo data, as ``kedro run`` reads it) it runs the
``scratch_cnn.tuned`` variant's Optuna study twice, through the project's own
``tune_model``, with the same trial budget, epochs per trial, sampler and seed:

- ``unpruned``: pruner ``{name: none}`` (every trial trains every epoch), run first;
- ``pruned``: the variant's configured pruner (or ``--pruner '{"name": "median"}'``).

Each study has its own fresh sqlite storage in a temporary folder; the pruned one keeps the
configured study name (Hyperband's brackets depend on it), the unpruned one adds
``.unpruned``. Per study it reports the epochs actually trained (the intermediate values of
every trial), wall time, the best val_accuracy of a complete trial and the trials complete,
pruned and failed.

Targets: ``epoch_ratio`` (pruned epochs / unpruned epochs) at most 0.5, and the pruned
study's best value at most 1.0 accuracy point below the unpruned one's
(``best_difference_points`` = (pruned best - unpruned best) x 100 >= -1.0).

With several ``--seeds`` (default: the project's ``seed``) each seed is a study pair of its
own (the sampler's draws and the networks' initial weights follow the seed) and the targets
must hold for every one.

``--unpruned-only`` runs the unpruned studies alone (their curves are what ``--replay``
needs); ``--unpruned-from FILE ...`` takes the unpruned studies of those seeds from earlier
results (same trials and epochs) instead of training them again.

``--replay FILE ...`` trains nothing: it reads the unpruned studies' recorded curves (the
``per_epoch`` values of every trial) from earlier results and replays them, trial by
trial, through each of a list of candidate pruners (``CANDIDATES``), as the objective reports
them; it prints, per candidate, the epochs it would train and the best value it would keep
on every seed. Trials keep their recorded order and values (TPE's first 10 trials are random
draws, so a pruned study draws the same ones), so it is a cheap way to choose a pruner,
which a run with ``--pruner`` then confirms.

Options: ``--env`` (default base), ``--trials`` (12), ``--epochs`` per trial (6),
``--seeds`` (default the project's ``seed``), ``--pruner`` (JSON; default the variant's),
``--project`` (default this repository).

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

    image, classes = parameters["image"], inputs["classes"]
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


def compare(unpruned: dict[str, Any], pruned: dict[str, Any]) -> dict[str, Any]:
    """The epoch ratio and the difference of the best values (points), against the targets."""
    ratio = pruned["epochs_trained"] / unpruned["epochs_trained"]
    if pruned["best_value"] is None or unpruned["best_value"] is None:
        difference = None
    else:
        difference = round((pruned["best_value"] - unpruned["best_value"]) * 100, 2)
    return {
        "epoch_ratio": round(ratio, 3),
        "best_difference_points": difference,
        "epoch_ratio_met": ratio <= TARGETS["epoch_ratio_max"],
        "best_within_met": difference is not None and difference >= -TARGETS["best_within_points"],
    }


def measure(arguments: argparse.Namespace) -> dict[str, Any]:
    from imgclf.pipelines.family import with_image_settings
    from imgclf.pipelines.scratch_cnn.nodes import resolve_variant
    from imgclf.training.tuning import parse_tuning_config

    inputs = load_split(arguments.project, arguments.env)
    params = inputs["params"]
    family = params["scratch_cnn"]
    # as the pipeline resolves it: `color_mode: auto` decided by the training images
    parameters = with_image_settings(resolve_variant)(
        params["image"],
        inputs["train_index"],
        family["defaults"],
        family[VARIANT],
        name=f"scratch_cnn.{VARIANT}",
    )
    tuning = parse_tuning_config(parameters["tuning"])
    pruner = dict(tuning.pruner) if arguments.pruner is None else json.loads(arguments.pruner)
    # Hyperband assigns trials to brackets by a hash of the study name and trial number:
    # the pruned study keeps the configured name, so it prunes as `kedro run` would.
    name = tuning.study_name or parameters["name"]
    seeds = arguments.seeds or [params["seed"]]
    recorded = recorded_unpruned(arguments.unpruned_from, arguments)
    results = []
    for seed in seeds:
        options = {"trials": arguments.trials, "epochs": arguments.epochs, "seed": seed}
        with tempfile.TemporaryDirectory(prefix="imgclf-tuning-benchmark-") as folder:
            options["folder"] = folder
            unpruned = recorded.get(seed)
            if unpruned is None:
                none = {"name": "none"}
                unpruned = run_one(
                    "unpruned", f"{name}.unpruned", none, parameters, inputs, **options
                )
            if arguments.unpruned_only:
                # the name the pruned study would have (the same experiment digest)
                pruned_name = unpruned["study_name"].replace(".unpruned-", "-", 1)
                results.append({"seed": seed, "unpruned": unpruned, "study_name": pruned_name})
                continue
            pruned = run_one("pruned", name, pruner, parameters, inputs, **options)
        results.append(
            {
                "seed": seed,
                "unpruned": unpruned,
                "pruned": pruned,
                "wall_ratio": round(pruned["wall_seconds"] / unpruned["wall_seconds"], 3),
                **compare(unpruned, pruned),
            }
        )
        progress(
            f"seed {seed}: {results[-1]['epoch_ratio']} of the epochs, best "
            f"{results[-1]['best_difference_points']} points"
        )
    return {
        "env": arguments.env,
        "variant": parameters["name"],
        "trials": arguments.trials,
        "epochs_per_trial": arguments.epochs,
        "image": parameters["image"],
        "sampler": dict(tuning.sampler),
        "pruner": pruner,
        "train_images": len(inputs["train_index"]),
        "val_images": len(inputs["val_index"]),
        "classes": len(inputs["classes"]),
        "cpu_count": os.cpu_count(),
        "targets": TARGETS,
        "seeds": results,
        "all_met": None
        if arguments.unpruned_only
        else all(r["epoch_ratio_met"] and r["best_within_met"] for r in results),
    }


def recorded_unpruned(files: list[Path], arguments: argparse.Namespace) -> dict[int, dict]:
    """The unpruned studies of earlier results (``--unpruned-from``), by seed; each must have
    been run with the same trials and epochs per trial."""
    studies = {}
    for file in files or []:
        result = json.loads(file.read_text())
        if (result["trials"], result["epochs_per_trial"]) != (arguments.trials, arguments.epochs):
            raise SystemExit(
                f"{file}: recorded with {result['trials']} trials x {result['epochs_per_trial']} "
                f"epochs, not {arguments.trials} x {arguments.epochs}"
            )
        studies.update({run["seed"]: run["unpruned"] for run in result["seeds"]})
    return studies


# Pruners the replay tries: Optuna's median and percentile pruners with fewer unpruned
# trials and a warm-up, successive halving and Hyperband with a larger first rung.
CANDIDATES = [
    {"name": "hyperband"},
    *(
        {"name": "median", "n_startup_trials": startup, "n_warmup_steps": warmup}
        for startup in (1, 2, 3, 5)
        for warmup in (0, 1, 2, 3)
    ),
    *(
        {
            "name": "percentile",
            "percentile": percentile,
            "n_startup_trials": startup,
            "n_warmup_steps": warmup,
        }
        for percentile in (25.0, 40.0)
        for startup in (1, 2, 3)
        for warmup in (1, 2, 3)
    ),
    *(
        {"name": pruner, "min_resource": resource, "reduction_factor": factor}
        for pruner in ("hyperband", "successive_halving")
        for resource in (1, 2, 3)
        for factor in (2, 3, 4)
    ),
]


def replay_study(curves: list[list[float]], pruner: dict[str, Any], study_name: str) -> dict:
    """``curves`` (one trial's validation values per epoch each, in trial order) reported to
    ``pruner`` as the objective reports them: the epochs trained and the best value kept."""
    import optuna

    from imgclf.training.tuning import make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    epochs = max(len(curve) for curve in curves)
    study = optuna.create_study(
        study_name=study_name, direction="maximize", pruner=make_pruner(pruner, epochs)
    )
    trained, best = 0, None
    for curve in curves:
        trial = study.ask()
        for step, value in enumerate(curve, 1):
            trial.report(value, step)
            trained += 1
            if step < len(curve) and trial.should_prune():
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            value = max(curve)  # a trial's value: the best over its epochs
            study.tell(trial, value)
            best = value if best is None else max(best, value)
    return {"epochs_trained": trained, "best_value": best}


def replay(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Every candidate pruner on every seed's recorded unpruned curves."""
    rows = []
    for pruner in CANDIDATES:
        seeds = []
        for run in runs:
            unpruned = run["unpruned"]
            curves = [trial["per_epoch"] for trial in unpruned["trials"] if trial["per_epoch"]]
            study_name = run["pruned"]["study_name"] if "pruned" in run else run["study_name"]
            replayed = replay_study(curves, pruner, study_name)
            seeds.append({"seed": run["seed"], **compare(unpruned, replayed)})
        rows.append(
            {
                "pruner": pruner,
                "all_met": all(s["epoch_ratio_met"] and s["best_within_met"] for s in seeds),
                "mean_epoch_ratio": round(sum(s["epoch_ratio"] for s in seeds) / len(seeds), 3),
                "worst_best_difference_points": min(s["best_difference_points"] for s in seeds),
                "seeds": seeds,
            }
        )
    rows.sort(
        key=lambda row: (
            not row["all_met"],
            -row["worst_best_difference_points"],
            row["mean_epoch_ratio"],
        )
    )
    return {
        "targets": TARGETS,
        "seeds": [run["seed"] for run in runs],
        "candidates": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--env", default="base", help="Kedro environment (default: base)")
    parser.add_argument("--trials", type=int, default=12, help="trials per study (default 12)")
    parser.add_argument("--epochs", type=int, default=6, help="epochs per trial (default 6)")
    parser.add_argument(
        "--seeds", type=int, nargs="+", help="default: the project's `seed` parameter"
    )
    parser.add_argument(
        "--pruner", help='JSON, e.g. \'{"name": "median"}\' (default: the variant\'s)'
    )
    parser.add_argument(
        "--replay", type=Path, nargs="+", help="earlier results: replay pruners on their curves"
    )
    parser.add_argument(
        "--unpruned-only",
        action="store_true",
        help="run only the unpruned studies (the curves --replay needs)",
    )
    parser.add_argument(
        "--unpruned-from",
        type=Path,
        nargs="+",
        help="earlier results: reuse their unpruned studies of the same seeds",
    )
    parser.add_argument("--project", type=Path, default=PROJECT, help="project root")
    arguments = parser.parse_args()
    if arguments.replay:
        runs = [run for file in arguments.replay for run in json.loads(file.read_text())["seeds"]]
        print(json.dumps(replay(runs), indent=2))
        return
    if arguments.trials < 1 or arguments.epochs < 1:
        parser.error("--trials and --epochs must be at least 1")
    # Kedro's console log handler, Keras' progress bars: all to stderr; stdout is the JSON.
    with contextlib.redirect_stdout(sys.stderr):
        result = measure(arguments)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
