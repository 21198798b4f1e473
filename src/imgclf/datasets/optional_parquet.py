"""``OptionalParquetDataset``: a Parquet file that loads as an empty table while it is missing."""

from __future__ import annotations

import pandas as pd
from kedro_datasets.pandas import ParquetDataset


class OptionalParquetDataset(ParquetDataset):
    """A ``pandas.ParquetDataset`` whose ``load()`` returns an empty DataFrame when the file
    does not exist yet. Ingest reads its previous scan through it, so the first run needs no
    special case.

    .. code-block:: yaml

        previous_image_scan:
          type: imgclf.datasets.OptionalParquetDataset
          filepath: data/02_intermediate/image_scan.parquet
    """

    def load(self) -> pd.DataFrame:
        if not self._exists():
            return pd.DataFrame()
        return super().load()
