"""The box head: a second output beside the class probabilities, trained with them.

A variant whose ``output`` declares a box (see :mod:`imgclf.models.head`) ends in one
:class:`ClassAndBox` layer named ``predictions`` that returns ``{"class": probabilities,
"box": box}``: the class layer as without a box, and ``Dense(4, sigmoid)``, the box's
``x_min, y_min, x_max, y_max`` as fractions of the image (a sigmoid keeps each in 0 … 1,
where the boxes of the index lie). One layer returning both keeps the model's top level a
chain of layers, which Grad-CAM and the activation maps rely on
(:mod:`imgclf.evaluation.explain`).

**The loss** is ``class loss + loss_weight * box loss``. The box loss is smooth L1 on the
four fractions (Fast R-CNN's box loss; Huber's loss divided by its ``beta``): quadratic for
an edge within ``beta`` (0.1: a tenth of the image) of the true one, so the fit settles
smoothly near the target, and linear beyond, so that far-off boxes early in training pull
no harder than in proportion to their error and do not swamp the class loss. It is about
the mean edge error for large errors (0.2 at the start) against a cross-entropy of
ln(classes) (2.5 for 12 classes), hence the default ``loss_weight`` of 10: both heads
start with similar weight in the sum. :class:`BoxIoU` reports the mean intersection over
union of predicted and true boxes per epoch (``box_iou``, ``val_box_iou``).
"""

from __future__ import annotations

from typing import Any

import keras

BOX_UNITS = 4


@keras.saving.register_keras_serializable(package="imgclf")
class ClassAndBox(keras.layers.Layer):
    """Features -> ``{"class": Dense(units, activation), "box": Dense(4, sigmoid)}``,
    both float32 (probabilities and boxes stay float32 under mixed precision). The box's
    loss settings travel with the layer, so a loaded model is compiled as it was trained."""

    def __init__(
        self,
        units: int,
        activation: str,
        loss_weight: float,
        beta: float,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.units, self.activation = units, activation
        self.loss_weight, self.beta = loss_weight, beta
        self.class_layer = keras.layers.Dense(
            units, activation=activation, dtype="float32", name="class"
        )
        self.box_layer = keras.layers.Dense(
            BOX_UNITS, activation="sigmoid", dtype="float32", name="box"
        )

    def build(self, input_shape: tuple) -> None:
        self.class_layer.build(input_shape)
        self.box_layer.build(input_shape)

    def call(self, features: Any) -> dict[str, Any]:
        return {"class": self.class_layer(features), "box": self.box_layer(features)}

    def compute_output_shape(self, input_shape: tuple) -> dict[str, tuple]:
        return {"class": (input_shape[0], self.units), "box": (input_shape[0], BOX_UNITS)}

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "units": self.units,
            "activation": self.activation,
            "loss_weight": self.loss_weight,
            "beta": self.beta,
        }


def box_layer(model: keras.Model) -> ClassAndBox | None:
    """The model's :class:`ClassAndBox` output layer, or None for a classifier."""
    layer = model.layers[-1] if model.layers else None
    return layer if isinstance(layer, ClassAndBox) else None


def class_units(model: keras.Model) -> int:
    """The units of the model's class output (a box model's ``class`` head)."""
    layer = box_layer(model)
    return layer.units if layer is not None else model.output_shape[-1]


def box_loss(layer: ClassAndBox) -> tuple[keras.losses.Loss, float]:
    """The box loss of the layer's settings, and its weight in the sum."""
    return SmoothL1(beta=layer.beta), layer.loss_weight


@keras.saving.register_keras_serializable(package="imgclf")
class SmoothL1(keras.losses.Loss):
    """Smooth L1 per coordinate, averaged: ``0.5 x**2 / beta`` for ``|x| < beta``, else
    ``|x| - 0.5 beta`` (Huber's loss with ``delta = beta``, divided by ``beta``)."""

    def __init__(self, beta: float = 0.1, name: str = "smooth_l1", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.beta = beta

    def call(self, y_true: Any, y_pred: Any) -> Any:
        error = keras.ops.abs(keras.ops.cast(y_pred, "float32") - keras.ops.cast(y_true, "float32"))
        quadratic = 0.5 * keras.ops.square(error) / self.beta
        return keras.ops.mean(
            keras.ops.where(error < self.beta, quadratic, error - 0.5 * self.beta), axis=-1
        )

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "beta": self.beta}


@keras.saving.register_keras_serializable(package="imgclf")
class BoxIoU(keras.metrics.Metric):
    """The mean intersection over union of predicted and true boxes
    (``x_min, y_min, x_max, y_max``); a predicted box with min > max counts as empty."""

    def __init__(self, name: str = "iou", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.count = self.add_variable(shape=(), initializer="zeros", name="count")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        ops = keras.ops
        y_true, y_pred = ops.cast(y_true, "float32"), ops.cast(y_pred, "float32")
        width = ops.maximum(
            ops.minimum(y_true[:, 2], y_pred[:, 2]) - ops.maximum(y_true[:, 0], y_pred[:, 0]), 0.0
        )
        height = ops.maximum(
            ops.minimum(y_true[:, 3], y_pred[:, 3]) - ops.maximum(y_true[:, 1], y_pred[:, 1]), 0.0
        )
        intersection = width * height

        def area(box: Any) -> Any:
            return ops.maximum(box[:, 2] - box[:, 0], 0.0) * ops.maximum(box[:, 3] - box[:, 1], 0.0)

        union = area(y_true) + area(y_pred) - intersection
        iou = ops.where(union > 0, intersection / ops.maximum(union, 1e-12), 0.0)
        self.total.assign_add(ops.sum(iou))
        self.count.assign_add(ops.cast(ops.shape(iou)[0], "float32"))

    def result(self) -> Any:
        return self.total / keras.ops.maximum(self.count, 1.0)

    def reset_state(self) -> None:
        self.total.assign(0.0)
        self.count.assign(0.0)
