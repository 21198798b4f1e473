"""Are the files an index lists still the ones ingest read? Checked before any image is
decoded for training or evaluation, so that a file deleted or rewritten since ingest stops
the run at once with the files named, instead of deep inside TensorFlow."""

from __future__ import annotations

import os

import pandas as pd

SHOWN = 5


def check_index_files(index: pd.DataFrame) -> None:
    """Check that every local file of ``index`` (a ``path`` column) exists and, where the
    index records them, still has its ``bytes`` and ``modified`` time. Remote files (URLs)
    are not checked.

    Raises:
        ValueError: naming the first few files that changed, how many did, and the fix.
    """
    problems = []
    sizes = index["bytes"] if "bytes" in index.columns else [None] * len(index)
    times = index["modified"] if "modified" in index.columns else [None] * len(index)
    for path, size, modified in zip(index["path"].astype(str), sizes, times):
        if "://" in path:
            continue
        problem = _changed(path, size, modified)
        if problem:
            problems.append(f"{path} ({problem})")
    if problems:
        more = f", and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise ValueError(
            f"{len(problems)} of the {len(index)} images in the index changed or disappeared "
            f"since ingest: {'; '.join(problems[:SHOWN])}{more}. Re-run "
            "`kedro run --pipelines ingest,split` to index the images as they are now, then "
            "this run again."
        )


def _changed(path: str, size: object, modified: object) -> str | None:
    try:
        status = os.stat(path)
    except OSError as error:
        return "missing" if isinstance(error, FileNotFoundError) else f"unreadable: {error}"
    if not pd.isna(size) and status.st_size != int(size):
        return f"now {status.st_size:,} bytes, {int(size):,} at ingest"
    if not pd.isna(modified) and status.st_mtime != float(modified):
        return "modified since ingest"
    return None
