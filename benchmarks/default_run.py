"""Time the default ``kedro run`` from scratch, pipeline by pipeline, and print JSON.

    python benchmarks/default_run.py [--env base] [--params backbone.weights=none]

The project's conf is copied to a temporary folder, so the run starts with no data (the
demo images are generated, every model trained) and your data/ is untouched. Each pipeline
of ``__default__`` runs as its own ``kedro run --pipelines <name>`` in order, then
``predict``; the figures are wall-clock seconds per command, Python start-up included.
Then ``transfer`` runs a second time, as a user re-running it would: its seconds, and
whether every feature cache was reused (the log's "reusing them" line, once per cache)
rather than computed again. Target: the default run within 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))
DEFAULT = ["ingest", "split", "scratch_cnn", "transfer", "finetune", "evaluate"]
TARGET_SECONDS = 600
REUSED = "unchanged since the last run: reusing them"
COMPUTED = re.compile(r"Backbone features of \d+ \w+ images")  # one line per split computed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base")
    parser.add_argument("--params", default="backbone.weights=none")
    arguments = parser.parse_args()
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "TF_CPP_MIN_LOG_LEVEL": "2"}
    seconds: dict[str, float] = {}
    logs: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="imgclf-default-run-") as folder:
        root = Path(folder)
        shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
        (root / "conf" / "local").mkdir()
        for name in ("pyproject.toml", ".telemetry"):
            shutil.copy(PROJECT / name, root / name)
        (root / "src").mkdir()
        for run, pipeline in [*((name, name) for name in DEFAULT), ("predict", "predict"),
                              ("transfer_again", "transfer")]:  # fmt: skip
            command = [KEDRO, "run", "--env", arguments.env, "--pipelines", pipeline]
            command += ["--params", arguments.params] if arguments.params else []
            started = time.perf_counter()
            completed = subprocess.run(
                command, cwd=root, env=environment, check=True, capture_output=True, text=True
            )
            seconds[run] = round(time.perf_counter() - started, 1)
            logs[run] = " ".join((completed.stdout + completed.stderr).split())
            print(f"{run}: {seconds[run]} s", file=sys.stderr, flush=True)
        leaderboard = next((root / "data").rglob("leaderboard.md")).read_text()
    computed = len(COMPUTED.findall(logs["transfer"]))
    reused = logs["transfer_again"].count(REUSED)
    default_seconds = round(sum(seconds[name] for name in DEFAULT), 1)
    print(
        json.dumps(
            {
                "env": arguments.env,
                "params": arguments.params,
                "cpus": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "seconds_per_pipeline": seconds,
                "default_run_seconds": default_seconds,
                "target_seconds": TARGET_SECONDS,
                "default_run_met": default_seconds <= TARGET_SECONDS,
                "feature_splits_computed_first_run": computed,
                "feature_caches_reused_second_run": reused,
                "feature_splits_computed_second_run": len(COMPUTED.findall(logs["transfer_again"])),
                "leaderboard": leaderboard,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
