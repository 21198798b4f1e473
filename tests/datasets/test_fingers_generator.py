"""Tests of the synthetic fingers generator: layout, determinism, caching and arguments."""

from __future__ import annotations

import json
import re
import uuid
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from imgclf.datasets import fingers_generator
from imgclf.datasets.fingers_generator import (
    CLASSES,
    MANIFEST_NAME,
    draw_hand,
    ensure_fingers,
    generate_fingers,
)

NAME_RE = re.compile(
    r"^(?P<uuid>[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12})_(?P<label>[0-5][LR])\.png$"
)
SIZE = 24  # small images keep the suite fast


def snapshot(root: Path) -> dict[str, bytes]:
    """Every PNG under ``root`` as ``{"split/name": bytes}``."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*.png"))}


def test_classes_are_the_twelve_fingers_labels():
    assert CLASSES == ("0L", "1L", "2L", "3L", "4L", "5L", "0R", "1R", "2R", "3R", "4R", "5R")


def test_layout_names_counts_and_images(tmp_path):
    written = generate_fingers(
        tmp_path, per_split={"train": 3, "test": 1, "val": 0}, size=SIZE, workers=1
    )

    assert written == 12 * 3 + 12 * 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["boxes.csv", "test", "train", "val"]
    assert list((tmp_path / "val").iterdir()) == []
    for split, per_class in {"train": 3, "test": 1}.items():
        files = list((tmp_path / split).iterdir())
        assert all(f.is_file() for f in files)
        matches = [NAME_RE.match(f.name) for f in files]
        assert all(matches), [f.name for f, m in zip(files, matches) if not m]
        assert Counter(m["label"] for m in matches) == {label: per_class for label in CLASSES}
        assert all(uuid.UUID(m["uuid"]).version == 4 for m in matches)
    names = [p.name for p in tmp_path.rglob("*.png")]
    assert len({NAME_RE.match(n)["uuid"] for n in names}) == len(names)  # uuids are unique

    for path in tmp_path.rglob("*.png"):
        with Image.open(path) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "L", (SIZE, SIZE))
            pixels = np.asarray(image, dtype=float)
        background = np.median(pixels)
        assert background < 80, f"{path.name}: background should be dark"
        assert (pixels > background + 50).mean() > 0.05, f"{path.name}: no bright hand"
        border = np.concatenate([pixels[0], pixels[-1], pixels[:, 0], pixels[:, -1]])
        assert border.max() > background + 50, f"{path.name}: the arm should reach the border"


def test_every_image_has_the_box_of_its_hand(tmp_path):
    generate_fingers(tmp_path, per_split={"train": 2, "test": 1}, size=48, workers=1)
    boxes = pd.read_csv(tmp_path / "boxes.csv")
    assert list(boxes.columns) == ["path", "x_min", "y_min", "x_max", "y_max"]
    assert sorted(boxes["path"]) == sorted(
        p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.png")
    )
    assert (boxes["x_min"] < boxes["x_max"]).all() and (boxes["y_min"] < boxes["y_max"]).all()
    assert boxes[["x_min", "y_min"]].min().min() >= 0
    assert boxes[["x_max", "y_max"]].max().max() <= 48
    for row in boxes.itertuples():
        pixels = np.asarray(Image.open(tmp_path / row.path), dtype=float)
        inside = pixels[row.y_min : row.y_max, row.x_min : row.x_max]
        bright = pixels > np.median(pixels) + 50
        # the hand is inside its box; what is bright outside it is the forearm, below it
        assert (inside > np.median(pixels) + 50).mean() > 0.3, row.path
        above = bright[: row.y_min].sum() + bright[:, : row.x_min][: row.y_max].sum()
        assert above <= 0.02 * bright.sum(), row.path


def test_same_seed_gives_identical_files_and_other_seed_differs(tmp_path):
    settings = {"per_split": {"train": 2, "test": 1}, "size": SIZE, "workers": 1}
    generate_fingers(tmp_path / "a", seed=7, **settings)
    generate_fingers(tmp_path / "b", seed=7, **settings)
    generate_fingers(tmp_path / "c", seed=8, **settings)

    first, again, other = (snapshot(tmp_path / d) for d in "abc")
    assert len(first) == 36
    assert first == again
    assert set(first).isdisjoint(other)  # different uuids
    assert sorted(first.values()) != sorted(other.values())  # and different pictures


def test_output_does_not_depend_on_workers_or_other_splits(tmp_path):
    per_split = {"train": 2, "test": 1}
    generate_fingers(tmp_path / "one", per_split=per_split, size=SIZE, seed=3, workers=1)
    generate_fingers(tmp_path / "two", per_split=per_split, size=SIZE, seed=3, workers=2)
    generate_fingers(tmp_path / "train_only", per_split={"train": 2}, size=SIZE, seed=3, workers=1)

    one = snapshot(tmp_path / "one")
    assert len(one) == 36
    assert snapshot(tmp_path / "two") == one
    assert snapshot(tmp_path / "train_only") == {
        k: v for k, v in one.items() if k.startswith("train/")
    }


def test_draw_hand_returns_a_grayscale_square_and_varies():
    images = [
        np.asarray(draw_hand(np.random.default_rng(0), fingers, hand, size=40))
        for fingers in range(6)
        for hand in "LR"
    ]
    assert all(a.shape == (40, 40) and a.dtype == np.uint8 for a in images)
    assert draw_hand(np.random.default_rng(0), 2, "R").size == (128, 128)
    assert draw_hand(np.random.default_rng(0), 2, "R").mode == "L"
    assert len({a.tobytes() for a in images}) == len(images)


def test_ensure_generates_once_then_skips(tmp_path, monkeypatch):
    settings = {"per_split": {"train": 1, "test": 1}, "size": SIZE, "seed": 1, "workers": 1}
    assert ensure_fingers(tmp_path, **settings) is True
    manifest = json.loads((tmp_path / MANIFEST_NAME).read_text())
    assert manifest["per_split"] == {"train": 1, "test": 1}
    assert (manifest["size"], manifest["seed"]) == (SIZE, 1)
    before = {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.png")}
    assert len(before) == 24

    def must_not_generate(*args, **kwargs):
        raise AssertionError("ensure_fingers regenerated unchanged settings")

    monkeypatch.setattr(fingers_generator, "generate_fingers", must_not_generate)
    assert ensure_fingers(tmp_path, **{**settings, "workers": 2}) is False  # workers don't count
    assert {p: p.stat().st_mtime_ns for p in tmp_path.rglob("*.png")} == before


def test_ensure_regenerates_when_settings_change_and_removes_stale_files(tmp_path):
    assert ensure_fingers(tmp_path, per_split={"train": 2, "test": 1}, size=SIZE, workers=1)
    old = snapshot(tmp_path)
    (tmp_path / "train" / "notes.txt").write_text("not generated: keep me")

    assert ensure_fingers(tmp_path, per_split={"train": 1}, size=SIZE, seed=5, workers=1)

    new = snapshot(tmp_path)
    assert len(new) == 12 and all(k.startswith("train/") for k in new)
    assert set(new).isdisjoint(old)  # the old test split and the old train images are gone
    assert list((tmp_path / "test").glob("*.png")) == []
    assert (tmp_path / "train" / "notes.txt").read_text() == "not generated: keep me"
    assert json.loads((tmp_path / MANIFEST_NAME).read_text())["seed"] == 5
    assert new == snapshot(_fresh(tmp_path / "fresh", {"train": 1}, seed=5))


def test_ensure_redoes_an_interrupted_or_damaged_generation(tmp_path, monkeypatch):
    settings = {"per_split": {"train": 1}, "size": SIZE, "workers": 1}
    # Interrupted: images but no manifest, plus a leftover from the interrupted run.
    generate_fingers(tmp_path, **settings)
    stray = tmp_path / "train" / f"{uuid.UUID(int=1, version=4)}_3L.png"
    stray.write_bytes(b"partial")
    assert ensure_fingers(tmp_path, **settings) is True
    assert not stray.exists()
    assert len(snapshot(tmp_path)) == 12

    # Damaged: an image deleted after a complete generation.
    next(tmp_path.glob("train/*.png")).unlink()
    assert ensure_fingers(tmp_path, **settings) is True
    assert len(snapshot(tmp_path)) == 12

    # A failing generation leaves no manifest behind, so the next call tries again.
    def fail(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(fingers_generator, "generate_fingers", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        ensure_fingers(tmp_path, **{**settings, "seed": 9})
    assert not (tmp_path / MANIFEST_NAME).exists()


def _fresh(root: Path, per_split: dict[str, int], seed: int) -> Path:
    generate_fingers(root, per_split=per_split, size=SIZE, seed=seed, workers=1)
    return root


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"per_split": {}}, "non-empty mapping"),
        ({"per_split": ["train"]}, "non-empty mapping"),
        ({"per_split": {"train": -1}}, r"per_split\['train'\] must be a non-negative integer"),
        ({"per_split": {"train": 1.5}}, "non-negative integer"),
        ({"per_split": {"train": True}}, "non-negative integer"),
        ({"per_split": {"train": "10"}}, "non-negative integer"),
        ({"per_split": {"../train": 1}}, "plain folder names"),
        ({"per_split": {".cache": 1}}, "plain folder names"),
        ({"per_split": {"": 1}}, "plain folder names"),
        ({"per_split": {"train": 1}, "size": 15}, "at least 16"),
        ({"per_split": {"train": 1}, "size": 64.0}, "at least 16"),
        ({"per_split": {"train": 1}, "seed": -1}, "seed must be a non-negative integer"),
        ({"per_split": {"train": 1}, "workers": 0}, "workers must be None or a positive"),
    ],
)
@pytest.mark.parametrize("function", [generate_fingers, ensure_fingers])
def test_bad_arguments_are_rejected_before_writing(tmp_path, function, kwargs, message):
    with pytest.raises(ValueError, match=message):
        function(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("fingers", "hand", "size", "message"),
    [
        (6, "L", 64, "from 0 to 5"),
        (-1, "R", 64, "from 0 to 5"),
        (2.0, "R", 64, "from 0 to 5"),
        (2, "left", 64, "'L' or 'R'"),
        (2, "L", 8, "at least 16"),
    ],
)
def test_draw_hand_rejects_bad_arguments(fingers, hand, size, message):
    with pytest.raises(ValueError, match=message):
        draw_hand(np.random.default_rng(0), fingers, hand, size)
