import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro_datasets.pandas import ParquetDataset
from PIL import Image, ImageEnhance

from conftest import BROKEN_FILES, TEST_MAX_PIXELS, run_pipeline, write_mixed_folder
from imgclf.datasets import ImageDirectoryDataset, OptionalParquetDataset
from imgclf.imaging.decode import read_image
from imgclf.pipelines import ingest, split
from imgclf.pipelines.ingest import nodes
from imgclf.pipelines.ingest.nodes import duplicate_components, hash_words

INGEST = {
    "workers": 1,
    "max_pixels": TEST_MAX_PIXELS,
    "near_duplicate_distance": 12,
    "min_images_per_class": 3,
    "samples_per_class": 3,
}
SPLIT = {
    "strategy": "ratios",
    "ratios": {"train": 0.5, "val": 0.25, "test": 0.25},
    "classes": {"top_k": None, "min_images": None, "include": None},
    "counts": {"train": 1, "val": 1, "test": 1},
    "val_fraction": 0.2,
    "leakage": "drop",
}
IMAGE = {"size": 24, "color_mode": "rgb"}


def run_ingest(folder: Path, scan_path: Path, pipeline=None, **ingest_overrides):
    return run_pipeline(
        pipeline or ingest.create_pipeline(),
        {
            "raw_images": ImageDirectoryDataset(path=str(folder)),
            "previous_image_scan": OptionalParquetDataset(filepath=str(scan_path)),
            "image_scan": ParquetDataset(filepath=str(scan_path), save_args={"index": False}),
            "params:ingest": {**INGEST, **ingest_overrides},
            "params:image": IMAGE,
            "params:seed": 7,
            "params:split": SPLIT,
        },
    )


def names(paths, root: Path) -> list[str]:
    return [str(Path(path).relative_to(root)) for path in paths]


def relative(paths, root: Path) -> set[str]:
    return set(names(paths, root))


def test_mixed_folder_quarantines_exactly_the_broken_files(mixed_image_folder, tmp_path):
    outputs = run_ingest(
        mixed_image_folder,
        tmp_path / "scan.parquet",
        ingest.create_pipeline() + split.create_pipeline(),
    )

    quarantine = outputs["quarantine"]
    assert (
        dict(zip(names(quarantine["path"], mixed_image_folder), quarantine["reason"]))
        == BROKEN_FILES
    )
    assert quarantine["detail"].str.len().min() > 10  # every reason is explained

    index = outputs["image_index"]
    every_image = relative(
        ImageDirectoryDataset(path=str(mixed_image_folder)).load()["path"], mixed_image_folder
    )
    assert relative(index["path"], mixed_image_folder) == every_image - set(BROKEN_FILES)
    assert {"P", "RGBA", "LA", "I;16", "CMYK", "L", "RGB"} <= set(index["mode"])
    assert {"PNG", "GIF", "JPEG", "BMP", "TIFF", "WEBP"} <= set(index["format"])
    # the odd but valid files come out as ordinary images
    for path in index["path"]:
        pixels = read_image(path, color_mode="rgb", size=24)
        assert pixels.shape == (24, 24, 3) and pixels.dtype == np.uint8

    # the exact copy shares a duplicate group with its original, across class folders
    by_name = index.set_index(pd.Index(names(index["path"], mixed_image_folder)))
    assert (
        by_name.loc["dogs/copy_of_cat.png", "duplicate_group"]
        == by_name.loc["cats/plain_0.png", "duplicate_group"]
    )
    assert index["duplicate_group"].value_counts().max() == 2

    # the split holds only good images, and copies never land in two splits
    split_of = {
        path: name for name in ("train", "val", "test") for path in outputs[f"{name}_index"]["path"]
    }
    assert set(split_of) <= set(index["path"])
    assert not set(split_of) & set(quarantine["path"])
    groups = index.assign(split=index["path"].map(split_of)).dropna(subset=["split"])
    assert groups.groupby("duplicate_group")["split"].nunique().max() == 1

    profile = outputs["dataset_profile"]
    assert profile["image_files"] == len(every_image)
    assert profile["images"] == len(index)
    assert profile["quarantine_reasons"] == {
        reason: list(BROKEN_FILES.values()).count(reason) for reason in set(BROKEN_FILES.values())
    }
    assert profile["other_files"] == {".csv": 1, ".txt": 1}
    assert profile["duplicates"]["groups"] == 1
    assert profile["duplicates"]["exact_copy_sets"] == 1
    assert {
        fig: outputs[fig].axes != [] for fig in ("class_distribution_plot", "class_sample_grid")
    } == {
        "class_distribution_plot": True,
        "class_sample_grid": True,
    }


def test_rerun_decodes_only_changed_files(mixed_image_folder, tmp_path, monkeypatch):
    scan_path = tmp_path / "scan.parquet"
    first = run_ingest(mixed_image_folder, scan_path)

    decoded = []
    original = nodes.inspect_image

    def counting_inspect(path, max_pixels):
        decoded.append(path)
        return original(path, max_pixels)

    monkeypatch.setattr(nodes, "inspect_image", counting_inspect)
    second = run_ingest(mixed_image_folder, scan_path)
    assert decoded == []
    pd.testing.assert_frame_equal(second["image_index"], first["image_index"])
    pd.testing.assert_frame_equal(second["quarantine"], first["quarantine"])

    changed = mixed_image_folder / "cats" / "plain_2.png"
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(changed)
    os.utime(changed, (1_700_000_000, 1_700_000_000))
    third = run_ingest(mixed_image_folder, scan_path)
    assert decoded == [str(changed)]
    row = third["image_index"].set_index("path").loc[str(changed)]
    assert (row["width"], row["mode"]) == (30, "L")

    # a different pixel limit invalidates the scan
    decoded.clear()
    run_ingest(mixed_image_folder, scan_path, max_pixels=TEST_MAX_PIXELS * 2)
    assert len(decoded) == len(first["image_scan"])


def test_every_file_quarantined_is_a_clear_error(tmp_path):
    folder = tmp_path / "broken"
    (folder / "cats").mkdir(parents=True)
    (folder / "cats" / "a.png").write_bytes(b"")
    (folder / "cats" / "b.jpg").write_text("not a picture")
    with pytest.raises(
        Exception,
        match=r"All 2 files under .*broken.* quarantined \(1 empty file, 1 not an image\)",
    ):
        run_ingest(folder, tmp_path / "scan.parquet")


def test_too_small_class_names_the_class_and_the_fix(mixed_image_folder, tmp_path):
    with pytest.raises(Exception, match=r"'cats': 14, 'dogs': 15.*min_images_per_class=14"):
        run_ingest(mixed_image_folder, tmp_path / "scan.parquet", min_images_per_class=20)


def test_near_copies_are_grouped_and_distinct_images_are_not(tmp_path):
    folder = write_mixed_folder(tmp_path / "images")
    original = Image.open(folder / "dogs" / "plain_1.png")
    original.resize((60, 60)).save(folder / "dogs" / "bigger_copy.png")
    ImageEnhance.Brightness(original).enhance(1.1).save(
        folder / "dogs" / "brighter_copy.jpg", quality=90
    )

    index = run_ingest(folder, tmp_path / "scan.parquet")["image_index"]
    group_of = dict(zip(names(index["path"], folder), index["duplicate_group"]))
    family = {
        group_of["dogs/plain_1.png"],
        group_of["dogs/bigger_copy.png"],
        group_of["dogs/brighter_copy.jpg"],
    }
    assert len(family) == 1
    assert (index["duplicate_group"] == family.pop()).sum() == 3


def test_leakage_across_source_splits_is_profiled(tmp_path):
    folder = tmp_path / "images"
    write_mixed_folder(folder / "train")
    # the same cat picture in test as in train
    (folder / "test" / "cats").mkdir(parents=True)
    (folder / "test" / "cats" / "again.png").write_bytes(
        (folder / "train" / "cats" / "plain_3.png").read_bytes()
    )
    profile = run_ingest(folder, tmp_path / "scan.parquet")["dataset_profile"]
    assert profile["leakage"]["groups_across_source_splits"] == 1
    assert len(profile["leakage"]["examples"][0]) == 2


def brute_force_pairs(hashes: np.ndarray, max_distance: int) -> set[tuple[int, int]]:
    return {
        (i, j)
        for i in range(len(hashes))
        for j in range(i + 1, len(hashes))
        if int(np.bitwise_count(hashes[i] ^ hashes[j]).sum()) <= max_distance
    }


@pytest.mark.parametrize("max_distance", [0, 3, 12, 15, 16, 40])
def test_near_pairs_matches_brute_force(max_distance):
    random = np.random.default_rng(max_distance)
    hashes = random.integers(0, 2**63, size=(120, 4), dtype=np.int64).view(np.uint64)
    for row in range(0, 120, 4):  # plant neighbours at growing distances
        flips = random.choice(256, size=row // 4, replace=False)
        hashes[row + 1] = hashes[row]
        for bit in flips:
            hashes[row + 1, bit // 64] ^= np.uint64(1) << np.uint64(bit % 64)
    expected = brute_force_pairs(hashes, max_distance)
    assert expected  # the planted neighbours make the check meaningful
    assert set(map(tuple, nodes.near_pairs(hashes, max_distance).tolist())) == expected


def test_hashes_sharing_most_pieces_are_still_all_found():
    hashes = np.zeros((200, 4), dtype=np.uint64)
    hashes[:, 3] = np.arange(200, dtype=np.uint64) * np.uint64(0x0101)  # only two pieces differ
    expected = brute_force_pairs(hashes, 2)
    assert expected
    assert set(map(tuple, nodes.near_pairs(hashes, 2).tolist())) == expected


def test_duplicate_components_chain_and_identical_hashes():
    hashes = np.zeros((5, 4), dtype=np.uint64)
    hashes[:, 0] = [0b0, 0b1, 0b11, 0b11111111, 0b0]  # 0-1-2 chained, 4 identical to 0
    hashes[3, 1] = np.uint64(2**63)
    components = duplicate_components(hashes, 1)
    assert components[0] == components[1] == components[2] == components[4]
    assert components[3] != components[0]
    assert len(set(duplicate_components(hashes, -1))) == 5


def test_hash_words_reads_hex():
    words = hash_words(pd.Series(["00" * 31 + "ff", "ff" + "00" * 31]))
    assert words.shape == (2, 4)
    assert int(words[0, 3]) == 255 and int(words[1, 0]) == 0xFF << 56


@pytest.mark.parametrize("can_fork", [True, False], ids=["fork", "spawn"])
def test_worker_processes_give_the_same_results_as_one_process(tmp_path, monkeypatch, can_fork):
    random = np.random.default_rng(0)
    paths = []
    for index in range(nodes.MIN_FILES_FOR_WORKERS + 20):
        path = tmp_path / f"{index:04d}.png"
        Image.fromarray(random.integers(0, 256, (12, 12), dtype=np.uint8)).save(path)
        paths.append(str(path))
    (tmp_path / "0007.png").write_bytes(b"broken")

    monkeypatch.setattr(nodes, "_can_fork", lambda: can_fork)
    in_workers = nodes._inspect_all(paths, 10_000, workers=2)
    in_process = nodes._inspect_all(paths, 10_000, workers=1)

    assert in_workers == in_process
    assert [result["path"] for result in in_workers] == paths
    assert in_workers[7]["reason"] == "not an image"
