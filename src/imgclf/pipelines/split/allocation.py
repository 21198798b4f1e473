"""Group-aware, stratified allocation of duplicate groups to splits.

The split nodes hand this module one class at a time: the sizes of the class's duplicate
groups in a seeded random order and how many images each split should get. Everything
here is pure and deterministic; randomness only enters through ``class_rng``.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "val", "test")
"""The splits in the order used for outputs and reports."""

FILL_ORDER: tuple[str, ...] = ("test", "val", "train")
"""The order in which splits are filled: the small held-out splits first, train last."""


def label_groups(images: pd.DataFrame) -> pd.DataFrame:
    """Summarise the duplicate groups of ``images``, one row per group.

    A group's ``label`` is its members' most common label, ties broken alphabetically; the
    group is stratified under that label. Columns: ``duplicate_group``, ``label``,
    ``size`` (members), ``n_labels`` (distinct member labels; > 1 means the copies disagree)
    and ``first_path`` (the group's smallest path, a stable sort key). Rows are sorted by
    ``first_path``.
    """
    if images.empty:
        return pd.DataFrame(
            {
                "duplicate_group": pd.Series([], dtype="int64"),
                "label": pd.Series([], dtype=object),
                "size": pd.Series([], dtype="int64"),
                "n_labels": pd.Series([], dtype="int64"),
                "first_path": pd.Series([], dtype=object),
            }
        )
    per_label = (
        images.groupby(["duplicate_group", "label"], sort=True)
        .size()
        .rename("members")
        .reset_index()
        .sort_values(["duplicate_group", "members", "label"], ascending=[True, False, True])
    )
    majority = per_label.drop_duplicates("duplicate_group").set_index("duplicate_group")["label"]
    by_group = images.groupby("duplicate_group", sort=True)
    groups = pd.DataFrame(
        {
            "label": majority,
            "size": by_group.size(),
            "n_labels": per_label.groupby("duplicate_group").size(),
            "first_path": by_group["path"].min(),
        }
    )
    groups.index.name = "duplicate_group"
    groups = groups.reset_index().sort_values("first_path", kind="stable")
    return groups.reset_index(drop=True).astype({"size": "int64", "n_labels": "int64"})


def class_rng(seed: int, class_name: str) -> np.random.Generator:
    """A random generator for one class, derived from the run's seed and the class name.

    Each class gets its own stream, so adding or removing a class leaves the other
    classes' shuffles unchanged.
    """
    return np.random.default_rng([seed, zlib.crc32(class_name.encode("utf-8"))])


def largest_remainder_targets(total: int, ratios: Mapping[str, float]) -> dict[str, int]:
    """Integer targets that sum to ``total`` and follow ``ratios`` (largest-remainder method).

    Remainder ties go to the split that comes first in ``ratios``.
    """
    names = list(ratios)
    exact = np.array([ratios[name] * total for name in names], dtype=float)
    floors = np.floor(exact + 1e-9).astype(int)
    remainders = exact - floors
    missing = total - int(floors.sum())
    # stable sort of the remainders, largest first; ties keep the order of ``ratios``
    ranked = sorted(range(len(names)), key=lambda i: (-round(remainders[i], 9), i))
    for i in ranked[: max(missing, 0)]:
        floors[i] += 1
    return {name: int(value) for name, value in zip(names, floors, strict=True)}


def fill_towards_targets(
    sizes: Sequence[int], targets: Mapping[str, int], order: Sequence[str]
) -> list[str]:
    """Assign every group to a split, filling the splits in ``order`` towards ``targets``.

    Groups are taken in the given (already shuffled) order. Each goes to the first split in
    ``order`` that it brings closer to its target; a group that brings no split closer goes
    to the split with the largest shortfall (the smallest excess). With single-image groups
    the targets are met exactly; otherwise each split ends within about half of a group's
    size of its target.
    """
    counts = dict.fromkeys(order, 0)
    chosen: list[str] = []
    for size in sizes:
        split = next(
            (name for name in order if 2 * (targets[name] - counts[name]) > size),
            None,
        )
        if split is None:
            split = max(order, key=lambda name: (targets[name] - counts[name], -order.index(name)))
        counts[split] += size
        chosen.append(split)
    return chosen


def ensure_each_split_has_a_group(
    sizes: Sequence[int],
    chosen: list[str],
    wanted: Sequence[str],
    targets: Mapping[str, int],
) -> list[str]:
    """Move single groups so that every split in ``wanted`` gets at least one group.

    ``chosen`` is the split of each group (as from ``fill_towards_targets``). For each empty
    wanted split, the smallest group (the last one of that size in the shuffled order) is
    moved from the split that has at least two groups and the largest excess over its
    target. Returns the updated list; leaves it as it is when there are fewer groups than
    wanted splits.
    """
    chosen = list(chosen)
    if len(sizes) < len(wanted):
        return chosen
    for empty in wanted:
        if empty in chosen:
            continue
        members: dict[str, list[int]] = {}
        for position, split in enumerate(chosen):
            members.setdefault(split, []).append(position)
        donors = [split for split, positions in members.items() if len(positions) >= 2]
        if not donors:
            break
        counts = {split: sum(sizes[i] for i in positions) for split, positions in members.items()}
        donor = max(donors, key=lambda split: (counts[split] - targets.get(split, 0), split))
        smallest = min(members[donor], key=lambda i: (sizes[i], -i))
        chosen[smallest] = empty
    return chosen


def fill_up_to_counts(
    sizes: Sequence[int], targets: Mapping[str, int], order: Sequence[str]
) -> list[str | None]:
    """Pick groups for each split in ``order`` until it holds ``targets`` images.

    For each split, groups (in the given shuffled order) that still fit are taken; if the
    split is then short, the one remaining group that brings it closest to its target is
    added, so a split never exceeds its target by more than that last group's size. Groups
    that no split takes are ``None`` (left out of every split).
    """
    chosen: list[str | None] = [None] * len(sizes)
    for split in order:
        count = 0
        for position, size in enumerate(sizes):
            if chosen[position] is None and count + size <= targets[split]:
                chosen[position] = split
                count += size
        shortfall = targets[split] - count
        if shortfall <= 0:
            continue
        candidates = [
            position
            for position, size in enumerate(sizes)
            if chosen[position] is None and size < 2 * shortfall
        ]
        if candidates:
            best = min(candidates, key=lambda i: (abs(shortfall - sizes[i]), i))
            chosen[best] = split
    return chosen
