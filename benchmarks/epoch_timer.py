"""A Keras callback that times each epoch, for the benchmarks that train
(``train_input.py``, ``accelerators.py``). Not a benchmark itself."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def epoch_timer(report: Callable[[int, float], None] | None = None) -> Any:
    """A callback whose ``seconds`` lists each epoch's wall seconds; ``report(epoch,
    seconds)`` is called after each (epochs from 1). Keras is imported here, not at import."""
    import keras

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(round(time.perf_counter() - self.started, 3))
            if report is not None:
                report(epoch + 1, self.seconds[-1])

    return EpochTimer()
