"""Kedro dataset classes that list labelled images (``raw_images``) and make demo data sets.

Each ``load()`` returns a DataFrame with one row per image file — ``path``, ``label``,
``source_split``, ``bytes``, ``modified`` — without decoding any pixels.
"""

from imgclf.datasets.image_directory import ImageDirectoryDataset
from imgclf.datasets.optional_parquet import OptionalParquetDataset
from imgclf.datasets.sklearn_digits import SklearnDigitsDataset
from imgclf.datasets.synthetic_fingers import SyntheticFingersDataset

__all__ = [
    "ImageDirectoryDataset",
    "OptionalParquetDataset",
    "SklearnDigitsDataset",
    "SyntheticFingersDataset",
]
