"""``ImageDirectoryDataset`` lists the labelled images under a folder, local or any fsspec URL."""

from __future__ import annotations

import logging
import os
import posixpath
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from copy import deepcopy
from datetime import datetime
from pathlib import PurePosixPath
from typing import Any

import fsspec
import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_protocol_and_path

from imgclf.config import block_items
from imgclf.imaging.inspect import UNSUPPORTED_FORMATS

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
# Image formats Pillow cannot decode are listed too, so that ingest quarantines them with a
# reason ("unsupported format") instead of passing them over in silence.
LISTED_EXTENSIONS = IMAGE_EXTENSIONS | frozenset(UNSUPPORTED_FORMATS)
SPLIT_FOLDERS = {"train": "train", "val": "val", "validation": "val", "test": "test"}
HIDDEN_NAMES = frozenset({"__MACOSX", "Thumbs.db", "desktop.ini"})
LABEL_KEYS = {
    "directory": ("from", "depth"),
    "filename": ("from", "pattern"),
    "table": ("from", "filepath", "path_column", "label_column"),
}
DEFAULT_DEPTH = 1
COLUMNS = ["path", "label", "source_split", "bytes", "modified"]
BOX_KEYS = ("filepath", "path_column", "columns", "units")
BOX_UNITS = ("pixels", "fractions")
BOX_COLUMNS = ["box_x_min", "box_y_min", "box_x_max", "box_y_max"]
#: what the listing adds with ``boxes``: the four values as the table gives them, their
#: units, and why a file's box could not be read (None when it could)
BOX_LISTING_COLUMNS = [*BOX_COLUMNS, "box_units", "box_problem"]


class ImageDirectoryDataset(AbstractDataset[None, pd.DataFrame]):
    """Lists every image file under ``path`` (searched recursively) with its label.

    ``load()`` returns a DataFrame sorted by path with the columns ``path`` (what to open:
    a local path or a URL), ``label`` (``None`` when no label can be found: ingest
    quarantines such files), ``source_split`` (``train``/``val``/``test`` when the file lies
    under a top-level folder of that name, ``validation`` counting as ``val``; else
    ``None``), ``bytes`` and ``modified`` (POSIX seconds, ``None`` when the file system
    does not tell). Pixels are never decoded here.

    Extensions are matched case-insensitively (png, jpg, jpeg, bmp, gif, webp, tif, tiff;
    svg, svgz, heic and heif are listed too, for ingest to quarantine as unsupported).
    Hidden files and folders (``.ipynb_checkpoints``, ``.DS_Store``, any dot-name,
    ``__MACOSX``) are skipped; other files are not listed but counted by extension in
    ``DataFrame.attrs["other_files"]``; ``attrs["root"]`` holds the folder. On a local
    disk, links to files are followed, a dangling link is listed (ingest quarantines it
    as unreadable), no folder is visited twice (link loops end) and a folder that cannot
    be read is skipped with a warning and named in ``attrs["unreadable_folders"]``.

    Labels come from one of:

    - ``{from: directory, depth: 1}`` (default): a folder's name. ``depth: 1`` is the first
      folder under the root, or under its ``train/``/``val/``/``test/`` folder when the
      file lies in one (``cats/001.jpg``, ``cats/kittens/002.jpg`` and
      ``train/cats/003.jpg`` are all ``cats``, as Keras labels them); ``depth: 2`` the
      folder below it; ``depth: -1`` the folder that holds the file (``kittens``). A file
      with fewer folders than the depth asks for has no label;
    - ``{from: filename, pattern: <regex>}``: the regex's single group, searched in the
      file name without its extension (``_(\\d[LR])$`` reads ``3R`` from ``a1b2_3R.png``);
    - ``{from: table, filepath: <csv or parquet>, path_column: path, label_column: label}``:
      a table whose path column holds paths relative to ``path`` (or absolute).

    With ``boxes``, each image also gets one bounding box from a table (CSV or Parquet):
    ``{filepath: boxes.csv, path_column: path, columns: [x_min, y_min, x_max, y_max],
    units: pixels}``. ``columns`` names the table's four columns in that order (left, top,
    right, bottom), ``units`` says whether they are ``pixels`` of the image file or
    ``fractions`` of its width and height. The listing then has ``box_x_min`` …
    ``box_y_max`` as the table gives them, ``box_units``, and ``box_problem``: why a file
    has no usable box (no row for it, a row listed twice, a value that is not a number),
    else None. Ingest checks each box against its image and quarantines the bad ones.

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
        boxes: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = path
        self._protocol, _ = get_protocol_and_path(path)
        self._storage_options = {**deepcopy(credentials or {}), **deepcopy(fs_args or {})}
        self._root = self._filesystem()._strip_protocol(path).rstrip("/")
        self._labels = _validate_labels(labels or {"from": "directory"})
        self._boxes = _validate_boxes(boxes) if boxes is not None else None
        self._unreadable_folders: dict[str, str] = {}
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": self._path, "labels": self._labels, "boxes": self._boxes}

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
        for relative, size, modified in sorted(self._files(filesystem)):
            parts = relative.split("/")
            extension = posixpath.splitext(parts[-1])[1].lower()
            if extension not in LISTED_EXTENSIONS:
                other_files[extension or "(none)"] += 1
                continue
            rows.append((relative, parts, _source_split(parts), size, modified))
        if not rows:
            raise DatasetError(
                f"No images found under '{self._path}' (looked for "
                f"{', '.join(sorted(IMAGE_EXTENSIONS))}; other files seen: "
                f"{dict(other_files) or 'none'}). Point `path` in conf/<env>/catalog.yml at "
                "the folder that holds your images."
            )
        relatives, parts, source_splits, sizes, modified = zip(*rows)
        paths = [self._full_path(relative) for relative in relatives]
        frame = pd.DataFrame(
            {
                "path": paths,
                "label": self._label_files(relatives, parts, paths),
                "source_split": source_splits,
                "bytes": sizes,
                "modified": modified,
            },
            columns=COLUMNS,
        ).astype(
            {"label": "object", "source_split": "object", "bytes": "int64", "modified": "float64"}
        )
        if self._boxes is not None:
            frame = pd.concat([frame, self._box_columns(relatives, paths)], axis=1)
        frame.attrs["root"] = self._path
        frame.attrs["other_files"] = dict(sorted(other_files.items()))
        frame.attrs["unreadable_folders"] = dict(sorted(self._unreadable_folders.items()))
        logger.info(
            "Listed %d image files under %s (%d other files skipped)",
            len(frame),
            self._path,
            sum(other_files.values()),
        )
        return frame

    def _filesystem(self) -> fsspec.AbstractFileSystem:
        return fsspec.filesystem(self._protocol, **self._storage_options)

    def _is_local(self) -> bool:
        return self._protocol in ("file", "local")

    def _files(
        self, filesystem: fsspec.AbstractFileSystem
    ) -> Iterator[tuple[str, int, float | None]]:
        """(path relative to the root with ``/``, bytes, modified) of every file under it,
        hidden ones left out."""
        if self._is_local():
            self._unreadable_folders = {}
            yield from _walk_local(self._root, self._unreadable_folders)
            return
        for file_path, info in filesystem.find(self._root, detail=True).items():
            relative = file_path[len(self._root) + 1 :]
            if not any(_is_hidden(part) for part in relative.split("/")):
                yield relative, int(info.get("size") or 0), _modified(info)

    def _full_path(self, relative: str) -> str:
        path = f"{self._root}/{relative}"
        return path if self._is_local() else f"{self._protocol}://{path}"

    def _label_files(
        self, relatives: Sequence[str], parts: Sequence[list[str]], paths: Sequence[str]
    ) -> list[str | None]:
        source = self._labels["from"]
        if source == "directory":
            depth = self._labels.get("depth", DEFAULT_DEPTH)
            return [_directory_label(file_parts, depth) for file_parts in parts]
        if source == "filename":
            pattern = re.compile(self._labels["pattern"])
            return [_filename_label(file_parts[-1], pattern) for file_parts in parts]
        table = self._read_label_table()
        return [table.get(rel, table.get(path)) for rel, path in zip(relatives, paths)]

    def _read_label_table(self) -> dict[str, str]:
        path_column = self._labels.get("path_column", "path")
        label_column = self._labels.get("label_column", "label")
        table = self._read_table(
            self._labels["filepath"],
            [path_column, label_column],
            "Label table",
            "Set `labels.path_column` and `labels.label_column`.",
        )
        labels = table[label_column].astype(str).str.strip()
        return {
            path: label
            for path, label in zip(table[path_column], labels)
            if label not in ("", "nan", "None")
        }

    def _box_columns(self, relatives: Sequence[str], paths: Sequence[str]) -> pd.DataFrame:
        """The listing's box columns, one row per file in ``relatives``."""
        boxes = self._boxes
        filepath, path_column, columns = boxes["filepath"], boxes["path_column"], boxes["columns"]
        table = self._read_table(
            filepath,
            [path_column, *columns],
            "Box table",
            "Set `boxes.path_column` and `boxes.columns` (x_min, y_min, x_max, y_max).",
        )
        counts = table[path_column].value_counts()
        listed = set(counts.index)
        keys = [
            relative if relative in listed else path for relative, path in zip(relatives, paths)
        ]
        times = counts.reindex(keys, fill_value=0).to_numpy()
        rows = table.drop_duplicates(path_column, keep=False).set_index(path_column)
        raw = rows[list(columns)].reindex(keys)
        numbers = raw.apply(pd.to_numeric, errors="coerce")
        not_numbers = numbers.isna().to_numpy() & (times == 1)[:, None]
        name = posixpath.basename(str(filepath))
        problems: list[str | None] = [None] * len(keys)
        for row in np.flatnonzero((times != 1) | not_numbers.any(axis=1)):
            if times[row] == 0:
                problems[row] = f"no row for this image in {name}"
            elif times[row] > 1:
                problems[row] = f"listed {times[row]} times in {name}; give each image one box"
            else:
                bad = [
                    f"{column} {raw.iat[row, number]!r}"
                    for number, column in enumerate(columns)
                    if not_numbers[row, number]
                ]
                problems[row] = f"{', '.join(bad)} in {name} is not a number"
        values = numbers.to_numpy(dtype="float64")
        frame = pd.DataFrame(values, columns=BOX_COLUMNS, dtype="float64")
        frame["box_units"] = boxes["units"]
        frame["box_problem"] = pd.Series(problems, dtype="object")
        return frame

    def _read_table(
        self, filepath: str, columns: Sequence[str], what: str, fix: str
    ) -> pd.DataFrame:
        """A CSV or Parquet table with ``columns`` as strings, its path column (the first)
        made relative to the root where it is under it."""
        protocol, _ = get_protocol_and_path(filepath)
        options = self._storage_options if protocol == self._protocol else {}
        try:
            with fsspec.open(filepath, "rb", **options) as file:
                if filepath.lower().endswith((".parquet", ".pq")):
                    table = pd.read_parquet(file).astype(str)
                else:
                    table = pd.read_csv(file, dtype=str, keep_default_na=False)
        except FileNotFoundError:
            raise DatasetError(
                f"{what} '{filepath}' does not exist. Set its `filepath` in "
                "conf/<env>/catalog.yml to the table's path."
            ) from None
        missing = set(columns) - set(table.columns)
        if missing:
            raise DatasetError(
                f"{what} '{filepath}' has no column(s) {sorted(missing)}; its columns are "
                f"{list(table.columns)}. {fix}"
            )
        paths = table[columns[0]].astype(str)
        paths = paths.where(
            ~paths.str.startswith(self._root + "/"), paths.str[len(self._root) + 1 :]
        )
        return table.assign(**{columns[0]: [_normalise_relative(path) for path in paths]})


def _validate_labels(labels: Any) -> dict[str, Any]:
    source = labels.get("from") if isinstance(labels, dict) else None
    if source not in LABEL_KEYS:
        raise DatasetError(
            f"`labels.from` is {source!r}; use one of {', '.join(LABEL_KEYS)}, e.g. "
            "labels: {from: directory}"
        )
    try:
        labels = block_items(labels, LABEL_KEYS[source], f"labels (from: {source})")
    except ValueError as error:
        raise DatasetError(str(error)) from None
    if source == "directory":
        depth = labels.get("depth", DEFAULT_DEPTH)
        if not isinstance(depth, int) or isinstance(depth, bool) or depth == 0:
            raise DatasetError(
                f"`labels.depth` is {depth!r}; use 1 for the first folder under the root, "
                "2 for the one below it, or -1 for the folder that holds each file."
            )
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


def _validate_boxes(boxes: Any) -> dict[str, Any]:
    if not isinstance(boxes, dict):
        raise DatasetError(
            f"`boxes` is {boxes!r}; give a table: boxes: {{filepath: boxes.csv, columns: "
            "[x_min, y_min, x_max, y_max], units: pixels}"
        )
    try:
        boxes = block_items(boxes, BOX_KEYS, "boxes")
    except ValueError as error:
        raise DatasetError(str(error)) from None
    if not boxes.get("filepath"):
        raise DatasetError("`boxes` needs `filepath`, a CSV or Parquet file of one box per image.")
    columns = boxes.get("columns", ["x_min", "y_min", "x_max", "y_max"])
    if (
        isinstance(columns, str)
        or not isinstance(columns, Sequence)
        or len(columns) != 4
        or not all(isinstance(column, str) for column in columns)
    ):
        raise DatasetError(
            f"`boxes.columns` is {columns!r}; name the table's four columns in the order "
            "left, top, right, bottom, e.g. [x_min, y_min, x_max, y_max]"
        )
    units = boxes.get("units", "pixels")
    if units not in BOX_UNITS:
        raise DatasetError(
            f"`boxes.units` is {units!r}; use pixels (of the image file) or fractions (of its "
            "width and height)"
        )
    return {
        "filepath": str(boxes["filepath"]),
        "path_column": str(boxes.get("path_column", "path")),
        "columns": list(columns),
        "units": units,
    }


def _walk_local(
    root: str, unreadable_folders: dict[str, str]
) -> Iterator[tuple[str, int, float | None]]:
    """Like ``fsspec``'s ``find`` for a local folder, several times faster on large folders;
    hidden folders are not entered. Links are followed, but a folder already visited (by
    device and inode) is not entered again, so link loops end. A file whose ``stat`` fails
    (a dangling link) is yielded with 0 bytes and no modification time, for ingest to
    quarantine; a folder that cannot be listed is recorded in ``unreadable_folders``."""
    visited: set[tuple[int, int]] = set()
    folders = [""]
    while folders:
        folder = folders.pop()
        path = f"{root}/{folder}" if folder else root
        try:
            status = os.stat(path)
            if (status.st_dev, status.st_ino) in visited:
                continue
            visited.add((status.st_dev, status.st_ino))
            with os.scandir(path) as listing:
                entries = list(listing)
        except OSError as error:
            unreadable_folders[folder or "."] = error.strerror or str(error)
            logger.warning("Skipping the folder %s: %s", path, error)
            continue
        for entry in entries:
            if _is_hidden(entry.name):
                continue
            relative = f"{folder}/{entry.name}" if folder else entry.name
            try:
                if entry.is_dir():
                    folders.append(relative)
                    continue
                status = entry.stat()
            except OSError:  # a dangling link, or a link loop of files
                yield relative, 0, None
                continue
            yield relative, status.st_size, status.st_mtime


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name in HIDDEN_NAMES


def _source_split(parts: list[str]) -> str | None:
    if len(parts) < 2:
        return None
    return SPLIT_FOLDERS.get(parts[0].lower())


def _directory_label(parts: list[str], depth: int) -> str | None:
    folders = parts[1:-1] if _source_split(parts) is not None else parts[:-1]
    if len(folders) < abs(depth):
        return None
    return folders[depth - 1] if depth > 0 else folders[depth]


def _filename_label(name: str, pattern: re.Pattern[str]) -> str | None:
    match = pattern.search(posixpath.splitext(name)[0])
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
