"""Where and in what precision a model trains: the ``training`` block's ``distribute`` and
``precision`` (its ``jit_compile`` goes to ``model.compile``, see
:func:`imgclf.training.fit.compile_model`).

A variant's train node (:func:`imgclf.pipelines.family.on_accelerator`) and each tuning
trial build their model and train it inside :func:`accelerated`, because Keras fixes both
when a layer is created: its variables belong to the distribution strategy whose scope is
open, and its computations use the dtype policy in force.

- ``distribute: mirrored``: ``tf.distribute.MirroredStrategy`` with one replica per visible
  GPU (``CUDA_VISIBLE_DEVICES`` chooses them); on a machine without a GPU, one per logical
  CPU device (one, unless the process configured more). ``batch_size`` stays the global
  batch: each step, every replica takes ``batch_size / replicas`` of its images and their
  gradients make one update, so a run's learning rate and batch size mean what they mean
  on one device.
- ``precision: mixed_float16 | mixed_bfloat16``: Keras' mixed precision policy; variables
  stay float32, the output layers compute in float32, and with ``mixed_float16`` Keras
  wraps the optimizer in a ``LossScaleOptimizer``. The saved model keeps its layers'
  policies, so it predicts in the precision it was trained in.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from imgclf.lazy import lazy_module
from imgclf.training.config import TrainingConfig, parse_training_config

keras = lazy_module("keras")
tf = lazy_module("tensorflow")

_LOGGER = logging.getLogger(__name__)


@contextlib.contextmanager
def accelerated(training: TrainingConfig | Mapping[str, Any]) -> Iterator[None]:
    """Within: models are created and trained as ``training.distribute`` and
    ``training.precision`` say; the previous dtype policy is back afterwards."""
    training = parse_training_config(training)
    strategy = _strategy(training.distribute)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(training.precision)
    try:
        with strategy.scope():
            yield
    finally:
        keras.config.set_dtype_policy(previous)


def _strategy(distribute: str) -> tf.distribute.Strategy:
    if distribute == "none":
        return tf.distribute.get_strategy()  # the default: no distribution
    devices = [device.name for device in tf.config.list_logical_devices("GPU")] or [
        device.name for device in tf.config.list_logical_devices("CPU")
    ]
    strategy = tf.distribute.MirroredStrategy(devices)
    _LOGGER.info(
        "Training on %d replica(s) (MirroredStrategy over %s)",
        strategy.num_replicas_in_sync,
        ", ".join(devices),
    )
    return strategy
