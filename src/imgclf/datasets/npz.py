"""``NpzDataset``: named NumPy arrays in one ``.npz`` file (e.g. cached backbone features)."""

from __future__ import annotations

import io
from collections.abc import Mapping
from copy import deepcopy
from pathlib import PurePosixPath
from typing import Any

import fsspec
import numpy as np
from kedro.io import AbstractDataset, DatasetError
from kedro.io.core import get_filepath_str, get_protocol_and_path

from imgclf import atomic


class NpzDataset(AbstractDataset[Mapping[str, np.ndarray], dict[str, np.ndarray]]):
    """Saves a mapping of names to arrays with ``numpy.savez`` (``compress: true``:
    ``savez_compressed``) and loads it back as a dict. A local file is written atomically
    (:mod:`imgclf.atomic`): a kill while saving leaves the previous file whole. Arrays of
    objects are refused, so loading never unpickles anything: store strings as NumPy
    unicode arrays.

    .. code-block:: yaml

        transfer.features:
          type: imgclf.datasets.NpzDataset
          filepath: data/04_feature/transfer/features.npz
          compress: false
    """

    def __init__(
        self,
        *,
        filepath: str,
        compress: bool = False,
        credentials: dict[str, Any] | None = None,
        fs_args: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        protocol, path = get_protocol_and_path(filepath)
        self._protocol = protocol
        self._filepath = PurePosixPath(path)
        self._compress = compress
        self._fs = fsspec.filesystem(protocol, **deepcopy(credentials or {}), **(fs_args or {}))
        self.metadata = metadata

    def load(self) -> dict[str, np.ndarray]:
        path = get_filepath_str(self._filepath, self._protocol)
        with self._fs.open(path, "rb") as file, np.load(file, allow_pickle=False) as arrays:
            return {name: arrays[name] for name in arrays.files}

    def save(self, data: Mapping[str, np.ndarray]) -> None:
        if not isinstance(data, Mapping):
            raise DatasetError(f"NpzDataset saves a mapping of names to arrays; got {type(data)}")
        arrays = {str(name): np.asarray(value) for name, value in data.items()}
        objects = sorted(name for name, array in arrays.items() if array.dtype == object)
        if objects:
            raise DatasetError(
                f"NpzDataset cannot save arrays of Python objects: {', '.join(objects)}; "
                "convert strings with numpy.asarray(values, dtype=str)"
            )
        buffer = io.BytesIO()
        (np.savez_compressed if self._compress else np.savez)(buffer, **arrays)
        path = get_filepath_str(self._filepath, self._protocol)
        if self._protocol == "file":
            atomic.write_bytes(path, buffer.getvalue())
            return
        self._fs.makedirs(str(PurePosixPath(path).parent), exist_ok=True)
        with self._fs.open(path, "wb") as file:  # object stores show an upload once complete
            file.write(buffer.getvalue())

    def _exists(self) -> bool:
        return self._fs.exists(get_filepath_str(self._filepath, self._protocol))

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "protocol": self._protocol, "compress": self._compress}
