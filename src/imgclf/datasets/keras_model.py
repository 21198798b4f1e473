"""``KerasModelDataset``: a Keras model in one ``.keras`` file, written atomically."""

from __future__ import annotations

import tempfile
from copy import deepcopy
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import fsspec
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str, get_protocol_and_path

from imgclf import atomic


class KerasModelDataset(AbstractDataset[Any, Any]):
    """Saves a Keras model with ``model.save`` (the ``.keras`` zip format) and loads it with
    ``keras.saving.load_model``. A local file is written to a temporary file beside it and
    renamed into place (:mod:`imgclf.atomic`), so a kill or a full disk while saving leaves
    the previous model whole. Other file systems (``s3://...``) get the file uploaded from
    a local temporary folder, which object stores make visible only once complete.

    ``load_args`` go to ``keras.saving.load_model`` (default ``safe_mode: true``: no
    ``Lambda`` layers; imgclf's own layers are registered first), ``save_args`` to
    ``model.save``. TensorFlow is imported on the first
    load or save, not when the catalog is built.

    .. code-block:: yaml

        "{family}.{variant}.model":
          type: imgclf.datasets.KerasModelDataset
          filepath: data/06_models/{family}/{variant}/model.keras
    """

    DEFAULT_LOAD_ARGS: ClassVar[dict[str, Any]] = {"safe_mode": True}
    DEFAULT_SAVE_ARGS: ClassVar[dict[str, Any]] = {}

    def __init__(
        self,
        *,
        filepath: str,
        load_args: dict[str, Any] | None = None,
        save_args: dict[str, Any] | None = None,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._load_args = {**self.DEFAULT_LOAD_ARGS, **(load_args or {})}
        self._save_args = {**self.DEFAULT_SAVE_ARGS, **(save_args or {})}
        self._fs = fsspec.filesystem(protocol, **deepcopy(credentials or {}), **(fs_args or {}))
        self.metadata = metadata

    def load(self) -> Any:
        import keras

        # imgclf's own layers, losses and metrics, registered as their modules load
        import imgclf.models.backbones
        import imgclf.models.boxes  # noqa: F401

        path = get_filepath_str(self._filepath, self._protocol)
        if self._protocol == "file":
            return keras.saving.load_model(path, **self._load_args)
        with tempfile.TemporaryDirectory(prefix="imgclf-keras-") as folder:
            local = str(Path(folder) / self._filepath.name)
            self._fs.get(path, local)
            return keras.saving.load_model(local, **self._load_args)

    def save(self, data: Any) -> None:
        if not hasattr(data, "save") or not hasattr(data, "layers"):
            raise DatasetError(f"KerasModelDataset saves a Keras model; got {type(data)}")
        path = get_filepath_str(self._filepath, self._protocol)
        if self._protocol == "file":
            with atomic.atomic_path(path) as temporary:
                data.save(str(temporary), **self._save_args)
            return
        with tempfile.TemporaryDirectory(prefix="imgclf-keras-") as folder:
            local = str(Path(folder) / self._filepath.name)
            data.save(local, **self._save_args)
            self._fs.put(local, path)

    def _exists(self) -> bool:
        return self._fs.exists(get_filepath_str(self._filepath, self._protocol))

    def _describe(self) -> dict[str, Any]:
        return {
            "filepath": self._filepath,
            "protocol": self._protocol,
            "load_args": self._load_args,
            "save_args": self._save_args,
        }
