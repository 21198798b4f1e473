"""Pretrained backbones from ``keras.applications``, by name, built from a ``backbone`` block.

The block, with its defaults::

    backbone:
      name: resnet50      # resnet50 | mobilenet_v2 | vgg16 | efficientnet_b0 | any registered
      weights: imagenet   # imagenet | none (random initialisation) | path to a weights file
      cut_at: null        # a layer name: the backbone ends at that layer's output (S4)

``weights: imagenet`` downloads the weights into Keras' cache
(``$KERAS_HOME/models``, default ``~/.keras/models``) on first use and reads them
from there afterwards. Without a network, put the file Keras names there, or set
``weights`` to a file's path: a Keras ``.weights.h5`` file or the ``.h5`` file
``keras.applications`` downloads, for the backbone without its top (the whole
backbone, even with ``cut_at``). When the download fails,
:func:`build_backbone` raises :class:`BackboneWeightsUnavailable` saying this.

Each backbone expects its own pixel preprocessing (ResNet50 and VGG16: BGR with
the ImageNet means subtracted; MobileNetV2: [-1, 1]; EfficientNet: raw pixels).
:class:`BackbonePreprocessing` applies the backbone's own ``preprocess_input``
inside the model, after repeating a grayscale channel three times, so that a
saved model takes raw [0, 255] pixels of the project's colour mode.

Add any other ``keras.applications`` model with :func:`register_backbone`, e.g.::

    register_backbone(
        "densenet121",
        keras.applications.DenseNet121,
        keras.applications.densenet.preprocess_input,
    )

(in a module your pipelines import, such as ``settings.py``, so that models
using it also load).
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import keras

from imgclf.config import block_items

BACKBONE_KEYS = ("name", "weights", "cut_at")
DOWNLOAD_TIMEOUT_SECONDS = 30
"""Seconds without progress after which a weights download is given up."""


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone: its ``keras.applications`` constructor and its own
    ``preprocess_input``."""

    constructor: Callable[..., keras.Model]
    preprocess_input: Callable[[Any], Any]


_REGISTRY: dict[str, BackboneSpec] = {}


def register_backbone(
    name: str,
    constructor: Callable[..., keras.Model],
    preprocess_input: Callable[[Any], Any],
) -> None:
    """Make a ``keras.applications`` model (or any constructor taking ``include_top``,
    ``weights`` and ``input_shape``) available as ``backbone.name: <name>``."""
    _REGISTRY[name] = BackboneSpec(constructor, preprocess_input)


def backbone_names() -> list[str]:
    """Names of the registered backbones."""
    return sorted(_REGISTRY)


def backbone_spec(name: str) -> BackboneSpec:
    """The registered backbone called ``name``.

    Raises:
        ValueError: for an unregistered name (the message lists the registered ones).
    """
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"backbone.name must be one of {', '.join(backbone_names())}; got {name!r} "
            "(imgclf.models.backbones.register_backbone adds others)"
        ) from None


register_backbone(
    "resnet50", keras.applications.ResNet50, keras.applications.resnet50.preprocess_input
)
register_backbone(
    "mobilenet_v2",
    keras.applications.MobileNetV2,
    keras.applications.mobilenet_v2.preprocess_input,
)
register_backbone("vgg16", keras.applications.VGG16, keras.applications.vgg16.preprocess_input)
register_backbone(
    "efficientnet_b0",
    keras.applications.EfficientNetB0,
    keras.applications.efficientnet.preprocess_input,
)


@dataclasses.dataclass(frozen=True)
class BackboneConfig:
    """A validated ``backbone`` block: ``weights`` is ``"imagenet"``, None or a path."""

    name: str = "resnet50"
    weights: str | None = "imagenet"
    cut_at: str | None = None

    def to_parameters(self) -> dict[str, Any]:
        """The block as plain parameters."""
        return dataclasses.asdict(self)


class BackboneWeightsUnavailable(RuntimeError):
    """The ImageNet weights could not be downloaded (e.g. no network)."""


def parse_backbone(backbone: Mapping[str, Any] | BackboneConfig | None) -> BackboneConfig:
    """Validate a ``backbone`` block (None: the defaults).

    ``weights`` may be ``imagenet``, ``none`` / ``null`` or a path; a path must exist.

    Raises:
        ValueError: for unknown keys, an unregistered name or a missing weights file.
    """
    if isinstance(backbone, BackboneConfig):
        return backbone
    backbone = {} if backbone is None else backbone
    backbone = block_items(backbone, BACKBONE_KEYS, "backbone")
    name = backbone.get("name", BackboneConfig.name)
    backbone_spec(name)
    weights = backbone.get("weights", BackboneConfig.weights)
    if weights is None or (isinstance(weights, str) and weights.lower() in ("none", "null")):
        weights = None
    elif not isinstance(weights, str | os.PathLike) or not str(weights):
        raise ValueError(
            f"backbone.weights must be imagenet, none or the path of a weights file; "
            f"got {weights!r}"
        )
    elif weights != "imagenet":
        weights = str(weights)
        if not Path(weights).is_file():
            raise ValueError(
                f"backbone.weights: there is no weights file at {weights!r} "
                f"(resolved to {Path(weights).resolve()}); set it to imagenet, none or an "
                "existing file"
            )
    cut_at = backbone.get("cut_at")
    if cut_at is not None and (not isinstance(cut_at, str) or not cut_at):
        raise ValueError(f"backbone.cut_at must be a layer name or null; got {cut_at!r}")
    return BackboneConfig(name=name, weights=weights, cut_at=cut_at)


@keras.saving.register_keras_serializable(package="imgclf")
class BackbonePreprocessing(keras.layers.Layer):
    """Raw [0, 255] pixels -> what the backbone expects: one grey channel repeated to
    three, then the backbone's own ``preprocess_input``."""

    def __init__(self, backbone: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        self._preprocess_input = backbone_spec(backbone).preprocess_input

    def call(self, images: Any) -> Any:
        if images.shape[-1] == 1:
            images = keras.ops.repeat(images, 3, axis=-1)
        return self._preprocess_input(images)

    def compute_output_shape(self, input_shape: tuple) -> tuple:
        return (*input_shape[:-1], 3)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "backbone": self.backbone}


def build_backbone(
    backbone: Mapping[str, Any] | BackboneConfig, *, image_size: tuple[int, int]
) -> keras.Model:
    """The backbone without its top, named ``backbone``, taking preprocessed 3-channel
    images of ``image_size`` (height, width); its layers are trainable (freeze it yourself).

    Random initialisation follows Keras' global seed (``keras.utils.set_random_seed``).

    Raises:
        BackboneWeightsUnavailable: ImageNet weights were asked for and could not be
            downloaded; the message says how to provide them offline.
        ValueError: for a bad block, an image too small for the backbone, a weights file
            that does not fit, or a ``cut_at`` layer the backbone does not have.
    """
    config = parse_backbone(backbone)
    spec = backbone_spec(config.name)
    input_shape = (*image_size, 3)
    try:
        with _download_timeout(DOWNLOAD_TIMEOUT_SECONDS):
            model = spec.constructor(
                include_top=False,
                weights="imagenet" if config.weights == "imagenet" else None,
                input_shape=input_shape,
            )
    except Exception as error:
        if config.weights == "imagenet" and "URL fetch failure" in str(error):
            raise BackboneWeightsUnavailable(_offline_message(config.name, str(error))) from error
        if isinstance(error, ValueError):
            raise ValueError(f"backbone {config.name!r} at {input_shape}: {error}") from error
        raise
    if config.weights not in (None, "imagenet"):
        try:
            model.load_weights(config.weights)
        except (ValueError, OSError, KeyError) as error:
            raise ValueError(
                f"backbone.weights={config.weights!r}: could not load the weights of "
                f"{config.name} (without its top) from it: {error}"
            ) from error
    output = model.output
    if config.cut_at is not None:
        try:
            output = model.get_layer(config.cut_at).output
        except ValueError:
            raise ValueError(
                f"backbone.cut_at={config.cut_at!r}: {config.name} has no such layer; its "
                f"last layers are {', '.join(layer.name for layer in model.layers[-5:])}"
            ) from None
    return keras.Model(model.input, output, name="backbone")


def _offline_message(name: str, error: str) -> str:
    url = re.search(r"https?://\S+?(?=:\s|$)", error)
    file_name = url.group(0).rsplit("/", 1)[-1] if url else "the file named above"
    keras_home = os.environ.get("KERAS_HOME", os.path.join(os.path.expanduser("~"), ".keras"))
    return (
        f"backbone.weights is 'imagenet' but the ImageNet weights of {name} could not be "
        f"downloaded ({error}). Without a network: on a machine that has one, download "
        f"{url.group(0) if url else 'the file'} and put {file_name} in "
        f"{os.path.join(keras_home, 'models')} (Keras reads it from there), or set "
        f"backbone.weights to its path, e.g. --params backbone.weights=data/{file_name}; "
        "or train from random weights with --params backbone.weights=none."
    )


@contextlib.contextmanager
def _download_timeout(seconds: float) -> Iterator[None]:
    """A socket timeout while a backbone downloads its weights, unless one is set, so that a
    network that drops connections fails in seconds instead of hanging."""
    previous = socket.getdefaulttimeout()
    if previous is None:
        socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
