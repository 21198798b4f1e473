"""Commands that need no model never load TensorFlow, Keras or Optuna (imgclf.lazy): each
is run as users run it, a fresh `kedro` process, which reports what it imported as it ends."""

import json
import subprocess
import sys

import pytest

from conftest import kedro_environment, kedro_run

HEAVY = ("tensorflow", "keras", "optuna")

# `kedro <arguments>` in this process; at exit it prints which of HEAVY were imported
PROBE = f"""
import atexit, json, sys
atexit.register(lambda: print("IMPORTED " + json.dumps([m for m in {HEAVY!r} if m in sys.modules])))
from kedro.framework.cli import main
sys.argv = ["kedro", *sys.argv[1:]]
main()
"""


def imported_by(project, *arguments: str) -> list[str]:
    completed = subprocess.run(
        [sys.executable, "-c", PROBE, *arguments],
        check=False,
        cwd=project,
        env=kedro_environment(),
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    reports = [line for line in completed.stdout.splitlines() if line.startswith("IMPORTED ")]
    assert reports, completed.stdout[-3000:]
    return json.loads(reports[-1].removeprefix("IMPORTED "))


@pytest.mark.parametrize(
    "arguments",
    [
        ("registry", "list"),
        ("registry", "describe", "__default__"),
        ("catalog", "describe-datasets", "--env", "test"),
        ("run", "--env", "test", "--pipelines", "ingest,split"),
        ("viz", "build"),
        ("deploy", "airflow", "--env", "test"),
    ],
    ids=" ".join,
)
def test_commands_that_need_no_model_never_import_tensorflow_keras_or_optuna(project, arguments):
    assert imported_by(project, *arguments) == []


@pytest.mark.slow
def test_the_probe_sees_what_a_training_run_imports(project):
    """The same probe does see TensorFlow where a node needs it: the check above can fail."""
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    resolve = ("run", "--env", "test", "--nodes", "transfer.adam.resolve_parameters")
    assert set(imported_by(project, *resolve)) >= {"tensorflow", "keras"}
