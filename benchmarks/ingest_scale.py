"""Benchmark: how a cold ``kedro run --pipelines ingest`` grows with the number of images.

    .venv/bin/python benchmarks/ingest_scale.py                       # 10k, 20k, 40k images
    .venv/bin/python benchmarks/ingest_scale.py --sizes 5000 10000    # prints one JSON object

For each size it makes a copy of the project's ``full`` environment in a temporary folder
whose demo set (128×128 fingers, 12 classes, train and test as ``full`` divides them) has
that many images, draws the images, then times ``kedro run --env scale --pipelines ingest``
as a whole fresh process with no earlier scan (every image decoded and hashed, near
duplicates grouped, the profile and plots drawn): wall seconds, the peak RSS of the process
and its worker processes, and, from ingest's own log, the seconds of the scan
(decode + hash) and of the near-duplicate grouping. ``per_1000_images`` divides each by
the thousands of images, so linear growth shows as a flat line.

Progress goes to stderr; only the JSON result goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

from ingest_split import KEDRO, PROJECT, timed

SIZES = (10_000, 20_000, 40_000)
CLASSES = 12
TEST_SHARE = 300 / 1800  # as conf/full divides Kaggle's fingers: 1,500 train + 300 test per class
SCAN = re.compile(r"Decoded (\d+) files in ([\d.]+) s")
GROUPED = re.compile(r"found among \d+ in ([\d.]+) s")


def progress(message: str) -> None:
    print(f"[ingest_scale benchmark] {message}", file=sys.stderr, flush=True)


def scaled_project(root: Path, images: int) -> Path:
    """A copy of the project's conf with an environment ``scale`` (``full`` with ``images``
    demo images), its data under ``root``."""
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT / name, root / name)
    (root / "src").mkdir()
    scale = root / "conf" / "scale"
    shutil.copytree(root / "conf" / "full", scale)
    per_class = images // CLASSES
    test = round(per_class * TEST_SHARE)
    catalog = (scale / "catalog.yml").read_text()
    catalog = re.sub(r"train_per_class: \d+", f"train_per_class: {per_class - test}", catalog)
    catalog = re.sub(r"test_per_class: \d+", f"test_per_class: {test}", catalog)
    (scale / "catalog.yml").write_text(catalog)
    (scale / "globals.yml").write_text("data_dir: data/scale\n")
    return root


def measure(images: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="imgclf-scale-") as folder:
        root = scaled_project(Path(folder), images)
        command = [KEDRO, "run", "--env", "scale", "--pipelines", "ingest"]
        progress(f"{images} images: drawing them (a first ingest run)")
        drawn = timed(command, cwd=root)
        for scan in (root / "data" / "scale").rglob("image_scan*"):
            scan.unlink()
        progress(f"{images} images: cold ingest")
        cold = timed(command, cwd=root)
        found = SCAN.search(cold["stdout"])
        grouped = GROUPED.search(cold["stdout"])
        listed = int(found.group(1)) if found else images
        return {
            "images": listed,
            "draw_and_first_ingest_seconds": round(drawn["seconds"], 2),
            "cold_seconds": round(cold["seconds"], 2),
            "scan_seconds": float(found.group(2)) if found else None,
            "duplicate_grouping_seconds": float(grouped.group(1)) if grouped else None,
            "peak_rss_mb": round(cold["peak_rss_mb"], 1),
            "per_1000_images": {
                "cold_seconds": round(cold["seconds"] / listed * 1000, 3),
                "scan_seconds": round(float(found.group(2)) / listed * 1000, 3) if found else None,
                "peak_rss_mb": round(cold["peak_rss_mb"] / listed * 1000, 1),
            },
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=list(SIZES))
    arguments = parser.parse_args()
    if min(arguments.sizes) < CLASSES * 6:
        parser.error(f"each size needs at least {CLASSES * 6} images")
    results = [measure(size) for size in arguments.sizes]
    print(json.dumps({"cpu_count": os.cpu_count(), "env": "full", "sizes": results}, indent=2))


if __name__ == "__main__":
    main()
