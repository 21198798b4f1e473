"""Benchmark: does ingest group near copies with their original, and only them?

    python benchmarks/near_duplicates.py                # prints one JSON object
    python benchmarks/near_duplicates.py --copies 100 --distances 0.02 0.03 0.05

Three sets of distinct images: the demo (base environment's generator: 3,000 hands of
128 px), the same hands shrunk to 32 px (where pixel noise weighs most), and
scikit-learn's 1,797 digits (8 px). For a sample of ``--copies`` images of each set, and
each edit real copies go through (Gaussian noise, JPEG re-encoding, resizing,
brightness, a crop, a blur, grayscale to RGB and RGB to grayscale), the copy is hashed
with ingest's own :func:`imgclf.imaging.inspect.perceptual_hash` and grouped with the
whole set by ingest's own :func:`imgclf.pipelines.ingest.duplicates.duplicate_components`
at each ``--distances`` value. It reports:

- ``copies_grouped``: per edit and distance, the share of copies that land in their
  original's group;
- ``distinct_grouped``: per distance, the pairs of the set's own (distinct) images that
  share a group (``pairs_compared`` is how many pairs there are), and the largest group.

Images are edited in memory (a JPEG copy is encoded and decoded), as ingest would decode
them from files.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from imgclf.datasets import SklearnDigitsDataset, SyntheticFingersDataset
from imgclf.imaging.inspect import perceptual_hash
from imgclf.pipelines.ingest.duplicates import duplicate_components, hash_vectors

Edit = Callable[[Image.Image, np.random.Generator], tuple[Image.Image, Image.Image]]
DISTANCES = (0.015, 0.02, 0.025, 0.03, 0.04)


def _same(copy: Callable[[Image.Image, np.random.Generator], Image.Image]) -> Edit:
    """An edit whose reference is the original itself."""
    return lambda image, random: (image, copy(image, random))


def _noise(sigma: float) -> Edit:
    def copy(image, random):
        pixels = np.asarray(image, dtype=np.float64)
        noisy = pixels + random.normal(0.0, sigma, pixels.shape)
        return Image.fromarray(np.clip(np.round(noisy), 0, 255).astype(np.uint8))

    return _same(copy)


def _jpeg(quality: int) -> Edit:
    def copy(image, random):
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=quality)
        return Image.open(io.BytesIO(buffer.getvalue())).convert(image.mode)

    return _same(copy)


def _resize(factor: float) -> Edit:
    def copy(image, random):
        size = (max(1, round(image.width * factor)), max(1, round(image.height * factor)))
        return image.resize(size, Image.BICUBIC)

    return _same(copy)


def _brightness(factor: float) -> Edit:
    return _same(lambda image, random: ImageEnhance.Brightness(image).enhance(factor))


def _crop(fraction: float) -> Edit:
    """Cut ``fraction`` of the width and of the height, shared at random between sides."""

    def copy(image, random):
        cut_x, cut_y = round(image.width * fraction), round(image.height * fraction)
        left, top = int(random.integers(0, cut_x + 1)), int(random.integers(0, cut_y + 1))
        box = (left, top, image.width - (cut_x - left), image.height - (cut_y - top))
        return image.crop(box)

    return _same(copy)


def _blur(radius: float) -> Edit:
    return _same(lambda image, random: image.filter(ImageFilter.GaussianBlur(radius)))


def _to_rgb(image: Image.Image, random: np.random.Generator) -> tuple[Image.Image, Image.Image]:
    return image, image.convert("RGB")


def _to_grayscale(
    image: Image.Image, random: np.random.Generator
) -> tuple[Image.Image, Image.Image]:
    """A colour picture (the grayscale one tinted) against its grayscale version."""
    gray = np.asarray(image.convert("L"), dtype=np.float64)
    tint = random.uniform(0.6, 1.0, 3)
    colour = Image.fromarray(np.clip(gray[..., None] * tint + 20, 0, 255).astype(np.uint8))
    return colour, colour.convert("L")


EDITS: dict[str, Edit] = {
    "noise_sigma_2": _noise(2),
    "noise_sigma_4": _noise(4),
    "noise_sigma_8": _noise(8),
    "jpeg_95": _jpeg(95),
    "jpeg_75": _jpeg(75),
    "jpeg_50": _jpeg(50),
    "resize_0.5": _resize(0.5),
    "resize_0.75": _resize(0.75),
    "resize_1.5": _resize(1.5),
    "resize_2": _resize(2.0),
    "brightness_0.85": _brightness(0.85),
    "brightness_1.15": _brightness(1.15),
    "crop_2%": _crop(0.02),
    "crop_5%": _crop(0.05),
    "blur_0.5": _blur(0.5),
    "blur_1": _blur(1.0),
    "grayscale_to_rgb": _to_rgb,
    "rgb_to_grayscale": _to_grayscale,
}


def load_sets(folder: Path) -> dict[str, list[Image.Image]]:
    demo = SyntheticFingersDataset(
        path=str(folder / "demo"), train_per_class=200, test_per_class=50, size=128, seed=0
    ).load()
    digits = SklearnDigitsDataset(path=str(folder / "digits")).load()
    hands = [Image.open(path).convert("L") for path in demo["path"]]
    return {
        "demo_128px": hands,
        "demo_32px": [hand.resize((32, 32), Image.BOX) for hand in hands],
        "digits_8px": [Image.open(path).convert("L") for path in digits["path"]],
    }


def _vectors(images: list[Image.Image]) -> np.ndarray:
    return hash_vectors([perceptual_hash(image) for image in images])


def _grouping(components: np.ndarray) -> dict[str, int]:
    """Pairs of images that share a group, and the largest group."""
    _, sizes = np.unique(components, return_counts=True)
    return {"pairs": int((sizes * (sizes - 1) // 2).sum()), "largest_group": int(sizes.max())}


def measure(
    images: list[Image.Image], copies: int, distances: tuple[float, ...], seed: int
) -> dict:
    random = np.random.default_rng(seed)
    originals = _vectors(images)
    sample = random.choice(len(images), size=min(copies, len(images)), replace=False)
    distinct = {str(d): _grouping(duplicate_components(originals, d)) for d in distances}
    grouped: dict[str, dict[str, float]] = {}
    for name, edit in EDITS.items():
        references, edited = zip(*(edit(images[k], random) for k in sample))
        vectors = originals.copy()
        vectors[sample] = _vectors(list(references))
        everything = np.concatenate([vectors, _vectors(list(edited))])
        grouped[name] = {}
        for distance in distances:
            components = duplicate_components(everything, distance)
            together = components[sample] == components[len(images) :]
            grouped[name][str(distance)] = round(float(together.mean()), 3)
    return {
        "images": len(images),
        "pairs_compared": len(images) * (len(images) - 1) // 2,
        "copies_per_edit": len(sample),
        "distinct_grouped": distinct,
        "copies_grouped": grouped,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=300, help="originals copied per edit")
    parser.add_argument("--distances", type=float, nargs="+", default=list(DISTANCES))
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        sets = load_sets(Path(folder))
        results = {
            name: measure(images, arguments.copies, tuple(arguments.distances), arguments.seed)
            for name, images in sets.items()
        }
    report = {
        "hash": "perceptual_hash: 16x16 lowest DCT frequencies of a 64x64 grayscale "
        "thumbnail, less the mean, unit length (255 float16); distance = 1 - cosine",
        "distances": arguments.distances,
        "sets": results,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
