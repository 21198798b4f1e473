import os
from pathlib import Path

import fsspec
import pandas as pd
import pytest
from kedro.io import DatasetError

from imgclf.datasets import ImageDirectoryDataset


def _touch(root: Path, *relative_paths: str) -> None:
    for relative in relative_paths:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x" * 3)


def _labels(frame: pd.DataFrame, column: str = "label") -> list[str | None]:
    return [None if pd.isna(value) else value for value in frame[column]]


def _relative(frame: pd.DataFrame, root: Path) -> list[str]:
    return [str(Path(path).relative_to(root)) for path in frame["path"]]


def test_directory_labels_source_splits_and_skipped_files(tmp_path):
    _touch(
        tmp_path,
        "train/cats/a.PNG",
        "train/dogs/b.jpeg",
        "Validation/cats/c.Jpg",
        "test/dogs/d.webp",
        "test/e.png",  # directly in a split folder: no class folder
        "extra/cats/f.tiff",
        ".ipynb_checkpoints/cats/a-checkpoint.png",
        "train/cats/.hidden.png",
        "__MACOSX/train/cats/._a.png",
        "train/cats/.DS_Store",
        "notes.txt",
        "train/cats/labels.csv",
    )
    frame = ImageDirectoryDataset(path=str(tmp_path)).load()

    assert _relative(frame, tmp_path) == [
        "Validation/cats/c.Jpg",
        "extra/cats/f.tiff",
        "test/dogs/d.webp",
        "test/e.png",
        "train/cats/a.PNG",
        "train/dogs/b.jpeg",
    ]
    assert _labels(frame) == ["cats", "extra", "dogs", None, "cats", "dogs"]
    assert _labels(frame, "source_split") == ["val", None, "test", "test", "train", "train"]
    assert frame["bytes"].tolist() == [3] * 6
    assert frame["modified"].notna().all()
    assert frame.attrs["other_files"] == {".csv": 1, ".txt": 1}
    assert frame.attrs["root"] == str(tmp_path)


def test_filename_labels(tmp_path):
    _touch(
        tmp_path, "train/0a1b_3R.png", "train/99ff_5L.png", "test/c0de_0L.png", "test/bad_name.png"
    )
    dataset = ImageDirectoryDataset(
        path=str(tmp_path), labels={"from": "filename", "pattern": r"_(\d[LR])$"}
    )
    frame = dataset.load()
    assert dict(zip(_relative(frame, tmp_path), _labels(frame))) == {
        "test/bad_name.png": None,
        "test/c0de_0L.png": "0L",
        "train/0a1b_3R.png": "3R",
        "train/99ff_5L.png": "5L",
    }


@pytest.mark.parametrize("table_format", ["csv", "parquet"])
def test_table_labels_relative_and_absolute_paths(tmp_path, table_format):
    images = tmp_path / "images"
    _touch(images, "x/1.png", "x/2.png", "y/3.png")
    table = pd.DataFrame(
        {
            "file": ["x/1.png", str(images / "x/2.png"), "missing.png"],
            "species": ["owl", "fox", "cat"],
        }
    )
    table_path = tmp_path / f"labels.{table_format}"
    if table_format == "csv":
        table.to_csv(table_path, index=False)
    else:
        table.to_parquet(table_path)
    dataset = ImageDirectoryDataset(
        path=str(images),
        labels={
            "from": "table",
            "filepath": str(table_path),
            "path_column": "file",
            "label_column": "species",
        },
    )
    frame = dataset.load()
    assert dict(zip(_relative(frame, images), _labels(frame))) == {
        "x/1.png": "owl",
        "x/2.png": "fox",
        "y/3.png": None,
    }


def test_table_with_wrong_columns_names_them(tmp_path):
    _touch(tmp_path, "images/a/1.png")
    pd.DataFrame({"file": ["a/1.png"], "label": ["a"]}).to_csv(tmp_path / "labels.csv", index=False)
    dataset = ImageDirectoryDataset(
        path=str(tmp_path / "images"),
        labels={"from": "table", "filepath": str(tmp_path / "labels.csv")},
    )
    with pytest.raises(DatasetError, match=r"no column\(s\) \['path'\].*path_column"):
        dataset.load()


def test_fsspec_memory_url():
    filesystem = fsspec.filesystem("memory")
    for name in ("pets/cats/1.png", "pets/dogs/2.JPG", "pets/dogs/readme.md"):
        filesystem.pipe(f"/{name}", b"abc")
    frame = ImageDirectoryDataset(path="memory://pets").load()
    assert frame["path"].tolist() == ["memory:///pets/cats/1.png", "memory:///pets/dogs/2.JPG"]
    assert frame["label"].tolist() == ["cats", "dogs"]
    with fsspec.open(frame["path"][0], "rb") as file:
        assert file.read() == b"abc"


def test_no_images_is_a_clear_error(tmp_path):
    _touch(tmp_path, "a/readme.txt")
    with pytest.raises(
        DatasetError, match=r"No images found under .*readme|No images found under .*\.txt"
    ):
        ImageDirectoryDataset(path=str(tmp_path)).load()


def test_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DatasetError, match=r"does not exist.*catalog\.yml"):
        ImageDirectoryDataset(path=str(tmp_path / "nowhere")).load()


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"from": "folders"}, "labels.from"),
        ({"from": "filename"}, "needs `pattern`"),
        ({"from": "filename", "pattern": r"(\d)_(L|R)"}, "exactly one"),
        ({"from": "filename", "pattern": "(unclosed"}, "not a valid regex"),
        ({"from": "table"}, "needs `filepath`"),
    ],
)
def test_bad_label_rules_are_rejected_at_construction(tmp_path, labels, message):
    with pytest.raises(DatasetError, match=message):
        ImageDirectoryDataset(path=str(tmp_path), labels=labels)


def test_is_read_only(tmp_path):
    with pytest.raises(DatasetError, match="read-only"):
        ImageDirectoryDataset(path=str(tmp_path)).save(pd.DataFrame({"path": ["a.png"]}))


@pytest.mark.parametrize(
    ("depth", "expected"),
    [
        (1, ["cats", "cats", "cats", "dogs", None]),
        (2, [None, "kittens", "kittens", None, None]),
        (-1, ["cats", "kittens", "kittens", "dogs", None]),
        (-2, [None, "cats", "cats", None, None]),
    ],
)
def test_directory_labels_at_a_depth(tmp_path, depth, expected):
    _touch(
        tmp_path,
        "cats/a.png",
        "cats/kittens/b.png",
        "train/cats/kittens/c.png",  # depth counts below the split folder
        "train/dogs/d.png",
        "loose.png",
    )
    frame = ImageDirectoryDataset(
        path=str(tmp_path), labels={"from": "directory", "depth": depth}
    ).load()
    labels = dict(zip(_relative(frame, tmp_path), _labels(frame)))
    assert [
        labels[name]
        for name in (
            "cats/a.png",
            "cats/kittens/b.png",
            "train/cats/kittens/c.png",
            "train/dogs/d.png",
            "loose.png",
        )
    ] == expected


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        ({"from": "directory", "deep": 2}, r"unknown key\(s\) in labels \(from: directory\): deep"),
        ({"from": "directory", "depth": 0}, r"`labels.depth` is 0"),
        ({"from": "folder"}, r"`labels.from` is 'folder'; use one of directory, filename, table"),
    ],
)
def test_bad_label_rules_are_errors(tmp_path, labels, message):
    with pytest.raises(DatasetError, match=message):
        ImageDirectoryDataset(path=str(tmp_path), labels=labels)


def test_links_are_followed_loops_end_and_dangling_links_are_listed(tmp_path):
    _touch(tmp_path, "cats/a.png", "dogs/b.png")
    (tmp_path / "cats" / "loop").symlink_to(tmp_path, target_is_directory=True)
    (tmp_path / "dogs" / "self").symlink_to(tmp_path / "dogs", target_is_directory=True)
    (tmp_path / "cats" / "linked.png").symlink_to(tmp_path / "dogs" / "b.png")
    (tmp_path / "dogs" / "gone.png").symlink_to(tmp_path / "nowhere.png")
    (tmp_path / "cats" / "drawing.svg").write_text("<svg/>")
    frame = ImageDirectoryDataset(path=str(tmp_path)).load()
    rows = dict(zip(_relative(frame, tmp_path), frame["bytes"]))
    assert rows == {
        "cats/a.png": 3,
        "cats/drawing.svg": 6,  # listed, for ingest to quarantine as unsupported
        "cats/linked.png": 3,
        "dogs/b.png": 3,
        "dogs/gone.png": 0,
    }
    assert frame.set_index("path")["modified"].isna().tolist() == [False, False, False, False, True]


def test_an_unreadable_folder_is_skipped_and_named(tmp_path, monkeypatch):
    _touch(tmp_path, "cats/a.png", "dogs/b.png")
    real_scandir = os.scandir

    def scandir(path):
        if str(path).endswith("dogs"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr("imgclf.datasets.image_directory.os.scandir", scandir)
    frame = ImageDirectoryDataset(path=str(tmp_path)).load()
    assert _relative(frame, tmp_path) == ["cats/a.png"]
    assert frame.attrs["unreadable_folders"] == {"dogs": "Permission denied"}


def test_boxes_come_from_a_table_and_a_file_without_a_usable_row_says_why(tmp_path):
    images = tmp_path / "images"
    _touch(images, "a/1.png", "a/2.png", "a/3.png", "b/4.png")
    table = pd.DataFrame(
        {
            "file": ["a/1.png", "a/2.png", "a/2.png", str(images / "a/3.png")],
            "left": ["1", "0", "0", "abc"],
            "top": ["2", "0", "0", "1"],
            "right": ["30.5", "5", "5", "9"],
            "bottom": ["40", "5", "5", "9"],
        }
    )
    table.to_csv(tmp_path / "boxes.csv", index=False)
    dataset = ImageDirectoryDataset(
        path=str(images),
        boxes={
            "filepath": str(tmp_path / "boxes.csv"),
            "path_column": "file",
            "columns": ["left", "top", "right", "bottom"],
            "units": "pixels",
        },
    )
    listing = dataset.load()
    frame = listing.set_index(pd.Index(_relative(listing, images)))
    assert frame.loc["a/1.png", ["box_x_min", "box_y_min", "box_x_max", "box_y_max"]].tolist() == [
        1.0,
        2.0,
        30.5,
        40.0,
    ]
    assert frame["box_units"].eq("pixels").all()
    assert _labels(frame, "box_problem") == [
        None,
        "listed 2 times in boxes.csv; give each image one box",
        "left 'abc' in boxes.csv is not a number",
        "no row for this image in boxes.csv",
    ]


@pytest.mark.parametrize(
    ("boxes", "message"),
    [
        ({"columns": ["x_min", "y_min", "x_max", "y_max"]}, "needs `filepath`"),
        ({"filepath": "b.csv", "columns": ["x", "y", "w"]}, "four columns in the order left"),
        ({"filepath": "b.csv", "units": "percent"}, "pixels .* or fractions"),
        ({"filepath": "b.csv", "unit": "pixels"}, "unknown key"),
    ],
)
def test_box_settings_are_checked_when_the_catalog_is_read(tmp_path, boxes, message):
    with pytest.raises(DatasetError, match=message):
        ImageDirectoryDataset(path=str(tmp_path), boxes=boxes)


def test_a_missing_box_table_names_the_file_and_the_setting(tmp_path):
    _touch(tmp_path, "a/1.png")
    dataset = ImageDirectoryDataset(
        path=str(tmp_path), boxes={"filepath": str(tmp_path / "no.csv")}
    )
    with pytest.raises(DatasetError, match=r"Box table '.*no.csv' does not exist.*filepath"):
        dataset.load()
