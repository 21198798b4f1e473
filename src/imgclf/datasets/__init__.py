"""Kedro dataset classes: image listings (``raw_images``), demo data sets, and arrays.

Each image listing's ``load()`` returns a DataFrame with one row per image file — ``path``,
``label``, ``source_split``, ``bytes``, ``modified`` — without decoding any pixels.
``KerasModelDataset`` keeps a Keras model in a ``.keras`` file, written atomically;
``NpzDataset`` stores named NumPy arrays (the transfer pipeline's cached features);
``SavedModelDataset`` exports a Keras model as a TensorFlow SavedModel; ``OptionalDataset``
wraps any dataset so that it loads as null while it does not exist.
"""

from imgclf.datasets.image_directory import ImageDirectoryDataset
from imgclf.datasets.keras_model import KerasModelDataset
from imgclf.datasets.npz import NpzDataset
from imgclf.datasets.optional import OptionalDataset
from imgclf.datasets.optional_parquet import OptionalParquetDataset
from imgclf.datasets.saved_model import SavedModelDataset
from imgclf.datasets.sklearn_digits import SklearnDigitsDataset
from imgclf.datasets.synthetic_fingers import SyntheticFingersDataset

__all__ = [
    "ImageDirectoryDataset",
    "KerasModelDataset",
    "NpzDataset",
    "OptionalDataset",
    "OptionalParquetDataset",
    "SavedModelDataset",
    "SklearnDigitsDataset",
    "SyntheticFingersDataset",
]
