"""Nodes of the ``split`` pipeline: image index -> train / val / test indexes.

The steps: validate ``params:split``; choose the classes to keep; assign every duplicate
group (never a single copy) to a split with the chosen strategy; cut the index into the
three splits; report and plot what came out. The group-aware allocation itself lives in
``allocation.py``.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from imgclf.config import block_items
from imgclf.reporting.plots import grouped_bar_chart

from .allocation import (
    FILL_ORDER,
    SPLITS,
    class_rng,
    ensure_each_split_has_a_group,
    fill_towards_targets,
    fill_up_to_counts,
    label_groups,
    largest_remainder_targets,
)

logger = logging.getLogger(__name__)

STRATEGIES: tuple[str, ...] = ("auto", "ratios", "counts", "source")
LEAKAGE_POLICIES: tuple[str, ...] = ("drop", "keep")
SPLIT_KEYS: tuple[str, ...] = ("strategy", "ratios", "counts", "classes", "val_fraction", "leakage")
CLASS_KEYS: tuple[str, ...] = ("top_k", "min_images", "include")
DEFAULT_VAL_FRACTION = 0.2
DEFAULT_LEAKAGE = "drop"
RATIO_TOLERANCE = 1e-6
REQUIRED_COLUMNS: tuple[str, ...] = ("path", "label", "duplicate_group")
SUGGEST_RATIOS = "set `split.strategy: ratios` (or auto) to split the images by ratio instead"
MIN_CLASSES = 2


# --------------------------------------------------------------------------- parameters


def validate_split_params(split_params: Mapping[str, Any]) -> dict[str, Any]:
    """Check ``params:split`` and return it normalised, with defaults filled in.

    Only the keys the chosen strategy uses are validated and returned: ``ratios`` for
    ``ratios``, ``counts`` for ``counts``, ``val_fraction`` and ``leakage`` for ``source``,
    all three for ``auto`` (which :func:`assign_splits` turns into ``source`` or
    ``ratios``); ``classes`` for every strategy.

    Raises:
        ValueError: naming the offending key and its valid choices.
    """
    if not isinstance(split_params, Mapping):
        raise ValueError(
            f"params `split` must be a mapping with keys {_choices(SPLIT_KEYS)}; "
            f"got {type(split_params).__name__}"
        )
    block_items(split_params, SPLIT_KEYS, "split")
    strategy = split_params.get("strategy")
    if strategy not in STRATEGIES:
        raise ValueError(f"split.strategy must be one of {_choices(STRATEGIES)}; got {strategy!r}")

    config: dict[str, Any] = {"strategy": strategy}
    if strategy in ("ratios", "auto"):
        config["ratios"] = _validate_ratios(split_params.get("ratios"))
    if strategy == "counts":
        config["counts"] = _validate_counts(split_params.get("counts"))
    if strategy in ("source", "auto"):
        config["val_fraction"] = _validate_val_fraction(
            split_params.get("val_fraction", DEFAULT_VAL_FRACTION)
        )
        leakage = split_params.get("leakage", DEFAULT_LEAKAGE)
        if leakage not in LEAKAGE_POLICIES:
            raise ValueError(
                f"split.leakage must be one of {_choices(LEAKAGE_POLICIES)}; got {leakage!r}"
            )
        config["leakage"] = leakage
    config["classes"] = _validate_class_subset(split_params.get("classes"))
    return config


def _choices(values: Any) -> str:
    return ", ".join(repr(value) for value in values)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _split_mapping(value: Any, key: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(
            f"split.{key} must be a mapping with keys {_choices(SPLITS)}; got {value!r}"
        )
    missing = [name for name in SPLITS if name not in value]
    extra = sorted(set(value) - set(SPLITS))
    if missing or extra:
        raise ValueError(
            f"split.{key} must have exactly the keys {_choices(SPLITS)}; "
            f"missing {_choices(missing) or 'none'}, unknown {_choices(extra) or 'none'}"
        )
    return value


def _validate_ratios(value: Any) -> dict[str, float]:
    ratios = _split_mapping(value, "ratios")
    for name in SPLITS:
        if not _is_number(ratios[name]) or ratios[name] < 0:
            raise ValueError(f"split.ratios.{name} must be a number >= 0; got {ratios[name]!r}")
    total = sum(float(ratios[name]) for name in SPLITS)
    if abs(total - 1.0) > RATIO_TOLERANCE:
        terms = " + ".join(f"{name} {ratios[name]}" for name in SPLITS)
        raise ValueError(
            f"split.ratios must sum to 1 (within {RATIO_TOLERANCE:g}); got {total:g} ({terms})"
        )
    return {name: float(ratios[name]) for name in SPLITS}


def _validate_counts(value: Any) -> dict[str, int]:
    counts = _split_mapping(value, "counts")
    for name in SPLITS:
        if not _is_int(counts[name]) or counts[name] < 0:
            raise ValueError(
                f"split.counts.{name} must be a whole number of images per class >= 0; "
                f"got {counts[name]!r}"
            )
    if sum(int(counts[name]) for name in SPLITS) == 0:
        raise ValueError("split.counts asks for 0 images per class; give at least one split > 0")
    return {name: int(counts[name]) for name in SPLITS}


def _validate_val_fraction(value: Any) -> float:
    if not _is_number(value) or not 0 <= value < 1:
        raise ValueError(f"split.val_fraction must be a number in [0, 1); got {value!r}")
    return float(value)


def _validate_class_subset(value: Any) -> dict[str, Any]:
    if value is None:
        return dict.fromkeys(CLASS_KEYS)
    if not isinstance(value, Mapping):
        raise ValueError(
            f"split.classes must be a mapping with keys {_choices(CLASS_KEYS)}; got {value!r}"
        )
    block_items(value, CLASS_KEYS, "split.classes")
    subset: dict[str, Any] = dict.fromkeys(CLASS_KEYS)
    for key in ("top_k", "min_images"):
        number = value.get(key)
        if number is not None and (not _is_int(number) or number < 1):
            raise ValueError(f"split.classes.{key} must be null or an integer >= 1; got {number!r}")
        subset[key] = None if number is None else int(number)
    include = value.get("include")
    if include is not None:
        if (
            isinstance(include, str)
            or not isinstance(include, list | tuple)
            or not include
            or not all(isinstance(name, str) for name in include)
        ):
            raise ValueError(
                f"split.classes.include must be null or a non-empty list of class names; "
                f"got {include!r}"
            )
        subset["include"] = sorted(set(include))
    return subset


def _validate_seed(seed: Any) -> int:
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"params `seed` must be an integer >= 0; got {seed!r}")
    return int(seed)


def _check_index(image_index: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [column for column in columns if column not in image_index.columns]
    if missing:
        raise ValueError(
            f"image_index lacks the column(s) {_choices(missing)}; "
            f"it has {_choices(image_index.columns)}"
        )
    if image_index["label"].isna().any():
        raise ValueError(
            f"image_index has {int(image_index['label'].isna().sum())} unlabelled rows"
        )
    if "duplicate_group" in columns and image_index["duplicate_group"].isna().any():
        raise ValueError("image_index has rows without a duplicate_group")
    if not image_index["path"].is_unique:
        raise ValueError("image_index has repeated paths; each image must appear once")


# --------------------------------------------------------------------------- classes


def choose_classes(
    image_index: pd.DataFrame, split_config: Mapping[str, Any]
) -> tuple[list[str], dict[str, Any]]:
    """Apply the optional class subset (``split.classes``) and return the kept classes.

    Rules apply in this order: ``include`` (an explicit list), ``min_images`` (at least N
    images in the index), ``top_k`` (the k largest classes, ties broken by name). Images
    are counted by their own label over the whole index. Each class left out is logged as
    a warning.

    Returns:
        The sorted kept class names, and a JSON-able record of the selection: images per
        class and each dropped class with the reason.

    Raises:
        ValueError: when ``include`` names an unknown class or fewer than two classes are
            left.
    """
    _check_index(image_index, ("path", "label"))
    sizes = {str(name): int(n) for name, n in image_index["label"].value_counts().items()}
    available = sorted(sizes)
    rules = split_config["classes"]
    dropped: dict[str, str] = {}

    kept = list(available)
    if rules["include"] is not None:
        unknown = [name for name in rules["include"] if name not in sizes]
        if unknown:
            raise ValueError(
                f"split.classes.include names class(es) not in image_index: {_choices(unknown)}; "
                f"the index has {_choices(available)}"
            )
        for name in kept:
            if name not in rules["include"]:
                dropped[name] = "not in split.classes.include"
        kept = [name for name in kept if name in rules["include"]]
    if rules["min_images"] is not None:
        for name in kept:
            if sizes[name] < rules["min_images"]:
                dropped[name] = (
                    f"{sizes[name]} images < split.classes.min_images {rules['min_images']}"
                )
        kept = [name for name in kept if name not in dropped]
    if rules["top_k"] is not None:
        ranked = sorted(kept, key=lambda name: (-sizes[name], name))
        for name in ranked[rules["top_k"] :]:
            dropped[name] = f"not among the split.classes.top_k {rules['top_k']} largest classes"
        kept = sorted(ranked[: rules["top_k"]])
    if len(kept) < MIN_CLASSES:
        raise ValueError(
            f"split.classes leaves {len(kept)} class(es) to train on ({_choices(kept) or 'none'}); "
            f"a classifier needs at least {MIN_CLASSES}. Images per class: {sizes}; left out: "
            f"{dropped or 'none'}. Add images, or relax split.classes (e.g. a lower min_images)."
        )
    for name, reason in sorted(dropped.items()):
        logger.warning("Class %r is left out: %s", name, reason)
    selection = {
        "images_per_class": {name: sizes[name] for name in available},
        "dropped": {name: dropped[name] for name in sorted(dropped)},
    }
    return kept, selection


# --------------------------------------------------------------------------- assignment


def assign_splits(
    image_index: pd.DataFrame,
    classes: list[str],
    split_config: Mapping[str, Any],
    seed: int,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Assign each image of the kept classes to train, val or test.

    Duplicate groups are the unit of assignment (except where ``source`` folders say
    otherwise), stratified by each group's majority label. Strategy ``auto`` becomes
    ``source`` or ``ratios`` (see :func:`chosen_strategy`).

    Returns:
        A table ``path, split`` sorted by path, holding only the images that go into a
        split, and JSON-able notes for the report (the strategy used and why, left-out
        images, leakage, conflicting labels, warnings).
    """
    seed = _validate_seed(seed)
    strategy, reason = chosen_strategy(image_index, classes, split_config["strategy"])
    columns = (*REQUIRED_COLUMNS, "source_split") if strategy == "source" else REQUIRED_COLUMNS
    if strategy == "source" and "source_split" not in image_index.columns:
        raise ValueError(f"image_index has no source_split column; {SUGGEST_RATIOS}")
    _check_index(image_index, columns)
    images = image_index.loc[image_index["label"].isin(classes), list(columns)]
    images = images.sort_values("path", kind="stable").reset_index(drop=True)

    groups = label_groups(images)
    conflicting = int((groups["n_labels"] > 1).sum())
    if conflicting:
        logger.warning(
            "%d duplicate group(s) hold images with different labels; each is assigned "
            "by its most common label",
            conflicting,
        )
    if strategy == "ratios":
        splits, notes = _assign_by_ratios(images, groups, split_config["ratios"], seed)
    elif strategy == "counts":
        splits, notes = _assign_by_counts(images, groups, split_config["counts"], seed)
    else:
        splits, notes = _assign_by_source(
            images, split_config["val_fraction"], split_config["leakage"], seed
        )
    notes["conflicting_label_groups"] = conflicting
    notes["strategy"], notes["strategy_reason"] = strategy, reason
    for message in notes["warnings"]:
        logger.warning(message)

    assignment = pd.DataFrame({"path": images["path"], "split": splits})
    assignment = assignment.dropna(subset=["split"]).reset_index(drop=True)
    logger.info(
        "Assigned %d images with strategy %r: %s",
        len(assignment),
        strategy,
        {name: int((assignment["split"] == name).sum()) for name in SPLITS},
    )
    return assignment, notes


def chosen_strategy(
    image_index: pd.DataFrame, classes: list[str], strategy: str
) -> tuple[str, str]:
    """The strategy to split with and why: ``auto`` is ``source`` when every image of the
    kept classes lies in a ``train/``, ``val/`` or ``test/`` folder and some in ``test/``,
    otherwise ``ratios``; any other strategy is itself."""
    if strategy != "auto":
        return strategy, "set by split.strategy"
    source = (
        image_index.loc[image_index["label"].isin(classes), "source_split"]
        if "source_split" in image_index.columns
        else pd.Series(dtype=object)
    )
    outside = int(source.isna().sum())
    if source.empty or outside == len(source):
        return "ratios", "auto: no image lies in a train/, val/ or test/ folder"
    if outside:
        return "ratios", (
            f"auto: {outside} of {len(source)} images lie outside train/, val/ and test/ folders"
        )
    folders = sorted(set(source.astype(str).str.lower()))
    if "test" not in folders:
        return "ratios", f"auto: the data set's folders ({', '.join(folders)}) hold no test/"
    return "source", f"auto: the data set's own {', '.join(folders)} folders"


def _shuffled_classes(groups: pd.DataFrame, seed: int) -> Iterator[tuple[str, pd.DataFrame]]:
    """Yield (class name, that class's groups in a seeded random order)."""
    for name, class_groups in groups.groupby("label", sort=True):
        order = class_rng(seed, str(name)).permutation(len(class_groups))
        yield str(name), class_groups.iloc[order]


def _allocate_by_ratios(
    groups: pd.DataFrame, ratios: Mapping[str, float], seed: int, warnings: list[str]
) -> dict[int, str]:
    """Split of each group under ``ratios`` (keys in fill order), class by class."""
    wanted = [name for name, ratio in ratios.items() if ratio > 0]
    order = list(ratios)
    split_of_group: dict[int, str] = {}
    for name, shuffled in _shuffled_classes(groups, seed):
        sizes = shuffled["size"].tolist()
        targets = largest_remainder_targets(sum(sizes), ratios)
        chosen = fill_towards_targets(sizes, targets, order)
        chosen = ensure_each_split_has_a_group(sizes, chosen, wanted, targets)
        if len(sizes) < len(wanted):
            warnings.append(
                f"class {name!r} has only {len(sizes)} duplicate group(s), too few to give "
                f"each of {_choices(wanted)} an image"
            )
        split_of_group.update(zip(shuffled["duplicate_group"].tolist(), chosen, strict=True))
    return split_of_group


def _assign_by_ratios(
    images: pd.DataFrame, groups: pd.DataFrame, ratios: Mapping[str, float], seed: int
) -> tuple[pd.Series, dict[str, Any]]:
    warnings: list[str] = []
    in_fill_order = {name: ratios[name] for name in FILL_ORDER}
    split_of_group = _allocate_by_ratios(groups, in_fill_order, seed, warnings)
    splits = images["duplicate_group"].map(split_of_group)
    return splits, {"left_out": {}, "leakage": None, "val_from": None, "warnings": warnings}


def _assign_by_counts(
    images: pd.DataFrame, groups: pd.DataFrame, counts: Mapping[str, int], seed: int
) -> tuple[pd.Series, dict[str, Any]]:
    wanted = sum(counts.values())
    class_sizes = groups.groupby("label", sort=True)["size"].sum()
    too_small = {str(name): int(size) for name, size in class_sizes.items() if size < wanted}
    if too_small:
        name, size = next(iter(too_small.items()))
        others = f" (and {len(too_small) - 1} more: {_choices(list(too_small)[1:])})"
        raise ValueError(
            f"split.counts asks for {wanted} images per class "
            f"(train {counts['train']} + val {counts['val']} + test {counts['test']}), but "
            f"class {name!r} has only {size}{others if len(too_small) > 1 else ''}; keep only "
            f"large enough classes with `split.classes.min_images: {wanted}` or lower split.counts"
        )
    split_of_group: dict[int, str | None] = {}
    for _, shuffled in _shuffled_classes(groups, seed):
        chosen = fill_up_to_counts(shuffled["size"].tolist(), counts, FILL_ORDER)
        split_of_group.update(zip(shuffled["duplicate_group"].tolist(), chosen, strict=True))
    splits = images["duplicate_group"].map(split_of_group)
    left_out = {"not_needed_by_counts": int(splits.isna().sum())}
    return splits, {"left_out": left_out, "leakage": None, "val_from": None, "warnings": []}


def _normalised_source(images: pd.DataFrame) -> pd.Series:
    """``source_split`` as lower-case strings (missing stays missing); checks the values."""
    source = images["source_split"].astype(object).where(images["source_split"].notna(), None)
    source = source.map(lambda value: None if value is None else str(value).strip().lower())
    if source.isna().all():
        raise ValueError(f"no image has a source_split (train/val/test folders); {SUGGEST_RATIOS}")
    unknown = sorted(set(source.dropna()) - set(SPLITS))
    if unknown:
        raise ValueError(
            f"source_split holds value(s) {_choices(unknown)}; expected {_choices(SPLITS)}"
        )
    if not (source == "test").any():
        raise ValueError(f"no image of the kept classes comes from a test folder; {SUGGEST_RATIOS}")
    return source


def _assign_by_source(
    images: pd.DataFrame, val_fraction: float, leakage: str, seed: int
) -> tuple[pd.Series, dict[str, Any]]:
    source = _normalised_source(images)
    warnings: list[str] = []
    left_out: dict[str, int] = {}
    missing = source.isna()
    if missing.any():
        left_out["no_source_split"] = int(missing.sum())
        warnings.append(f"{int(missing.sum())} image(s) have no source_split and are left out")

    group = images["duplicate_group"]
    train_side = source.isin(["train", "val"])
    leaking_groups = sorted(set(group[source == "test"]) & set(group[train_side]))
    leaking = train_side & group.isin(leaking_groups)
    leakage_notes: dict[str, Any] = {
        "policy": leakage,
        "leaking_groups": len(leaking_groups),
        "train_val_images_in_leaking_groups": int(leaking.sum()),
        "dropped_images": 0,
        "dropped_paths": [],
        "kept_paths": [],
    }
    splits = source.copy()
    if leaking_groups:
        logger.warning(
            "%d duplicate group(s) have copies in both the source test set and train/val "
            "(%d train/val images); leakage policy %r",
            len(leaking_groups),
            int(leaking.sum()),
            leakage,
        )
    if leakage == "drop" and leaking.any():
        splits[leaking] = None
        left_out["leakage_dropped"] = int(leaking.sum())
        leakage_notes["dropped_images"] = int(leaking.sum())
        leakage_notes["dropped_paths"] = images.loc[leaking, "path"].astype(str).tolist()
    elif leaking.any():
        leakage_notes["kept_paths"] = images.loc[leaking, "path"].astype(str).tolist()

    if (source == "val").any():
        val_from = "source"
    else:
        val_from = "carved_from_train"
        pool = splits == "train"
        ratios = {"val": val_fraction, "train": 1.0 - val_fraction}
        pool_groups = label_groups(images.loc[pool])
        split_of_group = _allocate_by_ratios(pool_groups, ratios, seed, warnings)
        splits[pool] = group[pool].map(split_of_group)
    notes = {
        "left_out": left_out,
        "leakage": leakage_notes,
        "val_from": val_from,
        "warnings": warnings,
    }
    return splits, notes


# --------------------------------------------------------------------------- outputs


def build_split_indexes(
    image_index: pd.DataFrame, split_assignment: pd.DataFrame
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Cut ``image_index`` into the train, val and test indexes.

    Each keeps the index's columns, is sorted by path and has a fresh RangeIndex.
    """
    split_of_path = split_assignment.set_index("path")["split"]
    splits = image_index["path"].map(split_of_path)
    train, val, test = (
        image_index.loc[splits == name].sort_values("path", kind="stable").reset_index(drop=True)
        for name in SPLITS
    )
    return train, val, test


def build_split_report(
    *,
    train_index: pd.DataFrame,
    val_index: pd.DataFrame,
    test_index: pd.DataFrame,
    classes: list[str],
    class_selection: Mapping[str, Any],
    split_notes: Mapping[str, Any],
    split_config: Mapping[str, Any],
    seed: int,
) -> dict[str, Any]:
    """A JSON-able account of the split: what went where, and what was left out and why.

    Arguments are keyword-only; the pipeline maps its datasets onto them by name.

    Warns (log and report) about kept classes that a split ended up without, unless the
    parameters asked for no images there.
    """
    frames = dict(zip(SPLITS, (train_index, val_index, test_index), strict=True))
    per_class = {
        name: {split: int((frames[split]["label"] == name).sum()) for split in SPLITS}
        for name in classes
    }
    totals = {split: len(frames[split]) for split in SPLITS}
    assigned = sum(totals.values())
    warnings = list(split_notes["warnings"])
    expected_empty = _splits_expected_empty(split_config, split_notes)
    for name, counts in per_class.items():
        for split in SPLITS:
            if counts[split] == 0 and split not in expected_empty:
                message = f"class {name!r} has no images in {split}"
                logger.warning(message)
                warnings.append(message)
    report = {
        "strategy": split_notes["strategy"],
        "strategy_reason": split_notes["strategy_reason"],
        "seed": int(seed),
        "params": _jsonable(split_config),
        "classes": list(classes),
        "classes_dropped": dict(class_selection["dropped"]),
        "images_in_index": int(sum(class_selection["images_per_class"].values())),
        "totals": {**totals, "all": assigned},
        "fractions": {
            split: round(totals[split] / assigned, 6) if assigned else 0.0 for split in SPLITS
        },
        "per_class": per_class,
        "val_from": split_notes["val_from"],
        "left_out": dict(split_notes["left_out"]),
        "duplicate_groups": _duplicate_group_summary(frames),
        "conflicting_label_groups": int(split_notes["conflicting_label_groups"]),
        "leakage": split_notes["leakage"],
        "warnings": warnings,
    }
    return _jsonable(report)


def _splits_expected_empty(
    split_config: Mapping[str, Any], split_notes: Mapping[str, Any]
) -> set[str]:
    strategy = split_notes["strategy"]
    if strategy == "ratios":
        return {name for name, ratio in split_config["ratios"].items() if ratio == 0}
    if strategy == "counts":
        return {name for name, count in split_config["counts"].items() if count == 0}
    if split_notes["val_from"] == "carved_from_train" and split_config["val_fraction"] == 0:
        return {"val"}
    return set()


def _duplicate_group_summary(frames: Mapping[str, pd.DataFrame]) -> dict[str, Any]:
    """Groups in the output, how many have copies, how many stayed whole, which straddle."""
    placed = pd.concat(
        [frame[["duplicate_group"]].assign(split=name) for name, frame in frames.items()],
        ignore_index=True,
    )
    sizes = placed.groupby("duplicate_group").size()
    in_split = (
        pd.crosstab(placed["duplicate_group"], placed["split"]).reindex(
            columns=list(SPLITS), fill_value=0
        )
        > 0
    )
    with_copies = sizes > 1
    across = {
        f"{first}_{second}": int((in_split[first] & in_split[second]).sum())
        for first, second in (("train", "val"), ("train", "test"), ("val", "test"))
    }
    return {
        "groups": len(sizes),
        "with_copies": int(with_copies.sum()),
        "kept_together": int((in_split[with_copies].sum(axis=1) == 1).sum()),
        "across_splits": across,
    }


def _jsonable(value: Any) -> Any:
    """Plain Python containers and scalars only (no numpy types), for the JSON dataset."""
    if isinstance(value, Mapping):
        return {str(key): _jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(item) for item in value]
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    return value


def plot_split_counts(split_report: Mapping[str, Any]) -> Figure:
    """Bar chart of images per class, one bar per split."""
    counts = pd.DataFrame.from_dict(split_report["per_class"], orient="index")
    counts = counts.reindex(index=split_report["classes"], columns=list(SPLITS), fill_value=0)
    title = f"Images per class and split ({split_report['strategy']}, seed {split_report['seed']})"
    return grouped_bar_chart(counts, title=title)
