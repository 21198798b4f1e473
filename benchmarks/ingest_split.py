"""Benchmark: ingest + split of the full-size demo set against Keras' own loader.

    python benchmarks/ingest_split.py            # prints one JSON object

On the ``full`` environment (21,600 images of 128×128, as Kaggle's fingers) it measures,
each stage in a fresh process so that times and peak memory are its own:

- ``generate``: writing the demo images, if they are not there yet (not compared);
- ``cold``: ``ingest`` + ``split`` with no previous scan (every image decoded and hashed);
- ``warm``: the same run again, files unchanged (the scan is reused);
- ``keras``: ``keras.utils.image_dataset_from_directory`` building the same train/val split
  (20 % validation, labels from the file names) and the test set from the same files, at
  ``image.size`` and ``image.color_mode``, plus one full pass over all images.

Each of cold, warm and keras runs ``--repeats`` times (alternating); the figures are medians.

Times are of the work alone (``session.run`` / building + iterating), after imports; the
files are in the page cache for every stage. Peak RSS is the largest resident size of the
stage's process or any of its worker processes.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
ENV = "full"


def _session(env: str):
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(PROJECT)
    return KedroSession.create(project_path=PROJECT, env=env)


def _peak_rss_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def stage_generate(env: str) -> dict:
    with _session(env) as session:
        catalog = session.load_context().catalog
        started = time.perf_counter()
        images = catalog.load("raw_images")
        return {"seconds": time.perf_counter() - started, "images": len(images)}


def stage_ingest_split(env: str, cold: bool) -> dict:
    from kedro.framework.project import pipelines

    with _session(env) as session:
        context = session.load_context()
        pipelines.get("ingest")  # imports the nodes' modules outside the timing, like Keras below
        if cold:
            scan = Path(context.catalog.get("image_scan")._filepath)
            scan.unlink(missing_ok=True)
        started = time.perf_counter()
        session.run(pipeline_names=["ingest", "split"])
        seconds = time.perf_counter() - started
        catalog = context.catalog
        sizes = {name: len(catalog.load(f"{name}_index")) for name in ("train", "val", "test")}
    return {"seconds": seconds, "split_sizes": sizes, "peak_rss_mb": _peak_rss_mb()}


def stage_keras(env: str) -> dict:
    with _session(env) as session:
        context = session.load_context()
        root = Path(context.catalog.get("raw_images")._path)
        image = context.params["image"]
        seed = context.params["seed"]
    import keras

    size = (
        (image["size"], image["size"]) if isinstance(image["size"], int) else tuple(image["size"])
    )
    options = {"image_size": size, "color_mode": image["color_mode"], "batch_size": 32}
    started = time.perf_counter()

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
    built = time.perf_counter() - started
    images = sum(int(batch.shape[0]) for dataset in (train, val, test) for batch, _ in dataset)
    return {
        "seconds": time.perf_counter() - started,
        "build_seconds": built,
        "images": images,
        "peak_rss_mb": _peak_rss_mb(),
    }


def _median_run(results: list[dict]) -> dict:
    """The run with the median time, its peak memory the largest of all runs."""
    ordered = sorted(results, key=lambda result: result["seconds"])
    median = dict(ordered[len(ordered) // 2])
    median["all_seconds"] = [round(result["seconds"], 2) for result in results]
    median["peak_rss_mb"] = max(result["peak_rss_mb"] for result in results)
    return median


def run_stage(stage: str, env: str) -> dict:
    completed = subprocess.run(
        [sys.executable, __file__, "--stage", stage, "--env", env],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return json.loads(completed.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--env", default=ENV, help="Kedro environment (default: full)")
    parser.add_argument(
        "--stage",
        choices=["generate", "cold", "warm", "keras"],
        help=argparse.SUPPRESS,
    )
    parser.add_argument("--fresh", action="store_true", help="regenerate the demo images first")
    parser.add_argument("--repeats", type=int, default=3, help="runs of each stage (default 3)")
    arguments = parser.parse_args()

    if arguments.stage:
        result = {
            "generate": lambda: stage_generate(arguments.env),
            "cold": lambda: stage_ingest_split(arguments.env, cold=True),
            "warm": lambda: stage_ingest_split(arguments.env, cold=False),
            "keras": lambda: stage_keras(arguments.env),
        }[arguments.stage]()
        print(json.dumps(result))
        return

    if arguments.fresh:
        shutil.rmtree(PROJECT / "data" / arguments.env / "01_raw", ignore_errors=True)
    generate = run_stage("generate", arguments.env)
    runs = {"cold": [], "warm": [], "keras": []}
    for _ in range(arguments.repeats):
        for stage, results in runs.items():
            results.append(run_stage(stage, arguments.env))
    cold, warm, keras_result = (_median_run(runs[stage]) for stage in ("cold", "warm", "keras"))
    print(
        json.dumps(
            {
                "env": arguments.env,
                "images": generate["images"],
                "cpu_count": os.cpu_count(),
                "generate_seconds": round(generate["seconds"], 2),
                "repeats": arguments.repeats,
                "ingest_split_cold_seconds": round(cold["seconds"], 2),
                "ingest_split_cold_all_seconds": cold["all_seconds"],
                "ingest_split_warm_seconds": round(warm["seconds"], 2),
                "ingest_split_warm_all_seconds": warm["all_seconds"],
                "ingest_split_peak_rss_mb": round(max(cold["peak_rss_mb"], warm["peak_rss_mb"]), 1),
                "split_sizes": cold["split_sizes"],
                "keras_build_seconds": round(keras_result["build_seconds"], 2),
                "keras_build_and_pass_seconds": round(keras_result["seconds"], 2),
                "keras_build_and_pass_all_seconds": keras_result["all_seconds"],
                "keras_images_passed": keras_result["images"],
                "keras_peak_rss_mb": round(keras_result["peak_rss_mb"], 1),
                "cold_to_keras_ratio": round(cold["seconds"] / keras_result["seconds"], 3),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
