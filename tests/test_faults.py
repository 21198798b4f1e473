"""Faults of whole `kedro run`s: kills at random moments, a full disk, a read-only folder."""

from __future__ import annotations

import json
import random
import subprocess
from pathlib import Path

import pytest

from conftest import KEDRO, LoggedRun, kedro, kedro_run
from imgclf.datasets import KerasModelDataset

STRESS_SEED = 14
KILLS = 10
# From the moment the pipeline starts running nodes (the first log line of Kedro's runner):
# the process start-up before it is the same every time and would only waste kills. The ten
# delays sum to 53.1 s, well under the stressed run's work, so that a fast machine still
# gets its ten kills in before the run finishes (at 16 s, 84.6 s, it did not on CI once).
LONGEST_KILL_DELAY_SECONDS = 10.0
STRESSED = [
    *(KEDRO, "run", "--env", "test", "--pipelines", "scratch_cnn,transfer"),
    *("--namespaces", "scratch_cnn.tuned,transfer.features,transfer.adam"),
    # Kedro's own way to go on after a failure: nodes whose outputs all exist are skipped
    "--only-missing-outputs",
    # smaller images (the tuned deep CNN then pads) and a few epochs more, to bound the time
    *("--params", "image.size=48,scratch_cnn.tuned.architecture.block_defaults.padding=same,"
                  "scratch_cnn.tuned.training.epochs=3,transfer.adam.training.epochs=2"),
]  # fmt: skip


@pytest.mark.slow
def test_ten_kills_at_random_moments_then_a_finished_consistent_project(project, tmp_path):
    import optuna

    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    data = project / "data" / "test"
    moments = random.Random(STRESS_SEED)
    kills: list[dict] = []
    runs: list[LoggedRun] = []
    while len(kills) < KILLS:
        run = LoggedRun(project, STRESSED)
        runs.append(run)
        assert run.running_nodes.wait(timeout=180), run.text[-3000:]
        delay = moments.uniform(0, LONGEST_KILL_DELAY_SECONDS)
        try:
            code = run.process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            run.kill()
            run.wait(timeout=60)
            last = [line for line in run.lines if " INFO " in line or " WARNING " in line]
            kills.append({"after_seconds": round(delay, 1), "last_line": last[-1][9:140]})
            continue
        pytest.fail(f"the run finished (exit {code}) before {KILLS} kills: make it longer")
    final = LoggedRun(project, STRESSED)
    runs.append(final)
    assert final.wait(timeout=600) == 0, final.text[-5000:]

    logs = "\n".join(run.text for run in runs)
    summary = {
        "kills": len(kills),
        "resumes": logs.count("Resuming from"),
        "checkpoints_set_aside": logs.count("Set aside checkpoint"),
        "restarts_from_scratch": logs.count("No readable checkpoint left")
        + logs.count("Discarding the checkpoints"),
        "orphaned_trials_replaced": logs.count("marked failed (orphaned)"),
        "moments": kills,
    }
    (tmp_path / "stress.json").write_text(json.dumps(summary, indent=1))
    print(json.dumps(summary))  # shown with pytest -s: the figures for the note

    for family, variant, epochs in (("scratch_cnn", "tuned", 3), ("transfer", "adam", 2)):
        model = KerasModelDataset(
            filepath=str(data / f"06_models/{family}/{variant}/model.keras")
        ).load()
        assert model.output_shape[-1] == 12
        history_file = data / "07_model_output" / family / variant / "history.json"
        history = json.loads(history_file.read_text())
        assert [row["epoch"] for row in history["epochs"]] == list(range(1, epochs + 1))
        assert history["epochs_run"] == history["planned_epochs"] == epochs
    study_names = optuna.get_all_study_names(f"sqlite:///{data / '06_models' / 'optuna.db'}")
    assert len(study_names) == 1
    study = optuna.load_study(
        study_name=study_names[0], storage=f"sqlite:///{data / '06_models' / 'optuna.db'}"
    )
    finished = [trial for trial in study.trials if trial.state.is_finished()]
    counted = [trial for trial in finished if trial.state.name in ("COMPLETE", "PRUNED")]
    assert len(counted) == 3  # the test environment's n_trials: no more, no fewer
    leftovers = [path for path in data.rglob(".*") if ".tmp-" in path.name]
    assert leftovers == [], leftovers
    assert list((data / "06_models" / "checkpoints").iterdir()) == []


@pytest.fixture
def small_filesystem(tmp_path):
    """Mount a tmpfs of the given size (read-only if asked) at a new folder; unmounted at
    the end. Skips where this machine does not let the suite mount (not root), where the
    write-error messages are still tested by injection (tests/test_atomic.py)."""
    mounted: list[Path] = []

    def mount(name: str, *, size: str, read_only: bool = False) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        options = f"size={size}" + (",ro" if read_only else "")
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            pytest.skip(f"cannot mount a small file system here: {result.stderr.strip()}")
        mounted.append(folder)
        return folder

    yield mount
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


@pytest.mark.slow
def test_a_full_disk_or_a_read_only_folder_ends_the_run_with_one_clear_message(
    project, small_filesystem
):
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    cases = {
        "no space left on the device": small_filesystem("full", size="400k"),
        "the file system is read-only": small_filesystem("read_only", size="1m", read_only=True),
    }
    for words, folder in cases.items():
        completed = kedro(
            project,
            *("run", "--env", "test", "--pipelines", "scratch_cnn"),
            *("--namespaces", "scratch_cnn.shallow", "--params", f"checkpoint_dir={folder}"),
            check=False,
        )
        assert completed.returncode == 1, completed.stderr[-3000:]  # never 139, a segfault
        last_line = completed.stderr.strip().splitlines()[-1]
        assert last_line.startswith(f"Error: Could not write {folder}"), last_line
        assert words in last_line and "checkpoint_dir" in last_line
        assert "Traceback" not in completed.stderr
        assert [path for path in folder.rglob("*") if path.is_file()] == []  # no half file
    # what was saved before stays: the split the failed runs read
    assert (project / "data" / "test" / "05_model_input" / "train_index.parquet").exists()
