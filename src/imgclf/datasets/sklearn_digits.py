"""``SklearnDigitsDataset``: scikit-learn's bundled handwritten digits as a folder of PNGs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, DatasetError
from PIL import Image

from imgclf.datasets.image_directory import ImageDirectoryDataset

MANIFEST = ".digits.json"


class SklearnDigitsDataset(AbstractDataset[None, pd.DataFrame]):
    """Writes scikit-learn's 1,797 real 8×8 handwritten digits (``load_digits``, shipped with
    the package: no download) as grayscale PNGs, one folder per class ``0`` … ``9``, on first
    load; then lists them like ``ImageDirectoryDataset`` with labels from the folder names.

    .. code-block:: yaml

        raw_images:
          type: imgclf.datasets.SklearnDigitsDataset
          path: data/digits/01_raw/digits
    """

    def __init__(self, *, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self._listing = ImageDirectoryDataset(path=str(path), labels={"from": "directory"})
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _exists(self) -> bool:
        return (self._path / MANIFEST).is_file()

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: it writes scikit-learn's digits")

    def load(self) -> pd.DataFrame:
        if not self._exists():
            write_digits(self._path)
        return self._listing.load()


def write_digits(root: Path) -> int:
    """Write every digit as ``root/<digit>/<index>.png`` (values 0–16 scaled to 0–255)."""
    from sklearn.datasets import load_digits  # scikit-learn loads slowly; only needed here

    digits = load_digits()
    pixels = np.round(digits.images * (255 / 16)).clip(0, 255).astype(np.uint8)
    for index, (image, target) in enumerate(zip(pixels, digits.target)):
        folder = root / str(target)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(folder / f"{index:04d}.png")
    (root / MANIFEST).write_text(
        json.dumps({"images": len(pixels), "source": "sklearn.datasets.load_digits"})
    )
    return len(pixels)
