"""``ImageDirectoryDataset`` lists the labelled images under a folder, local or any fsspec URL."""

from __future__ import annotations

import logging
import re
from collections import Counter
from copy import deepcopy
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import fsspec
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_protocol_and_path

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
HIDDEN_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})
LABEL_SOURCES = ("directory", "filename", "table")
COLUMNS = ["path", "label", "source_split", "bytes", "modified"]


class ImageDirectoryDataset(AbstractDataset[None, pd.DataFrame]):
    """Lists every image file under ``path`` (searched recursively) with its label.

    ``load()`` returns a DataFrame sorted by path with the columns ``path`` (what to open:
    a local path or a URL), ``label`` (``None`` when no label can be found: ingest
    quarantines such files), ``source_split`` (``train``/``val``/``test`` when the file lies
    under a top-level folder of that name, ``validation`` counting as ``val``; else
    ``None``), ``bytes`` and ``modified`` (POSIX seconds, ``None`` when the file system
    does not tell). Pixels are never decoded here.

    Extensions are matched case-insensitively (png, jpg, jpeg, bmp, gif, webp, tif, tiff).
    Hidden files and folders (``.ipynb_checkpoints``, ``.DS_Store``, any dot-name,
    ``__MACOSX``) are skipped; other files are not listed but counted by extension in
    ``DataFrame.attrs["other_files"]``; ``attrs["root"]`` holds the folder.

    Labels come from one of:

    - ``{from: directory}`` (default): the name of the folder holding the file
      (``cats/001.jpg`` is ``cats``, ``train/cats/001.jpg`` too);
    - ``{from: filename, pattern: <regex>}``: the regex's single group, searched in the
      file name without its extension (``_(\\d[LR])$`` reads ``3R`` from ``a1b2_3R.png``);
    - ``{from: table, filepath: <csv or parquet>, path_column: path, label_column: label}``:
      a table whose path column holds paths relative to ``path`` (or absolute).

    Example in ``conf/base/catalog.yml``:

    .. code-block:: yaml

        raw_images:
          type: imgclf.datasets.ImageDirectoryDataset
          path: data/01_raw/fingers
          labels:
            from: filename
            pattern: "_(\\\\d[LR])$"

        raw_images_on_s3:
          type: imgclf.datasets.ImageDirectoryDataset
          path: s3://my-bucket/pets
          credentials: my_s3_credentials
    """

    def __init__(
        self,
        *,
        path: str,
        labels: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = path
        self._protocol, _ = get_protocol_and_path(path)
        self._storage_options = {**deepcopy(credentials or {}), **deepcopy(fs_args or {})}
        self._root = self._filesystem()._strip_protocol(path).rstrip("/")
        self._labels = _validate_labels(labels or {"from": "directory"})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "labels": self._labels}

    def _exists(self) -> bool:
        return self._filesystem().isdir(self._root)

    def save(self, data: None) -> None:
        raise DatasetError(
            f"{type(self).__name__} is read-only: it lists the images under a folder"
        )

    def load(self) -> pd.DataFrame:
        filesystem = self._filesystem()
        if not filesystem.isdir(self._root):
            raise DatasetError(
                f"Image folder '{self._path}' does not exist. Set `path` of this dataset in "
                "conf/<env>/catalog.yml to the folder that holds your images."
            )
        rows, other_files = [], Counter()
        for file_path, info in sorted(filesystem.find(self._root, detail=True).items()):
            relative = PurePosixPath(file_path).relative_to(PurePosixPath(self._root))
            if _is_hidden(relative):
                continue
            if relative.suffix.lower() not in IMAGE_EXTENSIONS:
                other_files[relative.suffix.lower() or "(none)"] += 1
                continue
            rows.append(
                {
                    "path": self._full_path(file_path),
                    "relative": relative,
                    "source_split": _source_split(relative),
                    "bytes": int(info.get("size") or 0),
                    "modified": _modified(info),
                }
            )
        if not rows:
            raise DatasetError(
                f"No images found under '{self._path}' (looked for "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}; other files seen: "
                f"{dict(other_files) or 'none'}). Point `path` in conf/<env>/catalog.yml at "
                "the folder that holds your images."
            )
        frame = pd.DataFrame(rows)
        frame["label"] = self._label_files(frame["relative"], frame["path"])
        frame = frame[COLUMNS].astype({"label": "object", "source_split": "object"})
        frame.attrs["root"] = self._path
        frame.attrs["other_files"] = dict(sorted(other_files.items()))
        logger.info(
            "Listed %d image files under %s (%d other files skipped)",
            len(frame),
            self._path,
            sum(other_files.values()),
        )
        return frame

    def _filesystem(self) -> fsspec.AbstractFileSystem:
        return fsspec.filesystem(self._protocol, **self._storage_options)

    def _full_path(self, file_path: str) -> str:
        if self._protocol in ("file", "local"):
            return file_path
        return f"{self._protocol}://{file_path}"

    def _label_files(self, relative: pd.Series, paths: pd.Series) -> list[str | None]:
        source = self._labels["from"]
        if source == "directory":
            return [_directory_label(path) for path in relative]
        if source == "filename":
            pattern = self._labels["pattern"]
            return [_filename_label(path, pattern) for path in relative]
        table = self._read_label_table()
        return [table.get(str(rel), table.get(str(path))) for rel, path in zip(relative, paths)]

    def _read_label_table(self) -> dict[str, str]:
        filepath = self._labels["filepath"]
        path_column = self._labels.get("path_column", "path")
        label_column = self._labels.get("label_column", "label")
        protocol, _ = get_protocol_and_path(filepath)
        options = self._storage_options if protocol == self._protocol else {}
        with fsspec.open(filepath, "rb", **options) as file:
            if filepath.lower().endswith((".parquet", ".pq")):
                table = pd.read_parquet(file)
            else:
                table = pd.read_csv(file, dtype=str, keep_default_na=False)
        missing = {path_column, label_column} - set(table.columns)
        if missing:
            raise DatasetError(
                f"Label table '{filepath}' has no column(s) {sorted(missing)}; its columns are "
                f"{list(table.columns)}. Set `labels.path_column` and `labels.label_column`."
            )
        paths = table[path_column].astype(str)
        paths = paths.where(
            ~paths.str.startswith(self._root + "/"), paths.str[len(self._root) + 1 :]
        )
        labels = table[label_column].astype(str).str.strip()
        return {
            _normalise_relative(path): label
            for path, label in zip(paths, labels)
            if label not in ("", "nan", "None")
        }


def _validate_labels(labels: dict[str, Any]) -> dict[str, Any]:
    labels = dict(labels)
    source = labels.get("from")
    if source not in LABEL_SOURCES:
        raise DatasetError(f"`labels.from` is {source!r}; use one of {', '.join(LABEL_SOURCES)}.")
    if source == "filename":
        pattern = labels.get("pattern")
        if not pattern:
            raise DatasetError(
                "`labels: {from: filename}` needs `pattern`, a regex with one group."
            )
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            raise DatasetError(
                f"`labels.pattern` {pattern!r} is not a valid regex: {error}"
            ) from error
        if compiled.groups != 1:
            raise DatasetError(
                f"`labels.pattern` {pattern!r} has {compiled.groups} groups; it needs exactly one, "
                "around the label, e.g. '_(\\d[LR])$'."
            )
    if source == "table" and not labels.get("filepath"):
        raise DatasetError("`labels: {from: table}` needs `filepath`, a CSV or Parquet file.")
    return labels


def _is_hidden(relative: PurePosixPath) -> bool:
    return any(part.startswith(".") or part in HIDDEN_NAMES for part in relative.parts)


def _source_split(relative: PurePosixPath) -> str | None:
    if len(relative.parts) < 2:
        return None
    return SPLIT_FOLDERS.get(relative.parts[0].lower())


def _directory_label(relative: PurePosixPath) -> str | None:
    folders = relative.parts[:-1]
    if not folders or (len(folders) == 1 and _source_split(relative) is not None):
        return None
    return folders[-1]


def _filename_label(relative: PurePosixPath, pattern: str) -> str | None:
    match = re.search(pattern, relative.stem)
    return match.group(1) if match else None


def _normalise_relative(path: str) -> str:
    return str(PurePosixPath(path.replace("\\", "/")))


def _modified(info: dict[str, Any]) -> float | None:
    for key in ("mtime", "LastModified", "updated", "last_modified", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, (int, float)):
            return float(value)
        try:
            return pd.Timestamp(value).timestamp()
        except (TypeError, ValueError):
            continue
    return None
