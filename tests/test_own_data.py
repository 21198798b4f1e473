"""A user's own folder of images, plugged in with catalog lines alone."""

from __future__ import annotations

import hashlib
import json
import os
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from conftest import _pattern, kedro

# relative path -> the reason ingest must quarantine it with
QUARANTINED = {
    "cats/diagram.svg": "unsupported format",
    "dogs/half.jpg": "corrupt or truncated",
    "dogs/moved.png": "unreadable",
}
TINY_CLASS = "birds"


def write_messy_folder(root: Path) -> Path:
    """Classes in nested folders, colour photos, RGBA with transparency, a tiny class,
    sounds, text and metadata, an SVG, a truncated JPEG, a dangling link and a link loop."""
    seeds = iter(range(100, 1000))

    def picture(relative: str, **options) -> None:
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(_pattern(next(seeds))).save(path, **options)

    for number in range(4):
        picture(f"cats/indoor/{number}.jpg", quality=90)
        picture(f"cats/outdoor/sunny/{number}.png")
    (root / "dogs").mkdir()
    for number in range(7):
        pixels = np.dstack([_pattern(next(seeds)), np.full((40, 40), 255, np.uint8)])
        pixels[:10, :, 3] = 0  # a transparent band
        Image.fromarray(pixels, "RGBA").save(root / "dogs" / f"{number}.png")
    for number in range(6):
        picture(f"frogs/{number}.webp", lossless=True)
    for number in range(2):
        picture(f"{TINY_CLASS}/{number}.png")
    (root / "cats" / "diagram.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    jpeg = (root / "cats" / "indoor" / "0.jpg").read_bytes()
    (root / "dogs" / "half.jpg").write_bytes(jpeg[: len(jpeg) // 2])
    (root / "dogs" / "moved.png").symlink_to(root / "dogs" / "elsewhere.png")
    (root / "cats" / "outdoor" / "back").symlink_to(root, target_is_directory=True)
    with wave.open(str(root / "frogs" / "croak.wav"), "wb") as sound:
        sound.setnchannels(1)
        sound.setsampwidth(2)
        sound.setframerate(8000)
        sound.writeframes(b"\0\0" * 800)
    (root / "README.txt").write_text("my photos")
    (root / "cats" / "metadata.json").write_text('{"source": "camera"}')
    return root


def snapshot(root: Path) -> dict[str, str]:
    """Every entry under ``root`` (links not followed): its kind and content digest."""
    entries = {}
    for folder, names, files in os.walk(root):
        for name in names + files:
            path = Path(folder) / name
            if path.is_symlink():
                entries[str(path)] = f"link to {os.readlink(path)}"
            elif path.is_file():
                entries[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                entries[str(path)] = "folder"
    return entries


def image_files(root: Path) -> set[str]:
    """Every file with an image extension under ``root``, each reached once."""
    extensions = {".png", ".jpg", ".webp", ".svg"}
    return {
        str(Path(folder) / name)
        for folder, _, files in os.walk(root)
        for name in files
        if Path(name).suffix in extensions
    }


@pytest.mark.slow
def test_a_messy_folder_goes_through_with_catalog_lines_alone(project, tmp_path):
    """The test environment's catalog with `raw_images` pointed at the folder, nothing else:
    labels from the top folders, the split chosen (no train/test folders: ratios), the
    colour mode chosen (colour photos: rgb), the tiny class left out and reported."""
    source = write_messy_folder(tmp_path / "photos")
    before = snapshot(source)
    catalog_path = project / "conf" / "test" / "catalog.yml"
    catalog = yaml.safe_load(catalog_path.read_text())
    catalog["raw_images"] = {"type": "imgclf.datasets.ImageDirectoryDataset", "path": str(source)}
    catalog_path.write_text(yaml.safe_dump(catalog, sort_keys=False))

    run = kedro(project, "run", "--env", "test", "--pipelines", "ingest,split,scratch_cnn,evaluate")

    data = project / "data" / "test"
    index = pd.read_parquet(data / "03_primary" / "image_index.parquet")
    quarantine = pd.read_csv(data / "03_primary" / "quarantine.csv")
    assert dict(zip(quarantine["path"], quarantine["reason"])) == {
        str(source / path): reason for path, reason in QUARANTINED.items()
    }
    assert set(index["path"]) | set(quarantine["path"]) == image_files(source)
    assert set(index["label"]) == {"cats", "dogs", "frogs", TINY_CLASS}
    assert (index["label"] == "cats").sum() == 8  # both nested folders

    split_report = json.loads((data / "08_reporting" / "split_report.json").read_text())
    assert split_report["strategy"] == "ratios"
    assert split_report["strategy_reason"].startswith("auto: no image lies in a train/")
    assert split_report["classes"] == ["cats", "dogs", "frogs"]
    assert split_report["classes_dropped"] == {TINY_CLASS: "2 images < split.classes.min_images 5"}
    assert f"Class '{TINY_CLASS}' is left out" in run.stdout + run.stderr

    config = json.loads((data / "06_models/scratch_cnn/shallow/config.json").read_text())
    assert config["image"]["color_mode"] == "rgb"
    leaderboard = pd.read_csv(data / "08_reporting" / "leaderboard.csv")
    trained = leaderboard[leaderboard["status"] == "trained"]
    assert {"scratch_cnn.shallow", "scratch_cnn.deep", "scratch_cnn.tuned"} <= set(trained["model"])
    report = (data / "08_reporting" / "report.html").read_text()
    assert f"{TINY_CLASS}: 2 images &lt; split.classes.min_images 5" in report
    assert "ratios (auto: no image lies in a train/" in report

    assert snapshot(source) == before  # nothing written to, moved or deleted

    # an image deleted after ingest stops training before the first epoch, naming it
    deleted = pd.read_parquet(data / "05_model_input" / "train_index.parquet")["path"].iloc[0]
    Path(deleted).unlink()
    rerun = kedro(
        project,
        *("run", "--env", "test", "--pipelines", "scratch_cnn"),
        *("--namespaces", "scratch_cnn.shallow"),
        check=False,
    )
    output = "".join((rerun.stdout + rerun.stderr).split())  # the log wraps long lines
    assert rerun.returncode != 0
    assert f"{deleted}(missing)" in output
    assert "Re-run`kedrorun--pipelinesingest,split`" in output
    assert "Epoch1" not in output and "tensorflow/python" not in output


def test_the_local_environment_keeps_its_outputs_apart(project):
    """Plain `kedro run` (local over base) writes into data/local, the demo into data/."""
    from kedro.framework.session import KedroSession
    from kedro.framework.startup import bootstrap_project

    bootstrap_project(project)
    for env, folder in ((None, "data/local"), ("base", "data")):
        with KedroSession.create(project_path=project, env=env) as session:
            catalog = session.load_context().catalog
            path = Path(str(catalog["image_index"]._filepath))
            assert path == project / folder / "03_primary" / "image_index.parquet"
