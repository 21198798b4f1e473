"""The project's split and parameters, as ``kedro run`` reads them, for the benchmarks that
train models (``tuning.py``, ``train_input.py``, ``accelerators.py``). Not a benchmark
itself."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

os.environ["KEDRO_DISABLE_TELEMETRY"] = "true"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROJECT = Path(__file__).resolve().parents[1]
SPLIT = ("train_index", "val_index", "classes")


def load_split(project: Path, env: str, names: tuple[str, ...] = SPLIT) -> dict[str, Any]:
    """``names`` (default ``train_index``, ``val_index``, ``classes``) and ``params`` of
    ``kedro run --env <env>``; runs ingest + split first if the split is not there yet."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        catalog = session.load_context().catalog
        missing = [name for name in names if not catalog.exists(name)]
        if missing:
            print(
                f"no {', '.join(missing)} in env {env!r}: running ingest + split",
                file=sys.stderr,
                flush=True,
            )
            session.run(pipeline_names=["ingest", "split"])
    with KedroSession.create(project_path=project, env=env) as session:
        context = session.load_context()
        data = {name: context.catalog.load(name) for name in names}
        return {**data, "params": context.params}


def load_parameters(project: Path, env: str) -> dict[str, Any]:
    """The parameters of ``kedro run --env <env>`` (no data is read)."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    with KedroSession.create(project_path=project, env=env) as session:
        return session.load_context().params
