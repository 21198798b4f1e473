"""Atomic writes and the messages for full, read-only or vanished output folders."""

import errno
import os
import subprocess
import sys

import pytest
from kedro.io import DatasetError

from imgclf import atomic


class Interrupted(Exception):
    pass


def test_a_write_replaces_the_file_and_leaves_nothing_beside_it(tmp_path):
    target = tmp_path / "out" / "model.keras"
    atomic.write_bytes(target, b"first")
    atomic.write_bytes(target, b"second")
    assert target.read_bytes() == b"second"
    assert sorted(path.name for path in target.parent.iterdir()) == ["model.keras"]


def test_an_interrupted_write_keeps_the_previous_file_whole(tmp_path):
    target = tmp_path / "features.npz"
    atomic.write_bytes(target, b"previous")
    with pytest.raises(Interrupted), atomic.atomic_path(target) as temporary:
        assert temporary.parent == tmp_path and temporary.name.endswith(".npz")
        temporary.write_bytes(b"half of the n")
        raise Interrupted
    assert target.read_bytes() == b"previous"
    assert [path.name for path in tmp_path.iterdir()] == ["features.npz"]


def test_temporaries_of_killed_processes_are_removed_by_the_next_write(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead = int(finished.stdout)
    stale = tmp_path / f".model.keras.tmp-{dead}.keras"
    stale.write_bytes(b"half")
    running = tmp_path / f".model.keras.tmp-{os.getppid()}.keras"  # a live process's
    running.write_bytes(b"in progress")
    other = tmp_path / f".other.keras.tmp-{dead}.keras"
    other.write_bytes(b"another target's")
    atomic.write_bytes(tmp_path / "model.keras", b"whole")
    assert not stale.exists()
    assert running.exists() and other.exists()


def test_a_folder_is_replaced_whole(tmp_path):
    target = tmp_path / "saved_model"
    with atomic.atomic_folder(target) as folder:
        (folder / "a.pb").write_bytes(b"one")
    with pytest.raises(Interrupted), atomic.atomic_folder(target) as folder:
        (folder / "a.pb").write_bytes(b"tw")
        raise Interrupted
    assert (target / "a.pb").read_bytes() == b"one"
    with atomic.atomic_folder(target) as folder:
        (folder / "b.pb").write_bytes(b"two")
    assert sorted(path.name for path in target.iterdir()) == ["b.pb"]
    assert [path.name for path in tmp_path.iterdir()] == ["saved_model"]


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "no space left on the device. Free space on that disk"),
        (errno.EROFS, "the file system is read-only. Mount it read-write"),
        (errno.EACCES, "permission denied. Make the folder writable"),
        (errno.ENOENT, "its folder vanished while the run was writing"),
    ],
)
def test_write_errors_are_explained_with_the_path_even_when_wrapped(code, words):
    try:
        try:
            raise atomic.OutputWriteError(code, os.strerror(code), "data/06_models/x/model.keras")
        except OSError as error:
            raise DatasetError("Failed while saving data to dataset") from error
    except DatasetError as wrapped:
        message = atomic.describe_write_error(wrapped)
    assert message.startswith("Could not write data/06_models/x/model.keras: ")
    assert words in message
    assert "data_dir" in message


def test_a_full_disk_met_by_any_writer_is_explained():
    error = OSError(errno.ENOSPC, "No space left on device", "data/08_reporting/x.csv")
    assert "no space left" in atomic.describe_write_error(error)


def test_other_errors_are_not_explained():
    assert atomic.describe_write_error(ValueError("bad parameter")) is None
    assert atomic.describe_write_error(OSError(errno.EIO, "I/O error")) is None
    # reading an input that is not there is not a vanished output folder
    missing = FileNotFoundError(errno.ENOENT, "No such file", "data/08_reporting/x.csv")
    assert atomic.describe_write_error(missing) is None


def test_a_failed_write_raises_an_output_write_error_naming_the_target(tmp_path):
    target = tmp_path / "model.keras"
    with pytest.raises(atomic.OutputWriteError) as raised, atomic.atomic_path(target) as temp:
        raise OSError(errno.ENOSPC, "No space left on device", str(temp))
    assert raised.value.filename == str(target) and raised.value.errno == errno.ENOSPC
