"""Benchmark: ingest + split of the full-size demo set against Keras' own loader, each as a
whole command, the way users time them.

    python benchmarks/ingest_split.py            # prints one JSON object

On the ``full`` environment (21,600 images of 128×128, as Kaggle's fingers) it measures,
each a fresh process timed from start to exit (imports, Kedro's start-up and the MLflow run
included), its files in the page cache:

- ``generate``: writing the demo images, if they are not there yet (not compared);
- ``cold``: ``kedro run --env full --pipelines ingest,split`` with no previous scan (every
  image decoded and hashed);
- ``warm``: the same command again, files unchanged (the scan is reused);
- ``keras``: a Python script that builds, with ``keras.utils.image_dataset_from_directory``,
  the same train/val split (20 % validation, labels from the file names) and the test set
  from the same files, at ``image.size`` and ``image.color_mode``, and makes one full pass
  over all images.

Each of cold, warm and keras runs ``--repeats`` times (alternating); the figures are medians.
Peak RSS is the largest resident size of the process or any of its worker processes.
Targets: cold at most 0.75 × keras, warm at most 2 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))
ENV = "full"
TARGETS = {"cold_to_keras_ratio_max": 0.75, "warm_seconds_max": 2.0}
QUIET = {"KEDRO_DISABLE_TELEMETRY": "true", "TF_CPP_MIN_LOG_LEVEL": "2"}


def _session(env: str):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    return KedroSession.create(project_path=PROJECT, env=env)


def settings(env: str) -> dict:
    """The demo images' folder and the image settings and seed of ``env`` (generating the
    images first if they are not there)."""
    with _session(env) as session:
        context = session.load_context()
        started = time.perf_counter()
        images = context.catalog.load("raw_images")
        return {
            "generate_seconds": time.perf_counter() - started,
            "images": len(images),
            "root": str(context.catalog.get("raw_images")._path),
            "image": context.params["image"],
            "seed": context.params["seed"],
            "scan": str(context.catalog.get("image_scan")._filepath),
            "data": str(Path(context.catalog.get("train_index")._filepath).parents[1]),
        }


def keras_loader(root: str, image: dict, seed: int) -> dict:
    """What a Keras user writes: the split and one pass over every image."""
    import keras

    root = Path(root)
    size = (
        (image["size"], image["size"]) if isinstance(image["size"], int) else tuple(image["size"])
    )
    options = {"image_size": size, "color_mode": image["color_mode"], "batch_size": 32}

    def labels(folder: Path) -> list[int]:
        names = sorted(path.name for path in folder.iterdir() if path.suffix == ".png")
        classes = sorted({name.rsplit(".", 1)[0][-2:] for name in names})
        return [classes.index(name.rsplit(".", 1)[0][-2:]) for name in names]

    train, val = keras.utils.image_dataset_from_directory(
        root / "train",
        labels=labels(root / "train"),
        validation_split=0.2,
        subset="both",
        seed=seed,
        **options,
    )
    test = keras.utils.image_dataset_from_directory(
        root / "test", labels=labels(root / "test"), shuffle=False, **options
    )
    images = sum(int(batch.shape[0]) for dataset in (train, val, test) for batch, _ in dataset)
    return {"images": images}


def measure_command(command: list[str], cwd: str = str(PROJECT)) -> dict:
    """Run ``command`` in ``cwd`` to its end (run by the ``--measure`` process, so that the
    figures are the command's alone): wall seconds, the peak RSS of it or any child it
    waited for, and the end of its output."""
    started = time.perf_counter()
    completed = subprocess.run(
        command,
        check=False,
        cwd=cwd,
        env={**os.environ, **QUIET},
        capture_output=True,
        text=True,
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{completed.stderr[-3000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"seconds": seconds, "peak_rss_mb": peak, "stdout": completed.stdout[-20000:]}


def timed(command: list[str], cwd: Path = PROJECT) -> dict:
    """:func:`measure_command` in a process of its own."""
    measured = subprocess.run(
        [sys.executable, __file__, "--measure", json.dumps([command, str(cwd)])],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(measured.stdout.strip().splitlines()[-1])


def _median(results: list[dict]) -> dict:
    ordered = sorted(results, key=lambda result: result["seconds"])
    return {
        "seconds": round(ordered[len(ordered) // 2]["seconds"], 2),
        "all_seconds": [round(result["seconds"], 2) for result in results],
        "peak_rss_mb": round(max(result["peak_rss_mb"] for result in results), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--env", default=ENV, help="Kedro environment (default: full)")
    parser.add_argument("--measure", help=argparse.SUPPRESS)
    parser.add_argument("--keras", help=argparse.SUPPRESS)
    parser.add_argument("--fresh", action="store_true", help="regenerate the demo images first")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each stage (default 3)")
    arguments = parser.parse_args()
    if arguments.measure:
        print(json.dumps(measure_command(*json.loads(arguments.measure))))
        return
    if arguments.keras:
        print(json.dumps(keras_loader(**json.loads(arguments.keras))))
        return

    if arguments.fresh:
        shutil.rmtree(PROJECT / "data" / arguments.env / "01_raw", ignore_errors=True)
    with contextlib.redirect_stdout(sys.stderr):  # Kedro's log; stdout is the JSON
        found = settings(arguments.env)
    kedro_run = [KEDRO, "run", "--env", arguments.env, "--pipelines", "ingest,split"]
    keras_args = {key: found[key] for key in ("root", "image", "seed")}
    keras_script = [sys.executable, __file__, "--keras", json.dumps(keras_args)]
    runs: dict[str, list[dict]] = {"cold": [], "warm": [], "keras": []}
    for _ in range(arguments.repeats):
        Path(found["scan"]).unlink(missing_ok=True)
        runs["cold"].append(timed(kedro_run))
        runs["warm"].append(timed(kedro_run))
        runs["keras"].append(timed(keras_script))
    cold, warm, keras_result = (_median(runs[stage]) for stage in ("cold", "warm", "keras"))
    passed = json.loads(runs["keras"][-1]["stdout"].strip().splitlines()[-1])["images"]
    split_sizes = {
        name: len(pd.read_parquet(Path(found["data"]) / "05_model_input" / f"{name}_index.parquet"))
        for name in ("train", "val", "test")
    }
    ratio = cold["seconds"] / keras_result["seconds"]
    print(
        json.dumps(
            {
                "env": arguments.env,
                "images": found["images"],
                "cpu_count": os.cpu_count(),
                "generate_seconds": round(found["generate_seconds"], 2),
                "repeats": arguments.repeats,
                "command": " ".join(["kedro", *kedro_run[1:]]),
                "cold": cold,
                "warm": warm,
                "keras": {**keras_result, "images_passed": passed},
                "split_sizes": split_sizes,
                "cold_to_keras_ratio": round(ratio, 3),
                "targets": TARGETS,
                "cold_met": ratio <= TARGETS["cold_to_keras_ratio_max"],
                "warm_met": warm["seconds"] <= TARGETS["warm_seconds_max"],
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
