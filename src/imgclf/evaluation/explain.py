"""What a model looks at: Grad-CAM heat maps, convolution activation maps and the pooled
activations of the last convolution.

A layer is named by its *path*: ``("block3_conv1",)`` for a layer of the model itself,
``("backbone", "conv5_block3_3_conv")`` for a layer inside a nested model such as the
frozen backbone of a transfer model. A naive ``keras.Model(model.input,
backbone_layer.output)`` fails on such a layer ("Graph disconnected"): the nested model's
layers belong to its own graph. :func:`probe` therefore runs the outer model layer by
layer and the nested model as one sub-model that also returns the probed layer, which
works for any model whose top level is a chain (every scratch CNN and transfer model
here) and any functional model nested one level down.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

LayerPath = tuple[str, ...]
Probe = Callable[[tf.Tensor], tuple[tf.Tensor, tf.Tensor]]


CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D)
POOLINGS = (
    keras.layers.MaxPooling2D,
    keras.layers.AveragePooling2D,
    keras.layers.GlobalMaxPooling2D,
    keras.layers.GlobalAveragePooling2D,
)


def layer_paths(model: keras.Model) -> list[tuple[LayerPath, keras.layers.Layer]]:
    """Every layer with its path, in the order the model applies them, looking one level
    into nested models (a nested model stands for its own layers)."""
    paths: list[tuple[LayerPath, keras.layers.Layer]] = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            paths += [
                ((layer.name, inner.name), inner)
                for inner in layer.layers
                if not isinstance(inner, keras.Model)
            ]
        else:
            paths.append(((layer.name,), layer))
    return paths


def conv_layer_paths(model: keras.Model) -> list[LayerPath]:
    """The path of every ``Conv2D`` layer (depthwise and separable ones included), in
    the order the model applies them, looking one level into nested models."""
    return [path for path, layer in layer_paths(model) if isinstance(layer, CONVOLUTIONS)]


def first_and_last_conv(model: keras.Model) -> tuple[LayerPath, LayerPath]:
    """The paths of the first and the last convolution layer.

    Raises:
        ValueError: if the model has no convolution layer.
    """
    paths = conv_layer_paths(model)
    if not paths:
        raise ValueError(f"model {model.name!r} has no Conv2D layer to explain")
    return paths[0], paths[-1]


def pooling_after(model: keras.Model, path: LayerPath) -> LayerPath | None:
    """The pooling layer (max, average or global) that pools the output of the layer at
    ``path``: the first one after it, unless a flatten, dense or convolution layer comes
    first; None when nothing pools that output."""
    paths = layer_paths(model)
    start = [found for found, _ in paths].index(path)
    for found, layer in paths[start + 1 :]:
        if isinstance(layer, POOLINGS):
            return found
        if isinstance(layer, (*CONVOLUTIONS, keras.layers.Flatten, keras.layers.Dense)):
            return None
    return None


def parse_layer_path(model: keras.Model, path: str) -> LayerPath:
    """``"backbone/conv4_block6_3_conv"`` (or a top-level ``"block2_conv1"``) as a layer path.

    Raises:
        ValueError: if the path names no layer of ``model``.
    """
    parts = tuple(str(path).split("/"))
    try:
        _layer(model, parts)
    except ValueError:
        known = ", ".join("/".join(found) for found in conv_layer_paths(model)[-5:])
        raise ValueError(
            f"model {model.name!r} has no layer {path!r}; its last convolution layers are: {known}"
        ) from None
    return parts


def map_size(model: keras.Model, path: LayerPath) -> tuple[int, int]:
    """Height and width of the output of the layer at ``path``."""
    shape = _layer(model, path).output.shape
    return int(shape[1]), int(shape[2])


def grad_cam_layer(model: keras.Model, min_map_size: int) -> LayerPath:
    """The last convolution layer whose output is at least ``min_map_size`` pixels high and
    wide (a 2x2 map says little about where the model looks); the last convolution layer
    when none is that large.

    Raises:
        ValueError: if the model has no convolution layer.
    """
    paths = conv_layer_paths(model)
    if not paths:
        raise ValueError(f"model {model.name!r} has no Conv2D layer to explain")
    large = [path for path in paths if min(map_size(model, path)) >= min_map_size]
    return large[-1] if large else paths[-1]


def _layer(model: keras.Model, path: LayerPath) -> keras.layers.Layer:
    layer: keras.layers.Layer = model
    for name in path:
        if not isinstance(layer, keras.Model):
            raise ValueError(f"layer {layer.name!r} is not a model with layers of its own")
        layer = layer.get_layer(name)
    return layer


def probe(model: keras.Model, path: LayerPath) -> Probe:
    """A function ``images -> (activations of the layer at path, class probabilities)``,
    differentiable, running the model in inference mode (a model with a class and a box
    output gives its class probabilities).

    Raises:
        ValueError: if ``path`` names no layer, or nests deeper than one model.
    """
    if len(path) == 1:
        layer = model.get_layer(path[0])
        both = keras.Model(model.inputs, [layer.output, _class_output(model.output)])
        return lambda images: tuple(both(images, training=False))
    if len(path) != 2:
        raise ValueError(f"layer path {path!r}: only one level of nested models is supported")
    outer_name, inner_name = path
    nested = model.get_layer(outer_name)
    if not isinstance(nested, keras.Model):
        raise ValueError(f"layer {outer_name!r} of model {model.name!r} is not a nested model")
    inner = keras.Model(nested.inputs, [nested.get_layer(inner_name).output, nested.output])
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]

    def run(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        values, activations = images, None
        for layer in layers:
            if layer is nested:
                activations, values = inner(values, training=False)
            else:
                values = layer(values, training=False)
        return activations, _class_output(values)

    return _checked_chain(model, run, path)


def _class_output(outputs: Any) -> Any:
    """The class probabilities of a model's outputs (``outputs["class"]`` for a model
    that also returns a box)."""
    return outputs["class"] if isinstance(outputs, dict) else outputs


def _checked_chain(model: keras.Model, run: Probe, path: LayerPath) -> Probe:
    """``run``, checked once (on its first call) to give the model's own output: running
    layer by layer is only right for a model whose layers form a chain."""
    checked = False

    def checked_run(images: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        nonlocal checked
        activations, probabilities = run(images)
        if not checked:
            expected = _class_output(model(images, training=False))
            if not np.allclose(np.asarray(probabilities), np.asarray(expected), atol=1e-4):
                raise ValueError(
                    f"cannot reach layer {'/'.join(path)} of model {model.name!r}: its top "
                    "level is not a chain of layers, so it cannot be run layer by layer"
                )
            checked = True
        return activations, probabilities

    return checked_run


def grad_cam(
    model: keras.Model,
    images: np.ndarray,
    path: LayerPath,
    class_ids: Sequence[int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM heat maps (Selvaraju et al., 2017) of the layer at ``path``.

    Each channel of the layer is weighted by the mean gradient of the class probability
    over it; the weighted sum, with negative values cut to 0, is scaled to [0, 1] per image.

    Args:
        images: a batch ``(n, height, width, channels)`` of raw [0, 255] pixels.
        class_ids: the class to explain per image; default the predicted one.

    Returns:
        The heat maps ``(n, h, w)`` at the layer's resolution, and the probabilities
        ``(n, classes)``.
    """
    run = probe(model, path)
    inputs = tf.convert_to_tensor(images, dtype=tf.float32)
    with tf.GradientTape() as tape:
        activations, probabilities = run(inputs)
        if probabilities.shape[-1] == 1:  # one sigmoid unit: P(class 1)
            probabilities = tf.concat([1 - probabilities, probabilities], axis=1)
        chosen = (
            tf.argmax(probabilities, axis=1, output_type=tf.int32)
            if class_ids is None
            else tf.constant(class_ids, dtype=tf.int32)
        )
        scores = tf.gather(probabilities, chosen, axis=1, batch_dims=1)
    gradients = tape.gradient(scores, activations)
    if gradients is None:
        raise ValueError(f"the output of model {model.name!r} does not depend on {'/'.join(path)}")
    weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
    heat = tf.nn.relu(tf.reduce_sum(weights * activations, axis=-1)).numpy()
    peak = heat.max(axis=(1, 2), keepdims=True)
    heat = np.divide(heat, peak, out=np.zeros_like(heat), where=peak > 0)
    return heat, np.asarray(probabilities)


def activations(model: keras.Model, images: np.ndarray, path: LayerPath) -> np.ndarray:
    """The output ``(n, h, w, channels)`` of the layer at ``path`` for a batch of raw images
    (``(n, channels)`` for a global pooling layer)."""
    layer_output, _ = probe(model, path)(tf.convert_to_tensor(images, dtype=tf.float32))
    return np.asarray(layer_output)
