"""Several `kedro run` tuning workers on one shared study, one of them killed mid-trial: on
a real PostgreSQL server (started here, on a socket in a temporary folder) and on a
journal file."""

from __future__ import annotations

import glob
import json
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import KEDRO, LoggedRun, kedro_run
from imgclf.datasets import KerasModelDataset
from imgclf.training.storage import make_storage
from imgclf.training.study import ORPHANED_ATTR, WORKER_ATTR, counts_toward_budget

N_TRIALS = 6
REMOTE_HOST = "other-machine"
FINISHED_TRIAL = re.compile(r"Trial (\d+) (COMPLETE|PRUNED):")


def server_binaries() -> Path | None:
    """The folder of PostgreSQL's initdb and pg_ctl: on the PATH, or Debian's own place."""
    found = shutil.which("initdb") or next(
        iter(sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)), None
    )
    return Path(found).parent if found else None


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL server listening on a socket only; its storage URL."""
    binaries = server_binaries()
    if binaries is None:
        pytest.skip(
            "PostgreSQL's server binaries (initdb, pg_ctl) are not installed: "
            "apt-get install postgresql (make test does so when run as root)"
        )
    # A short folder: a socket's path may not exceed 107 bytes.
    root = Path(tempfile.mkdtemp(prefix="imgclf-pg-", dir="/tmp"))
    root.chmod(0o755)  # the socket's folder: open to a worker in another user namespace
    as_server_user: list[str] = []
    if os.geteuid() == 0:  # the server refuses to run as root
        server_user = pwd.getpwnam("postgres")
        os.chown(root, server_user.pw_uid, server_user.pw_gid)
        as_server_user = ["runuser", "-u", "postgres", "--"]
    data = root / "data"

    def pg(*arguments: str) -> None:
        subprocess.run([*as_server_user, *arguments], check=True, capture_output=True)

    pg(str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust", "--no-sync")
    server = f"-k {root} -c listen_addresses='' -c fsync=off"
    log = str(root / "log")
    pg(str(binaries / "pg_ctl"), "-D", str(data), "-l", log, "-o", server, "-w", "start")
    try:
        yield f"postgresql://postgres@/postgres?host={root}"
    finally:
        pg(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


def elsewhere(command: list[str]) -> list[str]:
    """``command`` as if on another machine: in its own UTS namespace, named REMOTE_HOST,
    so that the other workers cannot tell from its pid that it died."""
    rename = f'hostname {REMOTE_HOST} && exec "$0" "$@"'
    return ["unshare", "--uts", "--map-root-user", "sh", "-c", rename, *command]


def wait_for_mid_trial(storage, worker: LoggedRun, worker_name: str) -> None:
    """Wait until ``worker`` runs a trial that has reported its first epoch."""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        assert worker.process.poll() is None, worker.text[-3000:]
        for study in storage.get_all_studies():
            study_id = storage.get_study_id_from_name(study.study_name)
            for trial in storage.get_all_trials(study_id, deepcopy=False):
                running = trial.state.name == "RUNNING" and trial.intermediate_values
                if running and trial.user_attrs.get(WORKER_ATTR) == worker_name:
                    return
        time.sleep(0.2)
    pytest.fail("the worker to kill never got into a trial:\n" + worker.text[-3000:])


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["postgresql", "journal"])
def test_three_workers_one_killed_mid_trial_end_with_exactly_the_budget(project, request, kind):
    """Three workers tune one study; one is SIGKILLed after its trial's first epoch. On
    PostgreSQL it runs as another machine would, so only the heartbeat can fail its trial;
    on the journal (no heartbeat) it runs on this machine, whose workers see its process
    gone. Either way the study ends with exactly n_trials finished trials, none run twice,
    and the tuned model is then trained once, with the best trial's values."""
    import optuna

    if kind == "postgresql":
        url = request.getfixturevalue("postgres_url")
    else:
        url = f"journal:///{project / 'data' / 'test' / '06_models' / 'shared.log'}"
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split")
    tuning = "scratch_cnn.tuned.tuning"
    settings = f"{tuning}.storage={url},{tuning}.n_trials={N_TRIALS},"
    settings += f"{tuning}.heartbeat_interval=1,{tuning}.grace_period=4"
    worker = [
        *(KEDRO, "run", "--env", "test", "--pipelines", "scratch_cnn"),
        *("--to-nodes", "scratch_cnn.tuned.tune_hyperparameters", "--params", settings),
    ]
    doomed = LoggedRun(project, elsewhere(worker) if kind == "postgresql" else worker)
    survivors = [LoggedRun(project, worker) for _ in range(2)]
    host = REMOTE_HOST if kind == "postgresql" else socket.gethostname()
    doomed_name = f"{host}:{doomed.process.pid}"
    storage = make_storage(url)
    wait_for_mid_trial(storage, doomed, doomed_name)
    doomed.kill()
    assert doomed.wait(timeout=60) == -9
    for survivor in survivors:
        assert survivor.wait(timeout=300) == 0, survivor.text[-3000:]

    final = kedro_run(
        project,
        *("--env", "test", "--pipelines", "scratch_cnn"),
        *("--namespaces", "scratch_cnn.tuned", "--params", settings),
    )

    (study_name,) = optuna.get_all_study_names(storage)
    study = optuna.load_study(study_name=study_name, storage=make_storage(url))
    trials = study.get_trials()
    counted = [trial for trial in trials if counts_toward_budget(trial)]
    assert len(counted) == N_TRIALS
    assert all(trial.state.name == "COMPLETE" for trial in counted)
    # none run twice: each finished once in one worker's log, each with its own values
    logs = [run.text for run in (doomed, *survivors)] + [final]
    finished = [int(number) for log in logs for number, _ in FINISHED_TRIAL.findall(log)]
    assert sorted(finished) == sorted(trial.number for trial in counted)
    assert len({json.dumps(trial.params, sort_keys=True) for trial in counted}) == N_TRIALS

    (dead,) = [trial for trial in trials if trial.user_attrs.get(WORKER_ATTR) == doomed_name]
    assert dead.state.name == "FAIL" and dead.number not in finished
    if kind == "postgresql":  # the heartbeat failed it, not this host's process check
        assert ORPHANED_ATTR not in dead.user_attrs
    else:
        assert dead.user_attrs[ORPHANED_ATTR] is True

    data = project / "data" / "test"
    best = json.loads((data / "07_model_output/scratch_cnn/tuned/best_params.json").read_text())
    assert best["value"] == study.best_value
    model = KerasModelDataset(filepath=str(data / "06_models/scratch_cnn/tuned/model.keras")).load()
    assert model.get_layer("head_dense1").units == best["params"]["units"]
    history = json.loads((data / "07_model_output/scratch_cnn/tuned/history.json").read_text())
    assert history["epochs_run"] == history["planned_epochs"]
