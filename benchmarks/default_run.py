"""Time the default ``kedro run`` from scratch, pipeline by pipeline, and print JSON.

    python benchmarks/default_run.py [--env base] [--params backbone.weights=none]

The project's conf is copied to a temporary folder, so the run starts with no data (the
demo images are generated, every model trained) and your data/ is untouched. Each pipeline
of ``__default__`` runs as its own ``kedro run --pipelines <name>`` in order, then
``predict``; the figures are wall-clock seconds per command, Python start-up included.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))
DEFAULT = ["ingest", "split", "scratch_cnn", "transfer", "finetune", "evaluate"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--env", default="base")
    parser.add_argument("--params", default="backbone.weights=none")
    arguments = parser.parse_args()
    environment = {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "TF_CPP_MIN_LOG_LEVEL": "2"}
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="imgclf-default-run-") as folder:
        root = Path(folder)
        shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
        (root / "conf" / "local").mkdir()
        for name in ("pyproject.toml", ".telemetry"):
            shutil.copy(PROJECT / name, root / name)
        (root / "src").mkdir()
        for pipeline in [*DEFAULT, "predict"]:
            command = [KEDRO, "run", "--env", arguments.env, "--pipelines", pipeline]
            command += ["--params", arguments.params] if arguments.params else []
            started = time.perf_counter()
            subprocess.run(command, cwd=root, env=environment, check=True, capture_output=True)
            seconds[pipeline] = round(time.perf_counter() - started, 1)
            print(f"{pipeline}: {seconds[pipeline]} s", file=sys.stderr, flush=True)
        leaderboard = next((root / "data").rglob("leaderboard.md")).read_text()
    print(
        json.dumps(
            {
                "env": arguments.env,
                "params": arguments.params,
                "cpus": os.cpu_count(),
                "machine": platform.processor() or platform.machine(),
                "seconds_per_pipeline": seconds,
                "default_run_seconds": round(sum(seconds[name] for name in DEFAULT), 1),
                "leaderboard": leaderboard,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
