"""Fixtures shared across the suite: a folder of good, odd and broken image files."""

from __future__ import annotations

import ctypes
import gc
import io
import logging
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from kedro.io import AbstractDataset, DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner
from PIL import Image

os.environ.setdefault("KEDRO_DISABLE_TELEMETRY", "true")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Files of `mixed_image_folder` that ingest must reject, with the reason it must give.
BROKEN_FILES = {
    "cats/empty.png": "empty file",
    "cats/truncated.png": "corrupt or truncated",
    "dogs/truncated.jpg": "corrupt or truncated",
    "dogs/notes_renamed.jpg": "not an image",
    "dogs/huge.png": "too many pixels",
    "dogs/gone.png": "unreadable",  # a link to a file that is not there
    "cats/drawing.svg": "unsupported format",
    "orphan.png": "no label",
}
# Larger images than this are rejected by ingest in tests (`huge.png` is 120x120).
TEST_MAX_PIXELS = 10_000


def _pattern(seed: int, size: int = 40) -> np.ndarray:
    """A distinct RGB picture: smooth gradients and a few blocks, different for every seed."""
    random = np.random.default_rng(seed)
    y, x = np.mgrid[0:size, 0:size] / size
    channels = [
        np.sin(random.uniform(2, 9) * x + random.uniform(2, 9) * y + random.uniform(0, 6))
        for _ in range(3)
    ]
    image = (np.stack(channels, axis=-1) * 110 + 128).clip(0, 255)
    for _ in range(3):
        top, left = random.integers(0, size - 10, 2)
        image[top : top + 10, left : left + 10] = random.integers(0, 256, 3)
    return image.astype(np.uint8)


def _save(image: Image.Image, path: Path, **options) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, **options)


def _sixteen_bit_png(pixels: np.ndarray, path: Path) -> None:
    image = Image.frombytes("I;16", pixels.shape[::-1], pixels.astype("<u2").tobytes())
    _save(image, path)


def write_mixed_folder(root: Path) -> Path:
    """Two classes (folder names) of valid images in every odd form (one in a subfolder),
    one exact copy, broken files of every kind, a link loop, hidden files and non-image
    files."""
    seeds = iter(range(1000))
    for label in ("cats", "dogs"):
        for index in range(4):
            _save(Image.fromarray(_pattern(next(seeds))), root / label / f"plain_{index}.png")
        rgb = _pattern(next(seeds))
        _save(
            Image.fromarray(rgb).convert("P", palette=Image.ADAPTIVE), root / label / "palette.gif"
        )
        rgba = np.dstack([_pattern(next(seeds)), np.full((40, 40), 128, np.uint8)])
        _save(Image.fromarray(rgba, "RGBA"), root / label / "alpha.png")
        _save(
            Image.fromarray(_pattern(next(seeds))[:, :, 0]).convert("LA"),
            root / label / "gray_alpha.png",
        )
        _sixteen_bit_png(
            _pattern(next(seeds))[:, :, 1].astype(np.uint32) * 257, root / label / "sixteen_bit.png"
        )
        _save(
            Image.fromarray(_pattern(next(seeds))).convert("CMYK"),
            root / label / "cmyk.jpg",
            quality=95,
        )
        exif = Image.Exif()
        exif[0x0112] = 6  # orientation: rotate 90° clockwise to display
        _save(
            Image.fromarray(_pattern(next(seeds), 48)[:32]), root / label / "rotated.jpg", exif=exif
        )
        _save(Image.fromarray(_pattern(next(seeds))[:, :, 2]), root / label / "gray.bmp")
        _save(Image.fromarray(_pattern(next(seeds))), root / label / "scan.tiff")
        _save(Image.fromarray(_pattern(next(seeds))), root / label / "photo.webp", lossless=True)
        _save(Image.fromarray(_pattern(next(seeds))), root / label / f"UPPER_{label}.PNG")
    # an exact copy in the other class's folder
    (root / "dogs" / "copy_of_cat.png").write_bytes((root / "cats" / "plain_0.png").read_bytes())

    good_png = (root / "cats" / "plain_1.png").read_bytes()
    (root / "cats" / "empty.png").write_bytes(b"")
    (root / "cats" / "truncated.png").write_bytes(good_png[: len(good_png) // 2])
    buffer = io.BytesIO()
    Image.fromarray(_pattern(999, 64)).save(buffer, "JPEG", quality=90)
    (root / "dogs" / "truncated.jpg").write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    (root / "dogs" / "notes_renamed.jpg").write_text("these are my notes, not a photo")
    _save(Image.new("L", (120, 120)), root / "dogs" / "huge.png")
    _save(Image.fromarray(_pattern(next(seeds))), root / "orphan.png")
    _save(Image.fromarray(_pattern(next(seeds))), root / "cats" / "indoor" / "nested.png")
    (root / "dogs" / "gone.png").symlink_to(root / "dogs" / "deleted.png")
    (root / "cats" / "drawing.svg").write_text('<svg xmlns="http://www.w3.org/2000/svg"/>')
    (root / "cats" / "indoor" / "up").symlink_to(root, target_is_directory=True)  # a loop

    (root / ".ipynb_checkpoints" / "cats").mkdir(parents=True)
    (root / ".ipynb_checkpoints" / "cats" / "plain_0-checkpoint.png").write_bytes(good_png)
    (root / "cats" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    (root / "__MACOSX" / "cats").mkdir(parents=True)
    (root / "__MACOSX" / "cats" / "._plain_0.png").write_bytes(zlib.compress(b"resource fork"))
    (root / "README.txt").write_text("two classes")
    (root / "cats" / "notes.csv").write_text("a,b\n")
    return root


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Modules with slow tests first, so that the workers start on the long ones and the
    short ones fill in at the end (the order xdist hands modules out; see pyproject.toml)."""
    slow = {item.path for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: item.path not in slow)


@pytest.fixture
def mixed_image_folder(tmp_path: Path) -> Path:
    return write_mixed_folder(tmp_path / "images")


class KeptMemoryDataset(MemoryDataset):
    """A MemoryDataset the runner cannot empty, so a test can read every output afterwards."""

    def _release(self) -> None:
        pass


def run_pipeline(pipeline: Pipeline, inputs: dict[str, Any]) -> dict[str, Any]:
    """Run ``pipeline`` with ``SequentialRunner`` on an in-memory catalog holding ``inputs``
    (values, or dataset objects); return every dataset's data after the run by name."""
    datasets = {
        name: value if isinstance(value, AbstractDataset) else KeptMemoryDataset(value)
        for name, value in inputs.items()
    }
    for name in pipeline.datasets():
        datasets.setdefault(name, KeptMemoryDataset())
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in pipeline.datasets() if catalog.exists(name)}


def write_two_class_split(root: Path, *, per_class: int = 16, size: int = 16) -> dict[str, Any]:
    """An easy two-class image set (dark noisy squares vs bright ones) as PNG files, split in
    half: ``{"train": index, "val": index, "classes": [...]}`` with index columns path, label."""
    import pandas as pd

    random = np.random.default_rng(0)
    rows = {"train": [], "val": []}
    for label, (low, high) in (("bright", (150, 256)), ("dark", (0, 106))):
        for number in range(per_class):
            path = root / label / f"{number}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = random.integers(low, high, (size, size), dtype=np.uint8)
            Image.fromarray(pixels).save(path)
            rows["train" if number % 2 == 0 else "val"].append({"path": str(path), "label": label})
    return {
        "train": pd.DataFrame(rows["train"]),
        "val": pd.DataFrame(rows["val"]),
        "classes": ["bright", "dark"],
    }


@pytest.fixture
def two_class_split(tmp_path: Path) -> dict[str, Any]:
    return write_two_class_split(tmp_path / "two_classes")


# --- tiny transfer learning: a 32 px MobileNet (alpha 0.25), random weights ---------------

TINY_TRANSFER: dict[str, Any] = {
    "image": {"size": 32, "color_mode": "grayscale"},
    "backbone": {"name": "mobilenet", "alpha": 0.25, "weights": None, "cut_at": None},
    "defaults": {
        "head": {"batch_norm": True, "dense": [{"units": 8, "dropout": 0.5}]},
        "output": "softmax",
        "training": {"epochs": 2, "batch_size": 8, "verbose": 0},
    },
    "augmentation": {"training": {"augmentation": {"rotation": 0.05}}},
    "sgd": {"training": {"optimizer": {"name": "sgd", "learning_rate": 0.01, "momentum": 0.9}}},
}


SMALL_HEAD = {"batch_norm": True, "dense": [{"units": 8, "dropout": 0.5}]}


def transfer_model(
    name="mobilenet_v2", channels=1, size=32, num_classes=3, head=SMALL_HEAD, **backbone
):
    """A transfer model (random-weight backbone ``name`` nested as one layer, by default a
    small batch-norm + dense head) on ``size`` px images with ``channels`` channels."""
    import keras

    from imgclf.models.backbones import build_backbone
    from imgclf.models.transfer import build_transfer_model

    keras.utils.set_random_seed(0)
    network = build_backbone({"name": name, "weights": None, **backbone}, image_size=(size, size))
    return build_transfer_model(
        network,
        backbone_name=name,
        head=head,
        output="softmax",
        input_shape=(size, size, channels),
        num_classes=num_classes,
        name="model",
    )


def parameter_inputs(parameters: dict[str, Any], prefix: str = "params:") -> dict[str, Any]:
    """The ``params:`` datasets Kedro's catalog makes of a parameter tree: ``params:a``,
    ``params:a.b``, ... for every key at every depth."""
    inputs: dict[str, Any] = {}
    for key, value in parameters.items():
        inputs[f"{prefix}{key}"] = value
        if isinstance(value, dict):
            inputs.update(parameter_inputs(value, f"{prefix}{key}."))
    return inputs


def declared_pipeline(parameters: dict[str, Any], *families: Any) -> Pipeline:
    """The pipelines of ``families`` (modules with ``create_pipeline(variants)``) for the
    variants that ``parameters`` declare, as the pipeline registry builds them."""
    from imgclf.variants import declare_variants

    variants = declare_variants(parameters)
    return sum((family.create_pipeline(variants) for family in families), Pipeline([]))


def transfer_parameters(tmp_path: Path, **families: Any) -> dict[str, Any]:
    """A parameter tree with S0's four transfer variants, tiny (and ``families``' blocks)."""
    tiny = TINY_TRANSFER
    return {
        "image": tiny["image"],
        "backbone": tiny["backbone"],
        "seed": 0,
        "checkpoint_dir": str(tmp_path / "checkpoints"),
        "tensorboard_dir": str(tmp_path / "tensorboard"),
        "transfer": {
            "features": {"batch_size": 16},
            "defaults": tiny["defaults"],
            "adam": {},
            "sgd": tiny["sgd"],
            "adam_aug": tiny["augmentation"],
            "sgd_aug": {**tiny["sgd"], **tiny["augmentation"]},
        },
        **families,
    }


def transfer_inputs(
    split: dict[str, Any], tmp_path: Path, parameters: dict[str, Any] | None = None
) -> dict[str, Any]:
    """In-memory inputs of the transfer pipeline (by default S0's four variants, tiny, see
    :func:`transfer_parameters`) on a split from :func:`write_two_class_split` at 32 px;
    models are passed on without copies, and no feature cache exists yet."""
    from imgclf.variants import declare_variants

    parameters = parameters or transfer_parameters(tmp_path)
    variants = declare_variants(parameters)
    return {
        "train_index": split["train"],
        "val_index": split["val"],
        "test_index": split["val"].copy(),
        "classes": split["classes"],
        **parameter_inputs(parameters),
        **{
            f"{variant.namespace}.model": KeptMemoryDataset(copy_mode="assign")
            for variant in variants
        },
        **{
            f"transfer.previous_features.{variant.features}": KeptMemoryDataset({})
            for variant in variants
            if variant.features
        },
    }


# --- the `kedro` command line on a copy of the project ----------------------------------

PROJECT = Path(__file__).resolve().parents[1]
KEDRO = str(Path(sys.executable).with_name("kedro"))


def copy_project(root: Path) -> Path:
    """The project's conf and metadata copied to ``root`` (the package is installed), so
    runs there write their data there."""
    shutil.copytree(PROJECT / "conf", root / "conf", ignore=shutil.ignore_patterns("local"))
    (root / "conf" / "local").mkdir()  # the project's part of conf/local, not the user's
    shutil.copy(PROJECT / "conf" / "local" / "globals.yml", root / "conf" / "local")
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT / name, root / name)
    (root / "src").mkdir()
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project in a temporary folder (see :func:`copy_project`)."""
    return copy_project(tmp_path / "project")


def environment_on_test_sizes(project: Path, name: str) -> str:
    """A copy of environment ``name`` of ``project`` on the test suite's data and sizes:
    ``conf/<name>_on_test`` holds conf/test's catalog, and its parameters with ``name``'s
    merged over them key by key (so ``name``'s ``<variant>: null`` still removes a
    variant). Returns the new environment's name."""
    import yaml

    from imgclf.variants import merge_parameters

    def parameters(folder: Path) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for path in sorted(folder.glob("parameters*.yml")):
            merged.update(yaml.safe_load(path.read_text()) or {})
        return merged

    conf = project / "conf"
    composed = conf / f"{name}_on_test"
    composed.mkdir()
    shutil.copy(conf / "test" / "catalog.yml", composed / "catalog.yml")
    (composed / "globals.yml").write_text(f"data_dir: data/{name}_on_test\n")
    merged = merge_parameters(parameters(conf / "test"), parameters(conf / name))
    (composed / "parameters.yml").write_text(yaml.safe_dump(merged, sort_keys=False))
    return composed.name


def kedro_environment() -> dict[str, str]:
    """Environment variables for a `kedro` subprocess: no telemetry, quiet TensorFlow."""
    return {**os.environ, "KEDRO_DISABLE_TELEMETRY": "true", "TF_CPP_MIN_LOG_LEVEL": "2"}


def kill_once_a_backup_has_epochs(project: Path, command: list[str], epochs: int = 2) -> str:
    """Start ``command`` in ``project`` and SIGKILL it (its whole process group) as soon as
    some variant's checkpoint of ``epochs`` finished epochs is written; return that
    variant's name (e.g. ``scratch_cnn.deep``). Fails the test if none gets there."""
    running = LoggedRun(project, command)
    checkpoints = project / "data" / "test" / "06_models" / "checkpoints"
    killed_at = None
    deadline = time.monotonic() + 300
    while killed_at is None and time.monotonic() < deadline and running.process.poll() is None:
        for checkpoint in checkpoints.glob(f"*/epoch-{epochs:04d}.npz"):
            running.kill()
            killed_at = checkpoint.parent.name
            break
        time.sleep(0.1)
    running.wait(timeout=60)
    assert killed_at is not None, f"training never got to epoch {epochs}"
    return killed_at


class LoggedRun:
    """A `kedro run` in its own process group whose log lines are kept as they come."""

    def __init__(self, project: Path, command: list[str]):
        self.process = subprocess.Popen(
            command,
            cwd=project,
            env=kedro_environment(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self.running_nodes = threading.Event()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line.rstrip("\n"))
            if "kedro.runner" in line:
                self.running_nodes.set()
        self.running_nodes.set()

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)

    def wait(self, timeout: float) -> int:
        code = self.process.wait(timeout=timeout)
        self._reader.join(timeout=10)
        return code

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


class _LogText(logging.Handler):
    """Keeps the text of every log record it sees."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(f"{record.levelname} {record.name}: {record.getMessage()}")


def kedro_run(project: Path, *arguments: str) -> str:
    """``kedro run <arguments>`` in ``project``, through Kedro's own command line but in this
    process: no new Python, Kedro, MLflow and TensorFlow start-up (about 10 s a run), for the
    runs that set a test up or whose files and log it then checks. What is about the process
    itself (exit codes, the last line a user sees, kills, imports) and whole graphs (whose
    memory should leave with their process) run in a subprocess with :func:`kedro`. Returns
    the run's log; a run that fails raises its error."""
    from kedro.framework.cli.cli import KedroCLI

    log = _LogText()
    root = logging.getLogger()
    previous = (Path.cwd(), root.level)
    root.addHandler(log)
    root.setLevel(min(root.level, logging.INFO))
    os.chdir(project)
    try:
        KedroCLI(project_path=project).main(args=["run", *arguments], standalone_mode=False)
    finally:
        os.chdir(previous[0])
        root.removeHandler(log)
        root.setLevel(previous[1])
        _release_models()
    return "\n".join(log.lines)


def _release_models() -> None:
    """What a finished run's models leave in Keras' global state, freed as a process exit
    would (the suite's workers run many runs each)."""
    if "keras" in sys.modules:
        sys.modules["keras"].backend.clear_session(free_memory=True)
    gc.collect()
    if sys.platform == "linux":  # glibc keeps freed memory for reuse; hand it back
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def kedro(
    project: Path, *arguments: str, variables: dict[str, str] | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run `kedro <arguments>` in ``project`` (with more environment ``variables``); fail
    the test with its output if it fails (unless ``check`` is false)."""
    completed = subprocess.run(
        [KEDRO, *arguments],
        check=False,
        cwd=project,
        env={**kedro_environment(), **(variables or {})},
        capture_output=True,
        text=True,
        timeout=600,
    )
    if check:
        assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return completed
