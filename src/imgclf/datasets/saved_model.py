"""``SavedModelDataset``: a Keras model exported as a TensorFlow SavedModel, for serving."""

from __future__ import annotations

import tempfile
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any

import fsspec
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str, get_protocol_and_path

from imgclf import atomic


class SavedModelDataset(AbstractDataset[Any, Any]):
    """Saves a Keras model with ``model.export(..., format="tf_saved_model")``: a folder
    that TensorFlow Serving, TFLite's converter or ``tf.saved_model.load`` read without
    imgclf or Keras. Its ``serve`` endpoint takes a float32 batch of raw [0, 255] pixels
    ``(n, height, width, channels)`` and returns the class probabilities (a model with a
    box output: ``{"class": ..., "box": ...}``), because the preprocessing lives inside
    the model.

    ``load()`` returns ``tf.saved_model.load(...)``: call ``loaded.serve(images)``. A local
    export is written to a temporary folder beside the target and renamed into place
    (:func:`imgclf.atomic.atomic_folder`). Other file systems (``s3://...``) go through a
    local temporary folder.

    .. code-block:: yaml

        exported_model:
          type: imgclf.datasets.SavedModelDataset
          filepath: data/06_models/exported/saved_model
    """

    def __init__(
        self,
        *,
        filepath: str,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._fs = fsspec.filesystem(protocol, **deepcopy(credentials or {}), **(fs_args or {}))
        self.metadata = metadata

    def load(self) -> Any:
        import tensorflow as tf

        path = get_filepath_str(self._filepath, self._protocol)
        if self._protocol == "file":
            return tf.saved_model.load(path)
        with tempfile.TemporaryDirectory(prefix="imgclf-savedmodel-") as folder:
            self._fs.get(path, folder, recursive=True)
            return tf.saved_model.load(str(Path(folder) / self._filepath.name))

    def save(self, data: Any) -> None:
        if not hasattr(data, "export"):
            raise DatasetError(
                f"SavedModelDataset saves a Keras model (anything with .export); got {type(data)}"
            )
        path = get_filepath_str(self._filepath, self._protocol)
        if self._protocol == "file":
            with atomic.atomic_folder(path) as temporary:
                data.export(str(temporary), format="tf_saved_model", verbose=False)
            return
        if self._fs.exists(path):
            self._fs.rm(path, recursive=True)
        with tempfile.TemporaryDirectory(prefix="imgclf-savedmodel-") as folder:
            local = Path(folder) / self._filepath.name
            data.export(str(local), format="tf_saved_model", verbose=False)
            self._fs.put(str(local), path, recursive=True)

    def _exists(self) -> bool:
        return self._fs.exists(get_filepath_str(self._filepath, self._protocol))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol}
