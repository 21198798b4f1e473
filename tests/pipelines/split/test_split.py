"""Tests of the split pipeline on synthetic image indexes (no image files needed)."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from imgclf.pipelines.split import create_pipeline
from imgclf.pipelines.split.allocation import (
    ensure_each_split_has_a_group,
    fill_towards_targets,
    fill_up_to_counts,
    largest_remainder_targets,
)
from imgclf.pipelines.split.nodes import (
    assign_splits,
    build_split_indexes,
    build_split_report,
    choose_classes,
    plot_split_counts,
    validate_split_params,
)

SPLITS = ("train", "val", "test")
RATIOS = {"strategy": "ratios", "ratios": {"train": 0.64, "val": 0.16, "test": 0.20}}


# --------------------------------------------------------------------------- helpers


def finish_index(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Add the remaining ingest columns, sort by path and renumber groups 0..G-1."""
    frame = pd.DataFrame(rows).sort_values("path").reset_index(drop=True)
    if "source_split" not in frame:
        frame["source_split"] = None
    first_seen = {group: i for i, group in enumerate(frame["duplicate_group"].unique())}
    frame["duplicate_group"] = frame["duplicate_group"].map(first_seen).astype("int64")
    n = len(frame)
    frame["sha256"] = [f"{i:064x}" for i in range(n)]
    frame["phash"] = [f"{i:016x}" for i in range(n)]
    frame["width"] = 32
    frame["height"] = 32
    frame["mode"] = "RGB"
    frame["bytes"] = 1000 + np.arange(n)
    columns = ["path", "label", "source_split", "sha256", "phash", "width", "height", "mode"]
    return frame[[*columns, "bytes", "duplicate_group"]]


def make_index(
    class_sizes: dict[str, int], *, max_group: int = 1, seed: int = 0, prefix: str = ""
) -> pd.DataFrame:
    """An index with ``class_sizes`` images per class in duplicate groups of 1..max_group."""
    rng = np.random.default_rng(seed)
    rows = []
    group = 0
    for label, size in class_sizes.items():
        i = 0
        while i < size:
            members = min(int(rng.integers(1, max_group + 1)), size - i)
            for _ in range(members):
                path = f"{prefix}{label}/img_{i:05d}.png"
                rows.append({"path": path, "label": label, "duplicate_group": group})
                i += 1
            group += 1
    return finish_index(rows)


def make_source_index(
    layout: dict[str, dict[str, int]], *, leaking: int = 0, leak_size: int = 2
) -> pd.DataFrame:
    """Images in ``split/label/`` folders (``layout[split][label]`` images each).

    ``leaking`` extra groups per label have one copy in test and ``leak_size`` in train.
    """
    rows = []
    group = 0
    for split, sizes in layout.items():
        for label, size in sizes.items():
            for i in range(size):
                rows.append(
                    {
                        "path": f"{split}/{label}/img_{i:05d}.png",
                        "label": label,
                        "source_split": split,
                        "duplicate_group": group,
                    }
                )
                group += 1
    labels = sorted({label for sizes in layout.values() for label in sizes})
    for label in labels:
        for k in range(leaking):
            rows.append(
                {
                    "path": f"test/{label}/leak_{k:03d}.png",
                    "label": label,
                    "source_split": "test",
                    "duplicate_group": group,
                }
            )
            for copy in range(leak_size):
                rows.append(
                    {
                        "path": f"train/{label}/leak_{k:03d}_copy{copy}.png",
                        "label": label,
                        "source_split": "train",
                        "duplicate_group": group,
                    }
                )
            group += 1
    return finish_index(rows)


def run_split(index: pd.DataFrame, split_params: dict[str, Any], seed: int = 42) -> dict:
    """Call the nodes in pipeline order; returns every output by its catalog name."""
    config = validate_split_params(split_params)
    classes, selection = choose_classes(index, config)
    assignment, notes = assign_splits(index, classes, config, seed)
    train, val, test = build_split_indexes(index, assignment)
    report = build_split_report(
        train_index=train,
        val_index=val,
        test_index=test,
        classes=classes,
        class_selection=selection,
        split_notes=notes,
        split_config=config,
        seed=seed,
    )
    return {
        "classes": classes,
        "train_index": train,
        "val_index": val,
        "test_index": test,
        "split_report": report,
    }


def split_of_paths(result: dict) -> dict[str, str]:
    return {path: split for split in SPLITS for path in result[f"{split}_index"]["path"].tolist()}


def assert_groups_whole(index: pd.DataFrame, result: dict) -> None:
    """Every duplicate group that reached the output lies in exactly one split."""
    placed = split_of_paths(result)
    frame = index.assign(split=index["path"].map(placed)).dropna(subset=["split"])
    splits_per_group = frame.groupby("duplicate_group")["split"].nunique()
    assert (splits_per_group == 1).all(), splits_per_group[splits_per_group > 1]


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


# --------------------------------------------------------------------------- ratios


def test_ratios_give_each_class_its_proportions() -> None:
    sizes = {"cat": 250, "dog": 100, "emu": 57}
    index = make_index(sizes)
    result = run_split(index, RATIOS)
    per_class = result["split_report"]["per_class"]
    for label, size in sizes.items():
        for split in SPLITS:
            assert abs(per_class[label][split] - RATIOS["ratios"][split] * size) <= 1
        assert sum(per_class[label].values()) == size
    assert result["split_report"]["totals"]["all"] == len(index)
    for split in SPLITS:
        frame = result[f"{split}_index"]
        assert list(frame.columns) == list(index.columns)
        assert frame["path"].is_monotonic_increasing
        assert isinstance(frame.index, pd.RangeIndex) and frame.index[0] == 0
    assert set(split_of_paths(result)) == set(index["path"])


def test_ratios_with_duplicate_groups_stay_close_to_target() -> None:
    sizes = {"cat": 600, "dog": 400}
    index = make_index(sizes, max_group=4, seed=3)
    result = run_split(index, {**RATIOS, "ratios": {"train": 0.8, "val": 0.1, "test": 0.1}})
    per_class = result["split_report"]["per_class"]
    for label, size in sizes.items():
        assert per_class[label]["train"] / size == pytest.approx(0.8, abs=0.01)
        assert per_class[label]["val"] / size == pytest.approx(0.1, abs=0.01)
        assert per_class[label]["test"] / size == pytest.approx(0.1, abs=0.01)
    assert_groups_whole(index, result)


def test_small_class_gets_an_image_in_every_split() -> None:
    index = make_index({"big": 50, "tiny": 3})
    result = run_split(index, RATIOS)
    assert result["split_report"]["per_class"]["tiny"] == {"train": 1, "val": 1, "test": 1}


def test_class_too_small_for_every_split_is_warned(caplog: pytest.LogCaptureFixture) -> None:
    index = make_index({"big": 50, "tiny": 2})
    with caplog.at_level(logging.WARNING):
        result = run_split(index, RATIOS)
    assert sum(result["split_report"]["per_class"]["tiny"].values()) == 2
    assert any("'tiny'" in message for message in result["split_report"]["warnings"])
    assert "'tiny'" in caplog.text


# --------------------------------------------------------------------------- counts


def test_counts_are_exact_per_class() -> None:
    index = make_index({"a": 320, "b": 400, "c": 300})
    params = {"strategy": "counts", "counts": {"train": 200, "val": 50, "test": 50}}
    result = run_split(index, params)
    for label in ("a", "b", "c"):
        assert result["split_report"]["per_class"][label] == {"train": 200, "val": 50, "test": 50}
    assert result["split_report"]["left_out"] == {"not_needed_by_counts": 120}


def test_counts_with_groups_overshoot_by_at_most_one_group() -> None:
    index = make_index({"a": 400, "b": 350}, max_group=3, seed=5)
    params = {"strategy": "counts", "counts": {"train": 200, "val": 50, "test": 50}}
    result = run_split(index, params)
    for label in ("a", "b"):
        counts = result["split_report"]["per_class"][label]
        for split, wanted in params["counts"].items():
            assert wanted - 2 <= counts[split] <= wanted + 2
            actual = int((result[f"{split}_index"]["label"] == label).sum())
            assert counts[split] == actual
    assert_groups_whole(index, result)


# --------------------------------------------------------------------------- class subset


def test_top_k_keeps_largest_classes_ties_by_name() -> None:
    index = make_index({"a": 10, "b": 30, "c": 20, "d": 20})
    result = run_split(index, {**RATIOS, "classes": {"top_k": 2}})
    assert result["classes"] == ["b", "c"]
    assert set(result["split_report"]["classes_dropped"]) == {"a", "d"}
    for split in SPLITS:
        assert set(result[f"{split}_index"]["label"]) <= {"b", "c"}


def test_min_images_leaves_small_classes_out_with_a_warning(caplog) -> None:
    index = make_index({"a": 10, "b": 30, "c": 20})
    with caplog.at_level(logging.WARNING):
        result = run_split(index, {**RATIOS, "classes": {"min_images": 20}})
    assert result["classes"] == ["b", "c"]
    assert result["split_report"]["classes_dropped"] == {
        "a": "10 images < split.classes.min_images 20"
    }
    assert result["split_report"]["totals"]["all"] == 50
    assert "Class 'a' is left out: 10 images < split.classes.min_images 20" in caplog.text


def test_fewer_than_two_classes_left_stops_the_run() -> None:
    index = make_index({"a": 3, "b": 30})
    with pytest.raises(ValueError, match=r"leaves 1 class\(es\) to train on \('b'\).*'a': 3"):
        run_split(index, {**RATIOS, "classes": {"min_images": 5}})


def test_auto_uses_the_data_sets_own_folders_when_every_image_has_one() -> None:
    layout = {"train": {"a": 30, "b": 30}, "test": {"a": 9, "b": 9}}
    result = run_split(make_source_index(layout), {"strategy": "auto", **_auto_keys()})
    report = result["split_report"]
    assert report["strategy"] == "source"
    assert report["strategy_reason"] == "auto: the data set's own test, train folders"
    assert report["val_from"] == "carved_from_train"
    assert result["test_index"]["path"].str.startswith("test/").all()


@pytest.mark.parametrize(
    ("with_folders", "reason"),
    [
        (False, "auto: no image lies in a train/, val/ or test/ folder"),
        (True, "auto: 40 of 100 images lie outside train/, val/ and test/ folders"),
    ],
)
def test_auto_splits_by_ratios_otherwise(with_folders, reason) -> None:
    index = make_index({"a": 50, "b": 50})
    if with_folders:
        index["source_split"] = ["train" if i % 5 < 3 else None for i in range(100)]
    result = run_split(index, {"strategy": "auto", **_auto_keys()})
    report = result["split_report"]
    assert (report["strategy"], report["strategy_reason"]) == ("ratios", reason)
    assert report["totals"] == {"train": 70, "val": 14, "test": 16, "all": 100}


def _auto_keys() -> dict[str, Any]:
    return {"ratios": {"train": 0.7, "val": 0.15, "test": 0.15}, "val_fraction": 0.2}


def test_include_keeps_listed_classes_and_rejects_unknown_names() -> None:
    index = make_index({"a": 10, "b": 30, "c": 20})
    result = run_split(index, {**RATIOS, "classes": {"include": ["c", "a"]}})
    assert result["classes"] == ["a", "c"]
    assert set(pd.concat([result[f"{s}_index"] for s in SPLITS])["label"]) == {"a", "c"}
    with pytest.raises(ValueError, match=r"split\.classes\.include.*'zebra'"):
        run_split(index, {**RATIOS, "classes": {"include": ["a", "zebra"]}})


# --------------------------------------------------------------------------- source


def test_source_keeps_source_test_and_carves_val_from_train() -> None:
    layout = {"train": {"a": 100, "b": 60}, "test": {"a": 20, "b": 15}}
    index = make_source_index(layout)
    result = run_split(index, {"strategy": "source", "val_fraction": 0.2})
    source = index.set_index("path")["source_split"]
    assert set(result["test_index"]["path"]) == set(source[source == "test"].index)
    train_and_val = set(result["train_index"]["path"]) | set(result["val_index"]["path"])
    assert train_and_val == set(source[source == "train"].index)
    per_class = result["split_report"]["per_class"]
    assert per_class["a"]["val"] == 20 and per_class["b"]["val"] == 12
    assert result["split_report"]["val_from"] == "carved_from_train"


def test_source_with_val_folder_uses_it() -> None:
    layout = {"train": {"a": 30, "b": 3}, "val": {"a": 7, "b": 1}, "test": {"a": 9, "b": 2}}
    result = run_split(make_source_index(layout), {"strategy": "source"})
    assert result["split_report"]["totals"] == {"train": 33, "val": 8, "test": 11, "all": 52}
    assert result["split_report"]["val_from"] == "source"
    assert result["val_index"]["path"].str.startswith("val/").all()


def test_source_carve_out_keeps_groups_whole() -> None:
    index = make_index({"a": 300, "b": 200}, max_group=4, seed=11, prefix="train/")
    test = make_index({"a": 40, "b": 30}, prefix="test/")
    test["duplicate_group"] += index["duplicate_group"].max() + 1
    combined = pd.concat([index, test], ignore_index=True)
    combined["source_split"] = np.where(combined["path"].str.startswith("test/"), "test", "train")
    result = run_split(combined, {"strategy": "source", "val_fraction": 0.25})
    assert_groups_whole(combined, result)
    per_class = result["split_report"]["per_class"]
    assert per_class["a"]["val"] / 300 == pytest.approx(0.25, abs=0.01)


def test_leaking_groups_are_dropped_from_train_by_default() -> None:
    layout = {"train": {"a": 40, "b": 40}, "test": {"a": 10, "b": 10}}
    index = make_source_index(layout, leaking=3, leak_size=2)
    result = run_split(index, {"strategy": "source"})
    leakage = result["split_report"]["leakage"]
    assert leakage["policy"] == "drop"
    assert leakage["leaking_groups"] == 6
    assert leakage["dropped_images"] == 12
    assert all("_copy" in path for path in leakage["dropped_paths"])
    assert leakage["kept_paths"] == []
    train_and_val = pd.concat([result["train_index"], result["val_index"]])
    assert not train_and_val["path"].str.contains("leak_").any()
    assert result["test_index"]["path"].str.contains("leak_").sum() == 6
    assert result["split_report"]["duplicate_groups"]["across_splits"]["train_test"] == 0
    assert result["split_report"]["left_out"]["leakage_dropped"] == 12


def test_leaking_groups_are_kept_and_reported_with_keep() -> None:
    layout = {"train": {"a": 40, "b": 40}, "test": {"a": 10, "b": 10}}
    index = make_source_index(layout, leaking=3, leak_size=2)
    result = run_split(index, {"strategy": "source", "leakage": "keep"})
    leakage = result["split_report"]["leakage"]
    assert leakage["policy"] == "keep"
    assert leakage["leaking_groups"] == 6
    assert leakage["dropped_images"] == 0
    assert len(leakage["kept_paths"]) == 12
    assert result["split_report"]["totals"]["all"] == len(index)
    across = result["split_report"]["duplicate_groups"]["across_splits"]
    assert across["train_test"] + across["val_test"] == 6
    # the carved val takes the train copies of a leaking group together
    placed = split_of_paths(result)
    for group in index.loc[index["path"].str.contains("_copy"), "duplicate_group"].unique():
        train_copies = index.loc[
            (index["duplicate_group"] == group) & (index["source_split"] == "train"), "path"
        ]
        assert len({placed[path] for path in train_copies}) == 1


# --------------------------------------------------------------------------- groups


@pytest.mark.parametrize("seed", [0, 1, 2, 7, 123])
@pytest.mark.parametrize(
    "split_params",
    [
        RATIOS,
        {"strategy": "ratios", "ratios": {"train": 0.5, "val": 0.25, "test": 0.25}},
        {"strategy": "counts", "counts": {"train": 30, "val": 10, "test": 10}},
    ],
    ids=["ratios-64-16-20", "ratios-50-25-25", "counts"],
)
def test_duplicate_groups_never_straddle_splits(seed: int, split_params: dict) -> None:
    rng = np.random.default_rng(seed)
    sizes = {f"class_{k}": int(rng.integers(60, 150)) for k in range(4)}
    index = make_index(sizes, max_group=int(rng.integers(2, 7)), seed=seed)
    # some groups with copies get a conflicting label on one member
    group_sizes = index["duplicate_group"].value_counts().sort_index()
    with_copies = group_sizes[group_sizes >= 2].index.to_numpy()
    for group in rng.choice(with_copies, size=5, replace=False):
        member = index.index[index["duplicate_group"] == group][0]
        other = "class_0" if index.loc[member, "label"] != "class_0" else "class_1"
        index.loc[member, "label"] = other
    result = run_split(index, split_params, seed=seed)
    assert_groups_whole(index, result)
    summary = result["split_report"]["duplicate_groups"]
    assert summary["kept_together"] == summary["with_copies"]
    assert set(summary["across_splits"].values()) == {0}


def test_conflicting_labels_follow_the_majority() -> None:
    rows = [
        {"path": "a/1.png", "label": "a", "duplicate_group": 0},
        {"path": "a/2.png", "label": "a", "duplicate_group": 0},
        {"path": "b/1.png", "label": "b", "duplicate_group": 0},
        {"path": "b/2.png", "label": "b", "duplicate_group": 1},
        {"path": "c/1.png", "label": "c", "duplicate_group": 1},
    ]
    rows += [{"path": f"a/x{i}.png", "label": "a", "duplicate_group": 2 + i} for i in range(10)]
    rows += [{"path": f"b/x{i}.png", "label": "b", "duplicate_group": 20 + i} for i in range(10)]
    rows += [{"path": f"c/x{i}.png", "label": "c", "duplicate_group": 40 + i} for i in range(10)]
    index = finish_index(rows)
    result = run_split(index, RATIOS)
    assert result["split_report"]["conflicting_label_groups"] == 2
    assert_groups_whole(index, result)


# --------------------------------------------------------------------------- determinism


@pytest.mark.parametrize(
    "split_params",
    [RATIOS, {"strategy": "counts", "counts": {"train": 40, "val": 10, "test": 10}}],
    ids=["ratios", "counts"],
)
def test_same_inputs_give_identical_outputs(split_params: dict) -> None:
    index = make_index({"a": 120, "b": 90, "c": 75}, max_group=3, seed=2)
    first = run_split(index, split_params, seed=42)
    second = run_split(index.copy(), split_params, seed=42)
    for split in SPLITS:
        name = f"{split}_index"
        pd.testing.assert_frame_equal(first[name], second[name])
        assert parquet_bytes(first[name]) == parquet_bytes(second[name])
    assert json.dumps(first["split_report"]) == json.dumps(second["split_report"])
    other = run_split(index, split_params, seed=43)
    assert set(other["test_index"]["path"]) != set(first["test_index"]["path"])


def test_index_read_back_from_parquet_splits_the_same(tmp_path) -> None:
    index = make_source_index({"train": {"a": 30, "b": 20}, "test": {"a": 8, "b": 6}}, leaking=2)
    index.to_parquet(tmp_path / "image_index.parquet", index=False)
    reloaded = pd.read_parquet(tmp_path / "image_index.parquet")
    params = {"strategy": "source"}
    for split in SPLITS:
        name = f"{split}_index"
        expected = run_split(index, params)[name]
        actual = run_split(reloaded, params)[name]
        assert actual["path"].tolist() == expected["path"].tolist()


def test_report_is_json_and_plot_is_a_figure() -> None:
    result = run_split(make_index({"a": 40, "b": 30}), RATIOS, seed=np.int64(7))
    report = result["split_report"]
    assert json.loads(json.dumps(report)) == report
    assert report["seed"] == 7 and report["params"]["ratios"]["train"] == 0.64
    figure = plot_split_counts(report)
    try:
        assert isinstance(figure, Figure)
        assert "ratios" in figure.axes[0].get_title()
    finally:
        plt.close(figure)


# --------------------------------------------------------------------------- errors


def test_unknown_strategy_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"split\.strategy.*'ratios', 'counts', 'source'"):
        validate_split_params({"strategy": "random"})


def test_unknown_key_is_rejected() -> None:
    with pytest.raises(ValueError, match=r"unknown key\(s\) in split: ratio; valid keys"):
        validate_split_params({"strategy": "ratios", "ratio": {"train": 1, "val": 0, "test": 0}})


@pytest.mark.parametrize(
    ("ratios", "message"),
    [
        ({"train": 0.7, "val": 0.2, "test": 0.2}, r"split\.ratios must sum to 1"),
        ({"train": 1.1, "val": -0.1, "test": 0.0}, r"split\.ratios\.val must be a number >= 0"),
        ({"train": 0.8, "test": 0.2}, r"split\.ratios must have exactly the keys"),
    ],
)
def test_bad_ratios_are_rejected(ratios: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_split_params({"strategy": "ratios", "ratios": ratios})


def test_bad_leakage_and_class_subset_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"split\.leakage.*'drop', 'keep'"):
        validate_split_params({"strategy": "source", "leakage": "ignore"})
    with pytest.raises(ValueError, match=r"split\.classes\.top_k"):
        validate_split_params({**RATIOS, "classes": {"top_k": 0}})
    with pytest.raises(ValueError, match=r"split\.val_fraction"):
        validate_split_params({"strategy": "source", "val_fraction": 1.0})


def test_counts_larger_than_a_class_are_rejected() -> None:
    index = make_index({"big": 400, "large": 300, "small": 120})
    params = {"strategy": "counts", "counts": {"train": 200, "val": 50, "test": 50}}
    with pytest.raises(ValueError, match=r"'small' has only 120.*split\.classes\.min_images: 300"):
        run_split(index, params)
    result = run_split(index, {**params, "classes": {"min_images": 300}})
    assert result["classes"] == ["big", "large"]


def test_source_strategy_needs_source_split() -> None:
    index = make_index({"a": 20, "b": 20})
    with pytest.raises(ValueError, match=r"no image has a source_split.*split\.strategy: ratios"):
        run_split(index, {"strategy": "source"})


def test_source_strategy_needs_a_test_set() -> None:
    index = make_source_index({"train": {"a": 20, "b": 20}, "val": {"a": 5, "b": 5}})
    with pytest.raises(ValueError, match=r"test folder.*split\.strategy: ratios"):
        run_split(index, {"strategy": "source"})


def test_bad_seed_is_rejected() -> None:
    with pytest.raises(ValueError, match="seed"):
        run_split(make_index({"a": 20, "b": 20}), RATIOS, seed=-1)


# --------------------------------------------------------------------------- allocation


def test_largest_remainder_targets_sum_to_total() -> None:
    assert largest_remainder_targets(5, {"test": 0.2, "val": 0.16, "train": 0.64}) == {
        "test": 1,
        "val": 1,
        "train": 3,
    }
    for total in range(50):
        targets = largest_remainder_targets(total, {"test": 0.2, "val": 0.16, "train": 0.64})
        assert sum(targets.values()) == total


def test_fill_helpers_on_single_images_meet_targets_exactly() -> None:
    targets = {"test": 2, "val": 3, "train": 5}
    chosen = fill_towards_targets([1] * 10, targets, ["test", "val", "train"])
    assert {split: chosen.count(split) for split in targets} == targets
    picked = fill_up_to_counts([1] * 12, targets, ["test", "val", "train"])
    assert picked.count(None) == 2
    moved = ensure_each_split_has_a_group([1, 1, 1], ["train"] * 3, ["test", "val"], targets)
    assert sorted(moved) == ["test", "train", "val"]


# --------------------------------------------------------------------------- pipeline


class KeptMemoryDataset(MemoryDataset):
    """A MemoryDataset that the runner cannot release, so a test can read outputs after a run."""

    def _release(self) -> None:
        pass


def test_pipeline_runs_on_an_in_memory_catalog() -> None:
    index = make_source_index(
        {"train": {"a": 50, "b": 40, "c": 4}, "test": {"a": 10, "b": 10, "c": 2}}, leaking=1
    )
    split_params = {
        "strategy": "source",
        "val_fraction": 0.2,
        "leakage": "drop",
        "classes": {"top_k": None, "min_images": 10, "include": None},
    }
    outputs = ["classes", "train_index", "val_index", "test_index", "split_report"]
    catalog = DataCatalog(
        {
            "image_index": MemoryDataset(index),
            "params:split": MemoryDataset(split_params),
            "params:seed": MemoryDataset(42),
            **{name: KeptMemoryDataset() for name in outputs},
        }
    )
    run_output = SequentialRunner().run(create_pipeline(), catalog)
    figure = run_output["split_counts_plot"].load()
    try:
        assert isinstance(figure, Figure)
    finally:
        plt.close("all")

    classes = catalog.load("classes")
    report = catalog.load("split_report")
    train, val, test = (catalog.load(f"{split}_index") for split in SPLITS)
    assert classes == ["a", "b"]
    assert report["classes_dropped"] == {"c": "9 images < split.classes.min_images 10"}
    assert report["totals"] == {"train": 72, "val": 18, "test": 22, "all": 112}
    assert report["leakage"]["dropped_images"] == 4
    assert set(test["path"].str.split("/").str[0]) == {"test"}
    assert set(pd.concat([train, val])["path"].str.split("/").str[0]) == {"train"}
    assert set(pd.concat([train, val, test])["label"]) == {"a", "b"}
    assert list(train.columns) == list(index.columns)
    pd.testing.assert_frame_equal(
        train, run_split(index, split_params, seed=42)["train_index"], check_like=False
    )
