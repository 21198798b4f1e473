"""Ingest: decode every listed image once, quarantine what is broken, index the rest.

The nodes read like the steps: scan (decode and hash every file, reusing the previous scan
for files that did not change), keep the valid and labelled images, group copies and near
copies, then describe the data set in a profile and two figures.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sys
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ProcessPoolExecutor
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from imgclf.imaging.decode import read_image
from imgclf.imaging.inspect import inspect_image
from imgclf.imaging.settings import color_mode_of, image_settings
from imgclf.reporting.plots import figure_image, grouped_bar_chart, image_grid

from . import boxes
from .duplicates import duplicate_components, hash_vectors
from .settings import parse_ingest

logger = logging.getLogger(__name__)

INSPECTION_COLUMNS = [
    "path", "reason", "detail", "sha256", "phash", "width", "height", "mode", "format", "frames",
    "grayscale",
]  # fmt: skip
LISTING_COLUMNS = ["path", "label", "source_split", "bytes", "modified"]
RESULT_COLUMNS = [*INSPECTION_COLUMNS, "max_pixels"]
SCAN_COLUMNS = [*LISTING_COLUMNS, *RESULT_COLUMNS[1:]]
INDEX_COLUMNS = [
    "path", "label", "source_split", "sha256", "phash", "width", "height",
    "mode", "format", "frames", "grayscale", "bytes", "modified", "duplicate_group",
]  # fmt: skip
QUARANTINE_COLUMNS = ["path", "label", "source_split", "reason", "detail"]
# Below this many files to decode, starting worker processes costs more than it saves.
MIN_FILES_FOR_WORKERS = 256


def scan_images(
    raw_images: pd.DataFrame, previous_scan: pd.DataFrame, ingest: dict[str, Any]
) -> pd.DataFrame:
    """Decode and hash every listed file: the listing (``path``, ``label``, ``source_split``,
    ``bytes``, ``modified``) joined with what decoding found (``reason`` is empty for a good
    image). A file whose path, size and modification time match the previous scan, made
    with the same ``max_pixels``, keeps its old result without being read again.

    The listing's ``attrs`` (its root folder and the count of non-image files) are kept.
    """
    settings = parse_ingest(ingest)
    max_pixels = settings.max_pixels
    files = raw_images[[*LISTING_COLUMNS, *boxes.listing_columns(raw_images)]]
    reused = _reusable_results(files, previous_scan, max_pixels)
    to_decode = files.loc[~files["path"].isin(reused["path"]), "path"].tolist()
    logger.info(
        "Scanning %d files: %d unchanged since the last scan, %d to decode",
        len(files),
        len(reused),
        len(to_decode),
    )
    started = time.perf_counter()
    decoded = pd.DataFrame(
        _inspect_all(to_decode, max_pixels, settings.workers), columns=INSPECTION_COLUMNS
    ).assign(max_pixels=max_pixels)
    if to_decode:
        seconds = time.perf_counter() - started
        logger.info(
            "Decoded %d files in %.1f s (%.0f files/s)",
            len(to_decode),
            seconds,
            len(to_decode) / seconds,
        )
    results = pd.concat([_result_dtypes(reused), _result_dtypes(decoded)], ignore_index=True)
    scan = files.merge(results, on="path", how="left", validate="one_to_one")
    scan.attrs = dict(raw_images.attrs)
    return scan.sort_values("path", ignore_index=True)


def select_valid_images(image_scan: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the scanned files into valid, labelled images and a quarantine with reasons.
    (Classes too small to learn are left out by ``split``: ``split.classes.min_images``.)
    With boxes, an image whose box is missing or does not fit it is quarantined too, and
    the valid images' boxes become fractions of their width and height
    (:mod:`imgclf.pipelines.ingest.boxes`).

    Raises ``ValueError`` when no image is left.
    """
    files = image_scan.copy()
    unlabelled = files["reason"].isna() & files["label"].isna()
    files.loc[unlabelled, "reason"] = "no label"
    files.loc[unlabelled, "detail"] = (
        "no label could be read for this file with the `labels` rule of raw_images"
    )
    files = boxes.check_boxes(files)
    rejected = files["reason"].notna()
    quarantine = files.loc[rejected, QUARANTINE_COLUMNS].reset_index(drop=True)
    valid = files.loc[~rejected].reset_index(drop=True)
    root = image_scan.attrs.get("root", "the raw_images folder")
    if valid.empty:
        raise ValueError(
            f"All {len(files)} files under '{root}' were quarantined "
            f"({_reason_summary(quarantine)}); e.g. {_examples(quarantine)}. Check the "
            "files, and the `labels` rule of raw_images in conf/<env>/catalog.yml."
        )
    logger.info(
        "%d valid images in %d classes; %d files quarantined (%s)",
        len(valid),
        valid["label"].nunique(),
        len(quarantine),
        _reason_summary(quarantine) or "none",
    )
    return valid, quarantine


def group_duplicates(valid_images: pd.DataFrame, ingest: dict[str, Any]) -> pd.DataFrame:
    """Give copies and near copies one ``duplicate_group`` id: images whose perceptual hashes
    are within ``ingest.near_duplicate_distance`` (1 − cosine similarity), chained
    transitively (:mod:`imgclf.pipelines.ingest.duplicates`). Ids are 0… in order of each
    group's first path."""
    distance = parse_ingest(ingest).near_duplicate_distance
    started = time.perf_counter()
    components = duplicate_components(hash_vectors(valid_images["phash"]), distance)
    _, first_seen = np.unique(components, return_index=True)
    renumber = np.empty_like(first_seen)
    renumber[np.argsort(np.argsort(first_seen))] = np.arange(len(first_seen))
    index = valid_images.assign(duplicate_group=renumber[components].astype(np.int64))
    sizes = index["duplicate_group"].value_counts()
    logger.info(
        "%d duplicate groups of 2 or more images (%d images in them), found among %d in %.1f s",
        int((sizes > 1).sum()),
        int(sizes[sizes > 1].sum()),
        len(valid_images),
        time.perf_counter() - started,
    )
    return index[[*INDEX_COLUMNS, *boxes.index_columns(index)]]


def profile_dataset(
    image_scan: pd.DataFrame, image_index: pd.DataFrame, quarantine: pd.DataFrame
) -> dict[str, Any]:
    """Describe the data set: counts by class and source split, sizes, modes, formats,
    duplicate groups, and groups that straddle source splits (leakage)."""
    groups = image_index.groupby("duplicate_group")
    group_sizes = groups.size()
    duplicate_groups = group_sizes[group_sizes > 1]
    straddling = groups["source_split"].nunique()
    straddling = straddling[straddling > 1]
    sizes = image_index["width"].astype(str) + "x" + image_index["height"].astype(str)
    by_split = image_index.fillna({"source_split": "none"})
    return {
        "root": image_scan.attrs.get("root"),
        "image_files": len(image_scan),
        "other_files": image_scan.attrs.get("other_files", {}),
        "unreadable_folders": image_scan.attrs.get("unreadable_folders", {}),
        "images": len(image_index),
        "quarantined": len(quarantine),
        "quarantine_reasons": _counts(quarantine["reason"]),
        "classes": {
            label: {"images": len(rows), "by_source_split": _counts(rows["source_split"])}
            for label, rows in by_split.groupby("label", sort=True)
        },
        "source_splits": _counts(by_split["source_split"]),
        "sizes": {
            "width": _range(image_index["width"]),
            "height": _range(image_index["height"]),
            "most_common": [[size, int(n)] for size, n in sizes.value_counts().head(10).items()],
        },
        "modes": _counts(image_index["mode"]),
        "colour": {
            "grayscale_images": int(image_index["grayscale"].sum()),
            "colour_images": int((~image_index["grayscale"].astype(bool)).sum()),
            "color_mode_auto": color_mode_of(image_index),
        },
        "formats": _counts(image_index["format"]),
        "duplicates": {
            "exact_copy_sets": int((image_index["sha256"].value_counts() > 1).sum()),
            "groups": len(duplicate_groups),
            "images_in_groups": int(duplicate_groups.sum()),
            "largest_group": int(group_sizes.max()) if len(group_sizes) else 0,
            "examples": _group_examples(image_index, duplicate_groups.index),
        },
        "leakage": {
            "groups_across_source_splits": len(straddling),
            "images": int(group_sizes[straddling.index].sum()),
            "examples": _group_examples(image_index, straddling.index),
        },
    }


def plot_class_distribution(image_index: pd.DataFrame) -> Image.Image:
    """Bar chart of images per class, one bar per source split (at 110 dpi)."""
    counts = pd.crosstab(image_index["label"], image_index["source_split"].fillna("no split"))
    counts = counts[[name for name in ("train", "val", "test", "no split") if name in counts]]
    chart = grouped_bar_chart(counts, title=f"Images per class ({len(image_index):,} images)")
    return figure_image(chart, dpi=110)


def plot_class_samples(
    image_index: pd.DataFrame, ingest: dict[str, Any], image: dict[str, Any], seed: int
) -> Image.Image:
    """A grid of randomly chosen images, one row per class, as the models will see them
    (``image`` settings, ``color_mode: auto`` decided by the index)."""
    per_class = parse_ingest(ingest).samples_per_class
    image = image_settings(image, image_index)
    random = np.random.default_rng(seed)
    rows = []
    for label, group in image_index.groupby("label", sort=True):
        chosen = random.choice(
            group["path"].to_numpy(), size=min(per_class, len(group)), replace=False
        )
        rows.append(
            (
                label,
                [
                    read_image(path, color_mode=image["color_mode"], size=image["size"])
                    for path in chosen
                ],
            )
        )
    grid = image_grid(
        rows, title=f"Sample images per class ({image['color_mode']}, {image['size']} px)"
    )
    return figure_image(grid)


def _reusable_results(
    files: pd.DataFrame, previous_scan: pd.DataFrame, max_pixels: int
) -> pd.DataFrame:
    """The previous scan's decoding results for files that did not change since."""
    if previous_scan.empty or not set(SCAN_COLUMNS) <= set(previous_scan.columns):
        return pd.DataFrame(columns=RESULT_COLUMNS)
    previous = previous_scan[previous_scan["max_pixels"] == max_pixels]
    matched = files.merge(previous, on="path", suffixes=("", "_previous"))
    unchanged = (
        (matched["bytes"] == matched["bytes_previous"])
        & matched["modified"].notna()
        & (matched["modified"] == matched["modified_previous"])
    )
    return matched.loc[unchanged, RESULT_COLUMNS]


def _inspect_all(paths: list[str], max_pixels: int, workers: int | None) -> list[dict[str, Any]]:
    inspect = partial(inspect_image, max_pixels=max_pixels)
    workers = min(workers or os.cpu_count() or 1, max(len(paths) // 64, 1))
    if workers == 1 or len(paths) < MIN_FILES_FOR_WORKERS:
        return list(_progress(map(inspect, paths), len(paths)))
    context = multiprocessing.get_context("fork" if _can_fork() else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        chunks = max(1, min(256, len(paths) // (workers * 8)))
        return list(_progress(pool.map(inspect, paths, chunksize=chunks), len(paths)))


def _can_fork() -> bool:
    """Forking starts workers at once, but is only safe in a single-threaded process without
    TensorFlow (whose threads do not survive a fork); otherwise workers are spawned."""
    return (
        sys.platform == "linux"
        and threading.active_count() == 1
        and "tensorflow" not in sys.modules
    )


def _progress(results: Iterable[dict[str, Any]], total: int) -> Iterable[dict[str, Any]]:
    return tqdm(results, total=total, desc="ingest: decoding images", unit="img", disable=None)


def _result_dtypes(results: pd.DataFrame) -> pd.DataFrame:
    integers = {"max_pixels": "int64", "width": "Int64", "height": "Int64", "frames": "Int64"}
    return results[RESULT_COLUMNS].astype(integers)


def _counts(values: pd.Series) -> dict[str, int]:
    return {str(key): int(n) for key, n in values.value_counts().sort_index().items()}


def _range(values: pd.Series) -> dict[str, float]:
    return {"min": int(values.min()), "median": float(values.median()), "max": int(values.max())}


def _reason_summary(quarantine: pd.DataFrame) -> str:
    return ", ".join(f"{n} {reason}" for reason, n in _counts(quarantine["reason"]).items())


def _examples(quarantine: pd.DataFrame, limit: int = 3) -> str:
    return "; ".join(f"{row.path}: {row.detail}" for row in quarantine.head(limit).itertuples())


def _group_examples(index: pd.DataFrame, groups: Iterable[int], limit: int = 20) -> list[list[str]]:
    chosen = list(groups)[:limit]
    members = index[index["duplicate_group"].isin(chosen)]
    return [list(rows["path"]) for _, rows in members.groupby("duplicate_group", sort=True)]
