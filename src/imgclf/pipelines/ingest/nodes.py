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
from matplotlib.figure import Figure
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from tqdm.auto import tqdm

from imgclf.imaging.decode import read_image
from imgclf.imaging.inspect import inspect_image
from imgclf.reporting.plots import grouped_bar_chart, image_grid

logger = logging.getLogger(__name__)

INSPECTION_COLUMNS = [
    "path", "reason", "detail", "sha256", "phash", "width", "height", "mode", "format", "frames",
]  # fmt: skip
LISTING_COLUMNS = ["path", "label", "source_split", "bytes", "modified"]
RESULT_COLUMNS = [*INSPECTION_COLUMNS, "max_pixels"]
SCAN_COLUMNS = [*LISTING_COLUMNS, *RESULT_COLUMNS[1:]]
INDEX_COLUMNS = [
    "path", "label", "source_split", "sha256", "phash", "width", "height",
    "mode", "format", "frames", "bytes", "duplicate_group",
]  # fmt: skip
QUARANTINE_COLUMNS = ["path", "label", "source_split", "reason", "detail"]
# Below this many files to decode, starting worker processes costs more than it saves.
MIN_FILES_FOR_WORKERS = 256
BLOCK_ROWS = 128


def scan_images(
    raw_images: pd.DataFrame, previous_scan: pd.DataFrame, ingest: dict[str, Any]
) -> pd.DataFrame:
    """Decode and hash every listed file: the listing (``path``, ``label``, ``source_split``,
    ``bytes``, ``modified``) joined with what decoding found (``reason`` is empty for a good
    image). A file whose path, size and modification time match the previous scan, made
    with the same ``max_pixels``, keeps its old result without being read again.

    The listing's ``attrs`` (its root folder and the count of non-image files) are kept.
    """
    max_pixels = int(ingest["max_pixels"])
    files = raw_images[LISTING_COLUMNS]
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
        _inspect_all(to_decode, max_pixels, ingest.get("workers")), columns=INSPECTION_COLUMNS
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


def select_valid_images(
    image_scan: pd.DataFrame, ingest: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split the scanned files into valid, labelled images and a quarantine with reasons.

    Raises ``ValueError`` when no image is left, or when a class has fewer images than
    ``ingest.min_images_per_class``.
    """
    files = image_scan.copy()
    unlabelled = files["reason"].isna() & files["label"].isna()
    files.loc[unlabelled, "reason"] = "no label"
    files.loc[unlabelled, "detail"] = (
        "no label could be read for this file with the `labels` rule of raw_images"
    )
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
    _check_class_sizes(valid["label"], int(ingest["min_images_per_class"]), root)
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
    differ in at most ``ingest.near_duplicate_distance`` of 256 bits, chained transitively.
    Ids are 0… in order of each group's first path."""
    components = duplicate_components(
        hash_words(valid_images["phash"]), int(ingest["near_duplicate_distance"])
    )
    _, first_seen = np.unique(components, return_index=True)
    renumber = np.empty_like(first_seen)
    renumber[np.argsort(np.argsort(first_seen))] = np.arange(len(first_seen))
    index = valid_images.assign(duplicate_group=renumber[components].astype(np.int64))
    sizes = index["duplicate_group"].value_counts()
    logger.info(
        "%d duplicate groups of 2 or more images (%d images in them)",
        int((sizes > 1).sum()),
        int(sizes[sizes > 1].sum()),
    )
    return index[INDEX_COLUMNS]


def hash_words(hex_hashes: pd.Series) -> np.ndarray:
    """Hex hashes of equal length as a (rows, words) array of unsigned 64-bit words."""
    joined = bytes.fromhex("".join(hex_hashes))
    return np.frombuffer(joined, dtype=">u8").astype(np.uint64).reshape(len(hex_hashes), -1)


def duplicate_components(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """A component label per row of ``hashes`` (``hash_words``): rows within
    ``max_distance`` bits of each other, directly or through others, share a label.
    A negative distance groups nothing."""
    if max_distance < 0:
        return np.arange(len(hashes))
    distinct, inverse = np.unique(hashes, axis=0, return_inverse=True)
    pairs = near_pairs(distinct, max_distance)
    graph = coo_matrix(
        (np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])),
        shape=(len(distinct), len(distinct)),
    )
    _, labels = connected_components(graph, directed=False)
    return labels[inverse.ravel()]


def near_pairs(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """All pairs ``(i, j)``, ``i < j``, of rows of ``hashes`` at most ``max_distance`` bits
    apart.

    Pigeonhole shortcut: cut each hash into P 16-bit pieces. Two hashes that differ in at
    most d bits agree exactly on at least P - d pieces, so only pairs that share a piece
    value need comparing, and the P - d - 1 pieces shared most often can be left out.
    Compares every pair instead when d is too large for that, or when that would be cheaper.
    """
    pieces = hashes.view(np.uint16)
    skippable = pieces.shape[1] - max_distance - 1
    if skippable < 0:
        return _pairs_by_blocks(hashes, max_distance)
    sharing = [_pairs_sharing(piece) for piece in pieces.T]
    kept = np.argsort(sharing, kind="stable")[: pieces.shape[1] - skippable]
    if sum(sharing[i] for i in kept) > len(hashes) ** 2 / 8:
        return _pairs_by_blocks(hashes, max_distance)
    candidates = [np.empty((0, 2), dtype=np.int64)]
    for piece in pieces.T[kept]:
        order = np.argsort(piece, kind="stable")
        values = piece[order]
        for offset in range(1, len(values)):
            same = values[offset:] == values[:-offset]
            if not same.any():
                break
            first, second = order[:-offset][same], order[offset:][same]
            candidates.append(np.stack([np.minimum(first, second), np.maximum(first, second)], 1))
    pairs = np.concatenate(candidates)
    distances = np.bitwise_count(hashes[pairs[:, 0]] ^ hashes[pairs[:, 1]]).sum(axis=1)
    return np.unique(pairs[distances <= max_distance], axis=0)  # a pair may share many pieces


def _pairs_sharing(piece: np.ndarray) -> int:
    _, counts = np.unique(piece, return_counts=True)
    return int((counts * (counts - 1) // 2).sum())


def _pairs_by_blocks(hashes: np.ndarray, max_distance: int) -> np.ndarray:
    """Every pair compared, a block of rows against all later rows at a time."""
    found = [np.empty((0, 2), dtype=np.int64)]
    for start in range(0, len(hashes), BLOCK_ROWS):
        block = hashes[start : start + BLOCK_ROWS]
        distances = np.zeros((len(block), len(hashes) - start), dtype=np.uint16)
        for word in range(hashes.shape[1]):
            distances += np.bitwise_count(block[:, None, word] ^ hashes[None, start:, word])
        rows, columns = np.nonzero(distances <= max_distance)
        upper = columns > rows
        found.append(np.stack([rows[upper] + start, columns[upper] + start], axis=1))
    return np.concatenate(found)


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


def plot_class_distribution(image_index: pd.DataFrame) -> Figure:
    """Bar chart of images per class, one bar per source split."""
    counts = pd.crosstab(image_index["label"], image_index["source_split"].fillna("no split"))
    counts = counts[[name for name in ("train", "val", "test", "no split") if name in counts]]
    return grouped_bar_chart(counts, title=f"Images per class ({len(image_index):,} images)")


def plot_class_samples(
    image_index: pd.DataFrame, ingest: dict[str, Any], image: dict[str, Any], seed: int
) -> Figure:
    """A grid of randomly chosen images, one row per class, as the models will see them."""
    per_class = int(ingest["samples_per_class"])
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
    return image_grid(
        rows, title=f"Sample images per class ({image['color_mode']}, {image['size']} px)"
    )


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


def _check_class_sizes(labels: pd.Series, minimum: int, root: str) -> None:
    counts = labels.value_counts()
    small = counts[counts < minimum].sort_index()
    if len(small):
        listing = ", ".join(f"'{label}': {n}" for label, n in small.items())
        raise ValueError(
            f"{len(small)} class(es) under '{root}' have fewer than "
            f"ingest.min_images_per_class = {minimum} valid images ({listing}). Add images, "
            "remove those classes, or lower the limit: "
            f"--params ingest.min_images_per_class={int(small.min())}"
        )


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
