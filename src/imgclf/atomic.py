"""Atomic writes: a kill, a crash or a full disk at any moment leaves either the previous
complete file or the new complete one at the target path, never half a file.

Each writer writes to a hidden temporary file in the target's own folder
(``.<name>.tmp-<pid><suffixes>``, so that libraries which check the extension, such as
Keras, accept it), flushes it to disk, then renames it over the target, which POSIX makes
atomic within one file system. On an error the temporary file is removed and the error
raised; temporaries that killed processes left behind are removed by the next write of
the same target.

:func:`describe_write_error` turns the operating system's errors for a full disk, a
read-only folder or a vanished folder into one sentence that names the path and what to
do.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path


class OutputWriteError(OSError):
    """An ``OSError`` raised while one of this module's writers wrote ``filename``."""


_TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path`` to write a file to; when the block ends
    without an error, the file is synced and renamed to ``path``. The folder is created
    if missing."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    temporary = _temporary_path(target, "tmp")
    try:
        yield temporary
        _sync_file(temporary)
        os.replace(temporary, target)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        # Name the file the user knows.
        name = str(target) if error.filename in (None, str(temporary)) else error.filename
        raise OutputWriteError(error.errno, error.strerror, name) from error
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _sync_folder(target.parent)


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as temporary, temporary.open("wb") as file:
        file.write(data)


def write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    write_bytes(path, text.encode("utf-8"))


@contextlib.contextmanager
def atomic_folder(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``path`` to write a folder (e.g. a SavedModel) into;
    when the block ends without an error it replaces ``path``. The old folder is moved
    aside before the new one is renamed into place, so a kill between the two renames
    leaves the old one as ``.<name>.old-<pid>`` rather than a mixture of both."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_temporaries(target)
    temporary = _temporary_path(target, "tmp")
    try:
        temporary.mkdir()
        yield temporary
        for file in temporary.rglob("*"):
            if file.is_file():
                _sync_file(file)
        old = _temporary_path(target, "old")
        if target.exists():
            os.replace(target, old)
        os.replace(temporary, target)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    shutil.rmtree(old, ignore_errors=True)
    _sync_folder(target.parent)


def describe_write_error(error: BaseException) -> str | None:
    """One sentence for an error that means the disk is full, a folder is read-only or
    not writable, or an output folder vanished; None for any other error.

    The error may be wrapped (Kedro wraps a dataset's save error): its causes and contexts
    are searched for the first such ``OSError`` (or SQLite's "database or disk is full").
    A full disk or a read-only file system is explained wherever it was met; a missing
    file or a denied permission only when one of this module's writers met it (an
    :class:`OutputWriteError`), since reading a file that is not there is another problem.
    """
    for cause in _chain(error):
        if isinstance(cause, OSError) and _explainable(cause):
            path = cause.filename or "an output file"
            what, advice = _ADVICE[cause.errno]
            return f"Could not write {path}: {what}. {advice}"
        if "database or disk is full" in str(cause):
            return (
                f"Could not write to the tuning study's database: the disk is full ({cause}). "
                + _ADVICE[errno.ENOSPC][1]
            )
    return None


def _explainable(error: OSError) -> bool:
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
        return True
    return isinstance(error, OutputWriteError) and error.errno in _ADVICE


_DATA_DIR_ADVICE = (
    "or point the environment's data_dir (conf/<env>/globals.yml) or checkpoint_dir at "
    "another folder, then run again: finished epochs and saved outputs are kept"
)
_ADVICE = {
    errno.ENOSPC: ("no space left on the device", f"Free space on that disk {_DATA_DIR_ADVICE}"),
    errno.EDQUOT: ("the disk quota is used up", f"Free space within your quota {_DATA_DIR_ADVICE}"),
    errno.EROFS: (
        "the file system is read-only",
        f"Mount it read-write {_DATA_DIR_ADVICE}",
    ),
    errno.EACCES: (
        "permission denied",
        f"Make the folder writable for this user (chmod/chown) {_DATA_DIR_ADVICE}",
    ),
    errno.EPERM: (
        "the operation is not permitted",
        f"Make the folder writable for this user (chmod/chown) {_DATA_DIR_ADVICE}",
    ),
    errno.ENOENT: (
        "its folder vanished while the run was writing",
        "Check that nothing removes or unmounts the output folders during a run, "
        + _DATA_DIR_ADVICE,
    ),
}


def _chain(error: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _temporary_path(target: Path, kind: str) -> Path:
    return target.with_name(f".{target.name}.{kind}-{os.getpid()}{''.join(target.suffixes)}")


def _remove_stale_temporaries(target: Path) -> None:
    """Remove temporaries of ``target`` left by processes that no longer run."""
    if not target.parent.is_dir():
        return
    for candidate in target.parent.glob(f".{_glob_escape(target.name)}.*-*"):
        match = _TEMPORARY.match(candidate.name)
        if match is None or match["name"] != target.name or _running(int(match["pid"])):
            continue
        if candidate.is_dir():
            shutil.rmtree(candidate, ignore_errors=True)
        else:
            candidate.unlink(missing_ok=True)


def _glob_escape(name: str) -> str:
    """``name`` with glob's special characters escaped."""
    return re.sub(r"([*?\[])", r"[\1]", name)


def _running(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a temporary of this process that an earlier error left
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _sync_file(path: Path) -> None:
    with path.open("rb+") as file:
        os.fsync(file.fileno())


def _sync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
