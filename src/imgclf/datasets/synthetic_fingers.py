"""``SyntheticFingersDataset``: the embedded demo, a generated stand-in for Kaggle's fingers."""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from imgclf.datasets.fingers_generator import BOXES_NAME, ensure_fingers
from imgclf.datasets.image_directory import ImageDirectoryDataset

FINGERS_LABEL_PATTERN = r"_(\d[LR])$"


class SyntheticFingersDataset(AbstractDataset[None, pd.DataFrame]):
    """Writes, on first load, a seeded stand-in for the Kaggle "fingers" data set in its
    exact layout — ``train/`` and ``test/`` folders of ``<uuid>_<n><L|R>.png``, 128×128
    grayscale, one hand showing 0–5 raised fingers — then lists it like
    ``ImageDirectoryDataset`` with the label read from the file name (12 classes,
    ``0L`` … ``5R``) and each hand's bounding box from the ``boxes.csv`` written beside
    them. A later load with the same settings reuses the files.

    .. code-block:: yaml

        raw_images:
          type: imgclf.datasets.SyntheticFingersDataset
          path: data/01_raw/fingers_demo
          train_per_class: 200
          test_per_class: 50
    """

    def __init__(
        self,
        *,
        path: str,
        train_per_class: int = 1500,
        test_per_class: int = 300,
        size: int = 128,
        seed: int = 0,
        workers: int | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._path = path
        self._per_split = {"train": train_per_class, "test": test_per_class}
        self._size = size
        self._seed = seed
        self._workers = workers
        self._listing = ImageDirectoryDataset(
            path=path,
            labels={"from": "filename", "pattern": FINGERS_LABEL_PATTERN},
            boxes={
                "filepath": f"{path.rstrip('/')}/{BOXES_NAME}",
                "columns": ["x_min", "y_min", "x_max", "y_max"],
                "units": "pixels",
            },
        )
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {
            "path": self._path,
            "per_class": self._per_split,
            "size": self._size,
            "seed": self._seed,
        }

    def _exists(self) -> bool:
        return self._listing.exists()

    def save(self, data: None) -> None:
        raise DatasetError(f"{type(self).__name__} is read-only: it generates its own images")

    def load(self) -> pd.DataFrame:
        ensure_fingers(
            self._path,
            per_split=self._per_split,
            size=self._size,
            seed=self._seed,
            workers=self._workers,
        )
        return self._listing.load()
