"""Synthetic stand-in for the Kaggle "fingers" data set.

Each image is a ``size`` x ``size`` grayscale PNG of one hand showing 0-5 raised fingers,
left (``L``) or right (``R``), on a dark noisy background. Files are laid out like the
original data set::

    root/train/<uuid>_<n><L|R>.png
    root/test/<uuid>_<n><L|R>.png

so the label is the last two characters of the file stem. ``root/boxes.csv`` holds each
hand's bounding box (``path`` relative to root, ``x_min``, ``y_min``, ``x_max``, ``y_max``
in pixels, right and bottom exclusive): the palm, fingers and thumb, without the forearm
that runs out of the image. Every image is drawn from its own random stream derived from
``(seed, split, class, index)``, so the output is byte-identical for the same settings,
whatever the number of worker processes.
"""

from __future__ import annotations

import json
import logging
import math
import multiprocessing
import numbers
import os
import re
import uuid
import zlib
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from imgclf import atomic

logger = logging.getLogger(__name__)

#: The 12 class labels, in the order used for seeding.
CLASSES: tuple[str, ...] = tuple(f"{n}{hand}" for hand in "LR" for n in range(6))
#: Bump when the drawing changes, so that :func:`ensure_fingers` regenerates old sets.
GENERATOR_VERSION = 2
MANIFEST_NAME = ".fingers.json"
BOXES_NAME = "boxes.csv"
BOX_HEADER = ("path", "x_min", "y_min", "x_max", "y_max")
MIN_SIZE = 16

_FILE_RE = re.compile(r"^[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}_[0-5][LR]\.png$")
_CHUNK = 100  # images per work item
_SUPERSAMPLE = 2  # draw at this multiple of ``size``, then downsample (anti-aliasing)

# Fingers: 0 thumb, 1 index, 2 middle, 3 ring, 4 pinky. Which ones are raised for a count
# (repeats make a combination more likely).
_RAISED: dict[int, tuple[tuple[int, ...], ...]] = {
    0: ((),),
    1: ((1,), (1,), (2,), (0,)),
    2: ((1, 2), (1, 2), (0, 1), (1, 4)),
    3: ((0, 1, 2), (1, 2, 3), (1, 2, 3), (2, 3, 4)),
    4: ((1, 2, 3, 4), (1, 2, 3, 4), (0, 1, 2, 3)),
    5: ((0, 1, 2, 3, 4),),
}
# Long fingers in palm-width units: base position (u across, v along) and relative length.
_FINGER_BASE_U = (-0.33, -0.11, 0.11, 0.33)
_FINGER_REL_LEN = (0.92, 1.0, 0.94, 0.74)


def draw_hand(rng: np.random.Generator, fingers: int, hand: str, size: int = 128) -> Image.Image:
    """Draw one hand showing ``fingers`` raised fingers on a dark noisy background.

    Args:
        rng: Source of all randomness (pose, shape, lighting, noise).
        fingers: Number of raised fingers, 0-5.
        hand: ``"L"`` or ``"R"``; the two are mirror images (thumb on opposite sides).
        size: Width and height of the square image in pixels (at least 16).

    Returns:
        A grayscale (mode ``"L"``) image of ``size`` x ``size`` pixels.
    """
    return draw_hand_with_box(rng, fingers, hand, size)[0]


def draw_hand_with_box(
    rng: np.random.Generator, fingers: int, hand: str, size: int = 128
) -> tuple[Image.Image, tuple[int, int, int, int]]:
    """:func:`draw_hand`'s image (the same for the same ``rng``) and the hand's bounding
    box ``(x_min, y_min, x_max, y_max)`` in pixels, right and bottom exclusive: the pixels
    at least half covered by the palm, the fingers or the thumb (not the forearm)."""
    if not _is_int(fingers) or fingers not in _RAISED:
        raise ValueError(f"fingers must be an integer from 0 to 5, got {fingers!r}")
    if hand not in ("L", "R"):
        raise ValueError(f"hand must be 'L' or 'R', got {hand!r}")
    _check_size(size)

    canvas = size * _SUPERSAMPLE
    palm_w = canvas * rng.uniform(0.27, 0.34)  # palm width in pixels: the unit of the hand
    angle = math.radians(rng.uniform(-30, 30))
    centre = (canvas * rng.uniform(0.38, 0.62), canvas * rng.uniform(0.55, 0.66))
    mirror = 1.0 if hand == "R" else -1.0  # right hand: thumb on the image's left (u < 0)
    cos_a, sin_a = math.cos(angle), math.sin(angle)

    def to_px(u: float, v: float) -> tuple[float, float]:
        """Map hand coordinates (u across, v towards the fingertips) to canvas pixels."""
        x, y = mirror * u * palm_w, -v * palm_w
        return centre[0] + x * cos_a - y * sin_a, centre[1] + x * sin_a + y * cos_a

    skin = rng.uniform(125, 235)
    edge = skin * rng.uniform(0.55, 0.75)  # darker outline that separates fingers
    mask = Image.new("L", (canvas, canvas), 0)
    shade = Image.new("L", (canvas, canvas), 0)
    hand_only = Image.new("L", (canvas, canvas), 0)  # the mask without the forearm: the box
    layers = (ImageDraw.Draw(mask), ImageDraw.Draw(shade), ImageDraw.Draw(hand_only))

    def stroke(
        points: list[tuple[float, float]], width: float, outline: float, boxed: bool = True
    ) -> None:
        """Thick round-capped polyline in hand units, with a dark rim of ``outline`` units."""
        px = [to_px(u, v) for u, v in points]
        for w, value in ((width + 2 * outline, edge), (width, skin)):
            w_px = max(1, round(w * palm_w))
            for draw, fill in zip(layers[: 3 if boxed else 2], (255, round(value), 255)):
                draw.line(px, fill=fill, width=w_px, joint="curve")
                for x, y in (px[0], px[-1]):
                    r = w_px / 2
                    draw.ellipse((x - r, y - r, x + r, y + r), fill=fill)

    # Wrist and forearm, long enough to leave the image whatever the pose.
    stroke([(0.0, -0.2), (rng.uniform(-0.1, 0.1), -6.0)], rng.uniform(0.72, 0.85), 0.0, boxed=False)
    # Palm: a rounded (super-elliptic) box.
    t = np.linspace(0, 2 * math.pi, 32, endpoint=False)
    half_h = rng.uniform(0.5, 0.6)
    us = 0.5 * np.sign(np.cos(t)) * np.abs(np.cos(t)) ** 0.5
    vs = half_h * np.sign(np.sin(t)) * np.abs(np.sin(t)) ** 0.5
    palm = [to_px(u, v) for u, v in zip(us, vs, strict=True)]
    for draw, fill in zip(layers, (255, round(skin), 255), strict=True):
        draw.polygon(palm, fill=fill)

    raised = _RAISED[fingers][rng.integers(len(_RAISED[fingers]))]
    length = rng.uniform(0.8, 1.05)
    width = rng.uniform(0.15, 0.19)
    spread = rng.uniform(5.0, 11.0)
    outline = rng.uniform(0.02, 0.04)
    top = half_h - 0.08
    for i in range(1, 5):
        u0 = _FINGER_BASE_U[i - 1]
        tilt = math.radians((i - 2.5) * spread + rng.normal(0, 2))
        reach = length * _FINGER_REL_LEN[i - 1] if i in raised else rng.uniform(0.12, 0.2)
        w = width * (0.85 if i == 4 else 1.0)
        stroke([(u0, top), (u0 + reach * math.sin(tilt), top + reach * math.cos(tilt))], w, outline)

    # Thumb: from the side of the palm, pointing outwards when raised, hugging the palm when not.
    base = (-0.4, rng.uniform(-0.25, -0.1))
    if 0 in raised:
        out, reach = math.radians(rng.uniform(40, 70)), length * rng.uniform(0.7, 0.85)
    else:
        out, reach = math.radians(rng.uniform(15, 35)), rng.uniform(0.38, 0.5)
    tip = (base[0] - reach * math.sin(out), base[1] + reach * math.cos(out))
    stroke([base, tip], width * 1.15, outline)

    covered = hand_only.resize((size, size), Image.Resampling.BOX).point(
        lambda value: 255 if value >= 128 else 0
    )
    return _finish(rng, mask, shade, size), covered.getbbox()


def _finish(
    rng: np.random.Generator, mask: Image.Image, shade: Image.Image, size: int
) -> Image.Image:
    """Downsample the hand layers, light them, put them on a noisy background and blur."""
    alpha = np.asarray(mask.resize((size, size), Image.Resampling.BOX), np.float32) / 255
    hand = np.asarray(shade.resize((size, size), Image.Resampling.BOX), np.float32)
    hand = hand / np.maximum(alpha, 1e-3)  # undo the premultiplication by the mask

    yy, xx = np.mgrid[0:size, 0:size] / size - 0.5
    theta = rng.uniform(0, 2 * math.pi)
    hand *= 1 + rng.uniform(0.1, 0.35) * (xx * math.cos(theta) + yy * math.sin(theta))

    coarse = Image.fromarray(rng.uniform(0, 45, (4, 4)).astype(np.float32))
    background = np.asarray(coarse.resize((size, size), Image.Resampling.BILINEAR))
    image = background * (1 - alpha) + hand * alpha
    blurred = Image.fromarray(np.clip(image, 0, 255).round().astype(np.uint8)).filter(
        ImageFilter.GaussianBlur(rng.uniform(0.3, 1.0) * size / 128)
    )
    noisy = np.asarray(blurred, np.float32) + rng.normal(0, rng.uniform(3, 10), (size, size))
    return Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))


@dataclass(frozen=True)
class _Job:
    """A chunk of images of one class in one split, drawn by one worker."""

    folder: Path
    split: str
    label: str
    start: int
    stop: int
    size: int
    seed: int


def _image_rng(seed: int, split: str, label: str, index: int) -> np.random.Generator:
    """Independent random stream for one image; does not depend on the other splits."""
    return np.random.default_rng([seed, zlib.crc32(split.encode()), CLASSES.index(label), index])


def _draw_job(job: _Job) -> list[tuple[str, int, int, int, int]]:
    """Draw and write the images of ``job``; returns each one's box row (path relative to
    the root, x_min, y_min, x_max, y_max)."""
    rows = []
    for index in range(job.start, job.stop):
        rng = _image_rng(job.seed, job.split, job.label, index)
        name = uuid.UUID(int=int.from_bytes(rng.bytes(16), "big"), version=4)
        image, box = draw_hand_with_box(rng, int(job.label[0]), job.label[1], job.size)
        file_name = f"{name}_{job.label}.png"
        image.save(job.folder / file_name, format="PNG")
        rows.append((f"{job.split}/{file_name}", *box))
    return rows


def generate_fingers(
    root: str | os.PathLike[str],
    *,
    per_split: Mapping[str, int],
    size: int = 128,
    seed: int = 0,
    workers: int | None = None,
) -> int:
    """Write ``per_split[split]`` images per class into ``root/<split>/``.

    Args:
        root: Folder to write the split folders into (created if needed).
        per_split: Images per class for each split, e.g. ``{"train": 1500, "test": 300}``
            (12 classes, so 18,000 + 3,600 files).
        size: Width and height of the images in pixels (at least 16).
        seed: Non-negative seed; the same settings give byte-identical files.
        workers: Worker processes; defaults to ``os.cpu_count()``. 1 draws in this process.
            Workers are *spawned* (safe when threads such as TensorFlow's are running), so a
            calling script needs the usual ``if __name__ == "__main__":`` guard.

    Returns:
        The number of images written; their boxes are in ``root/boxes.csv``.
    """
    _validate(per_split, size, seed, workers)
    workers = workers or os.cpu_count() or 1
    jobs = [
        _Job(Path(root) / split, split, label, start, min(start + _CHUNK, count), size, seed)
        for split, count in per_split.items()
        for label in CLASSES
        for start in range(0, count, _CHUNK)
    ]
    for split in per_split:
        (Path(root) / split).mkdir(parents=True, exist_ok=True)
    total = sum(job.stop - job.start for job in jobs)
    logger.info("Drawing %d finger images of %dpx into %s (%d workers)", total, size, root, workers)

    boxes: list[tuple[str, int, int, int, int]] = []
    with tqdm(total=total, desc="fingers", unit="img", disable=None) as bar:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                boxes += _draw_job(job)
                bar.update(job.stop - job.start)
        else:
            # "spawn": safe even when the caller already runs threads (e.g. TensorFlow).
            context = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=context) as pool:
                for done in as_completed([pool.submit(_draw_job, job) for job in jobs]):
                    rows = done.result()
                    boxes += rows
                    bar.update(len(rows))
    lines = [",".join(BOX_HEADER), *(",".join(map(str, row)) for row in sorted(boxes))]
    atomic.write_text(Path(root) / BOXES_NAME, "\n".join(lines) + "\n")
    return len(boxes)


def ensure_fingers(
    root: str | os.PathLike[str],
    *,
    per_split: Mapping[str, int],
    size: int = 128,
    seed: int = 0,
    workers: int | None = None,
) -> bool:
    """Generate the data set into ``root`` unless it already holds one with these settings.

    The settings are recorded in ``root/.fingers.json``, written after the last image, so an
    interrupted generation is redone. When the manifest is missing or differs (or a split
    folder holds the wrong number of images), the generated PNGs of the previous and the
    requested splits are deleted and everything is drawn again.

    Returns:
        True if images were generated, False if the existing ones were kept.
    """
    _validate(per_split, size, seed, workers)
    root = Path(root)
    manifest_path = root / MANIFEST_NAME
    wanted = {
        "generator": "imgclf.fingers",
        "version": GENERATOR_VERSION,
        "classes": list(CLASSES),
        "per_split": {split: int(count) for split, count in per_split.items()},
        "size": int(size),
        "seed": int(seed),
    }
    previous = _read_manifest(manifest_path)
    if (
        previous == wanted
        and (root / BOXES_NAME).is_file()
        and all(
            _count_generated(root / split) == count * len(CLASSES)
            for split, count in per_split.items()
        )
    ):
        logger.info("Finger images in %s are up to date; not regenerating", root)
        return False

    logger.info("Finger images in %s are missing or stale; regenerating", root)
    manifest_path.unlink(missing_ok=True)
    old_splits = (previous or {}).get("per_split")
    old_splits = old_splits if isinstance(old_splits, dict) else {}
    for split in {*per_split, *filter(_is_folder_name, old_splits)}:
        removed = _remove_generated(root / split)
        if removed:
            logger.info("Removed %d old images from %s", removed, root / split)
    generate_fingers(root, per_split=per_split, size=size, seed=seed, workers=workers)
    atomic.write_text(manifest_path, json.dumps(wanted, indent=2, sort_keys=True) + "\n")
    return True


def _read_manifest(path: Path) -> dict | None:
    """The manifest's contents, or None if it is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _generated_files(folder: Path) -> list[Path]:
    """Files in ``folder`` named like generated images."""
    if not folder.is_dir():
        return []
    return [entry for entry in folder.iterdir() if _FILE_RE.match(entry.name)]


def _count_generated(folder: Path) -> int:
    return len(_generated_files(folder))


def _remove_generated(folder: Path) -> int:
    """Delete the generated images in ``folder``; returns how many were deleted."""
    files = _generated_files(folder)
    for path in files:
        path.unlink()
    return len(files)


def _is_folder_name(name: object) -> bool:
    """True for a plain, visible folder name (no path separators, not hidden)."""
    return (
        isinstance(name, str)
        and bool(name)
        and not name.startswith(".")
        and Path(name).name == name
        and "\\" not in name
    )


def _is_int(value: object) -> bool:
    """True for integers (Python or numpy), False for bools and everything else."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check_size(size: object) -> None:
    if not _is_int(size) or size < MIN_SIZE:
        raise ValueError(f"size must be an integer of at least {MIN_SIZE} pixels, got {size!r}")


def _validate(per_split: object, size: object, seed: object, workers: object) -> None:
    """Raise ValueError with a helpful message for bad generation settings."""
    if not isinstance(per_split, Mapping) or not per_split:
        raise ValueError(
            "per_split must be a non-empty mapping of split name to images per class, "
            f"e.g. {{'train': 1500, 'test': 300}}; got {per_split!r}"
        )
    for split, count in per_split.items():
        if not _is_folder_name(split):
            raise ValueError(
                f"split names must be plain folder names (no '/', not hidden), got {split!r}"
            )
        if not _is_int(count) or count < 0:
            raise ValueError(
                f"per_split[{split!r}] must be a non-negative integer number of images per "
                f"class, got {count!r}"
            )
    _check_size(size)
    if not _is_int(seed) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if workers is not None and (not _is_int(workers) or workers < 1):
        raise ValueError(f"workers must be None or a positive integer, got {workers!r}")
