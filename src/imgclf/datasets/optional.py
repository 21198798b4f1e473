"""``OptionalDataset``: any dataset, which loads as null while it does not exist."""

from __future__ import annotations

from typing import Any

from kedro.io import AbstractDataset


class OptionalDataset(AbstractDataset[Any, Any]):
    """Wraps any Kedro dataset: saving and ``exists()`` go to it, and ``load()`` returns
    None while it does not exist instead of failing. The training pipelines' models,
    configs and histories are kept through it, so that ``evaluate`` lists a declared
    variant that has not been trained yet as "not trained" and scores the others, and a
    fine-tune variant whose transfer model is missing says which pipeline to run.

    .. code-block:: yaml

        "{family}.{variant}.model":
          type: imgclf.datasets.OptionalDataset
          dataset:
            type: imgclf.datasets.KerasModelDataset
            filepath: data/06_models/{family}/{variant}/model.keras
    """

    def __init__(
        self, *, dataset: str | dict[str, Any], metadata: dict[str, Any] | None = None
    ) -> None:
        config = {"type": dataset} if isinstance(dataset, str) else dict(dataset)
        self._dataset = AbstractDataset.from_config("wrapped", config)
        self.metadata = metadata

    def load(self) -> Any:
        return self._dataset.load() if self._dataset.exists() else None

    def save(self, data: Any) -> None:
        self._dataset.save(data)

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _describe(self) -> dict[str, Any]:
        return {"dataset": type(self._dataset).__name__, **self._dataset._describe()}
