import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro_datasets.pandas import ParquetDataset
from PIL import Image, ImageEnhance

from conftest import BROKEN_FILES, TEST_MAX_PIXELS, run_pipeline, write_mixed_folder
from imgclf.datasets import ImageDirectoryDataset, OptionalParquetDataset
from imgclf.datasets.image_directory import BOX_COLUMNS
from imgclf.imaging.decode import read_image
from imgclf.pipelines import ingest, split
from imgclf.pipelines.ingest import nodes

INGEST = {
    "workers": 1,
    "max_pixels": TEST_MAX_PIXELS,
    "near_duplicate_distance": 0.02,
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
    # colour is recorded per image; one colour picture makes `color_mode: auto` rgb
    assert (
        by_name.loc["cats/gray.bmp", "grayscale"]
        and by_name.loc["cats/gray_alpha.png", "grayscale"]
    )
    assert not by_name.loc["cats/plain_0.png", "grayscale"]
    assert profile["colour"]["color_mode_auto"] == "rgb"
    # the nested image is labelled by its top folder, the loop is not followed
    assert by_name.loc["cats/indoor/nested.png", "label"] == "cats"
    assert not any("/up/" in path for path in outputs["image_scan"]["path"])
    assert profile["duplicates"]["exact_copy_sets"] == 1
    # drawn as images the report embeds: a chart and a grid, each far from blank
    for picture in ("class_distribution_plot", "class_sample_grid"):
        image = np.asarray(outputs[picture].convert("L"))
        assert image.shape[0] > 100 and image.shape[1] > 100, picture
        assert image.std() > 10, picture


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
    dangling = str(mixed_image_folder / "dogs" / "gone.png")
    assert decoded == [dangling]  # only the dangling link is looked at again: has it a target?
    pd.testing.assert_frame_equal(second["image_index"], first["image_index"])
    pd.testing.assert_frame_equal(second["quarantine"], first["quarantine"])

    changed = mixed_image_folder / "cats" / "plain_2.png"
    Image.fromarray(np.zeros((30, 30), np.uint8)).save(changed)
    os.utime(changed, (1_700_000_000, 1_700_000_000))
    decoded.clear()
    third = run_ingest(mixed_image_folder, scan_path)
    assert decoded == [str(changed), dangling]
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


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("max_pixel", 100, r"unknown key\(s\) in ingest: max_pixel; valid keys are: workers, max"),
        ("max_pixels", 0, r"ingest.max_pixels must be a whole number >= 1; got 0"),
        ("near_duplicate_distance", "far", r"ingest.near_duplicate_distance must be a number"),
        ("min_images_per_class", 5, r"ingest.min_images_per_class is now split.classes.min_im"),
    ],
)
def test_ingest_block_is_validated(mixed_image_folder, tmp_path, key, value, message):
    with pytest.raises(Exception, match=message):
        run_ingest(mixed_image_folder, tmp_path / "scan.parquet", **{key: value})


def test_near_copies_are_grouped_and_distinct_images_are_not(tmp_path):
    folder = write_mixed_folder(tmp_path / "images")
    original = Image.open(folder / "dogs" / "plain_1.png")
    original.resize((60, 60)).save(folder / "dogs" / "bigger_copy.png")
    ImageEnhance.Brightness(original).enhance(1.1).save(
        folder / "dogs" / "brighter_copy.jpg", quality=90
    )
    # a small picture with sensor noise of +-6 grey levels, and re-encoded at quality 60
    small = original.convert("L").resize((32, 32))
    small.save(folder / "cats" / "small.png")
    noise = np.random.default_rng(0).integers(-6, 7, (32, 32))
    noisy = (np.asarray(small, dtype=np.int16) + noise).clip(0, 255).astype(np.uint8)
    Image.fromarray(noisy).save(folder / "cats" / "small_noisy.png")
    small.save(folder / "cats" / "small_reencoded.jpg", quality=60)

    index = run_ingest(folder, tmp_path / "scan.parquet")["image_index"]
    group_of = dict(zip(names(index["path"], folder), index["duplicate_group"]))
    family = {
        group_of[name]
        for name in (
            "dogs/plain_1.png",
            "dogs/bigger_copy.png",
            "dogs/brighter_copy.jpg",
            "cats/small.png",
            "cats/small_noisy.png",
            "cats/small_reencoded.jpg",
        )
    }
    assert len(family) == 1
    assert (index["duplicate_group"] == family.pop()).sum() == 6  # and no distinct image


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


def test_boxes_are_checked_against_their_images_and_indexed_as_fractions(tmp_path):
    folder, rows = tmp_path / "images", []
    random = np.random.default_rng(0)
    for label in ("cat", "dog"):
        for number in range(4):
            name = f"{label}/{number}.png"
            (folder / label).mkdir(parents=True, exist_ok=True)
            Image.fromarray(random.integers(0, 255, (20, 40, 3), np.uint8)).save(folder / name)
            rows.append((name, 4 * number, 2, 4 * number + 20, 18))  # 40 wide, 20 high
    for name, box in {
        "cat/outside.png": (0, 0, 41, 20),  # one pixel right of the 40 px image
        "cat/inverted.png": (30, 0, 10, 20),
        "dog/unlisted.png": None,
    }.items():
        Image.fromarray(random.integers(0, 255, (20, 40, 3), np.uint8)).save(folder / name)
        if box:
            rows.append((name, *box))
    table = pd.DataFrame(rows, columns=["path", "x_min", "y_min", "x_max", "y_max"])
    table.to_csv(tmp_path / "boxes.csv", index=False)
    scan_path = tmp_path / "scan.parquet"
    outputs = run_pipeline(
        ingest.create_pipeline() + split.create_pipeline(),
        {
            "raw_images": ImageDirectoryDataset(
                path=str(folder), boxes={"filepath": str(tmp_path / "boxes.csv")}
            ),
            "previous_image_scan": OptionalParquetDataset(filepath=str(scan_path)),
            "image_scan": ParquetDataset(filepath=str(scan_path), save_args={"index": False}),
            "params:ingest": INGEST,
            "params:image": IMAGE,
            "params:seed": 7,
            "params:split": SPLIT,
        },
    )
    quarantine = outputs["quarantine"].set_index(
        pd.Index(names(outputs["quarantine"]["path"], folder))
    )
    assert quarantine["reason"].to_dict() == {
        "cat/inverted.png": "bad box",
        "cat/outside.png": "bad box",
        "dog/unlisted.png": "no box",
    }
    assert quarantine.loc["cat/outside.png", "detail"] == (
        "box x_min 0 .. x_max 41 is outside the 40x20 px image (it must lie within 0 .. 40)"
    )
    assert quarantine.loc["cat/inverted.png", "detail"] == "box x_min 30 is not below x_max 10"
    assert quarantine.loc["dog/unlisted.png", "detail"] == "no row for this image in boxes.csv"

    index = outputs["image_index"].set_index(
        pd.Index(names(outputs["image_index"]["path"], folder))
    )
    assert index.loc["dog/2.png", BOX_COLUMNS].tolist() == [0.2, 0.1, 0.7, 0.9]
    assert "box_problem" not in index.columns and "box_units" not in index.columns
    # the split carries every image's box into its index
    for name in ("train", "val", "test"):
        part = outputs[f"{name}_index"]
        expected = index.loc[names(part["path"], folder), BOX_COLUMNS].to_numpy()
        np.testing.assert_allclose(part[BOX_COLUMNS].to_numpy(), expected)
