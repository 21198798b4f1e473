"""Pretrained backbones from ``keras.applications``, by name, built from a ``backbone`` block.

The block, with its defaults::

    backbone:
      name: resnet50      # any keras.applications model: ResNet50, MobileNet, MobileNetV2,
                          # MobileNetV3Small, EfficientNetV2B0, ConvNeXtTiny, DenseNet121, ...
      weights: imagenet   # imagenet | none (random initialisation) | path to a weights file
      cut_at: null        # where the backbone ends (S4, S2), one of:
                          #   a layer name, e.g. conv4_block6_out
                          #   {activation: N}: the N-th activation layer, counted from 1
                          #   {drop_last: N}: without its last N layers
      alpha: 0.35         # any other key: an argument of the model's constructor, e.g.
                          # MobileNet's and MobileNetV2's width multiplier alpha

A name is matched ignoring case, ``_`` and ``-``, so ``resnet50``, ``mobilenet_v2``,
``vgg16`` and ``efficientnet_b0`` name ``ResNet50``, ``MobileNetV2``, ``VGG16`` and
``EfficientNetB0``; a name Keras does not have is refused with the close matches.

``{activation: N}`` counts the backbone's activation layers (``Activation``, ``ReLU``
and the other activation layer types) in model order from 1. This is how Keras 2.2
numbered them (``activation_1`` ... ``activation_49`` in ResNet50): S4's "activation 37"
is ResNet50's ``conv4_block5_out``. ``{drop_last: N}`` counts the layers of the backbone
without its classification top (S2 cut "the last 4 layers").

``weights: imagenet`` downloads the weights into Keras' cache
(``$KERAS_HOME/models``, default ``~/.keras/models``) on first use and reads them
from there afterwards. Without a network, put the file Keras names there, or set
``weights`` to a file's path: a Keras ``.weights.h5`` file or the ``.h5`` file
``keras.applications`` downloads, for the backbone without its top (the whole
backbone, even with ``cut_at``). When the download fails,
:func:`build_backbone` raises :class:`BackboneWeightsUnavailable` saying this.

Each backbone expects its own pixel preprocessing (ResNet50 and VGG16: BGR with
the ImageNet means subtracted; MobileNet and MobileNetV2: [-1, 1]; EfficientNet: raw
pixels). :class:`BackbonePreprocessing` applies the ``preprocess_input`` of the
backbone's own ``keras.applications`` module inside the model, after repeating a
grayscale channel three times, so that a saved model takes raw [0, 255] pixels of the
project's colour mode.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import importlib
import inspect
import os
import re
import socket
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import keras

from imgclf.config import block_items
from imgclf.models import checks
from imgclf.variants import BACKBONE_KEYS, model_key

# constructor arguments the backbone block cannot set: the project sets or needs them so
RESERVED_ARGUMENTS = (
    "include_top",
    "weights",
    "input_tensor",
    "input_shape",
    "pooling",
    "classes",
    "classifier_activation",
    "name",
)
CUT_KEYS = ("activation", "drop_last")
ACTIVATION_LAYERS = (
    keras.layers.Activation,
    keras.layers.ReLU,
    keras.layers.LeakyReLU,
    keras.layers.PReLU,
    keras.layers.ELU,
    keras.layers.Softmax,
)
DOWNLOAD_TIMEOUT_SECONDS = 30
"""Seconds without progress after which a weights download is given up."""


@dataclasses.dataclass(frozen=True)
class BackboneSpec:
    """How to build one backbone: its ``keras.applications`` constructor and its own
    ``preprocess_input``."""

    name: str
    constructor: Callable[..., keras.Model]
    preprocess_input: Callable[[Any], Any]


@functools.cache
def _applications() -> dict[str, str]:
    """``keras.applications``' model constructors, by their matching key."""
    return {
        model_key(name): name
        for name in dir(keras.applications)
        if name[:1].isupper() and callable(getattr(keras.applications, name))
    }


def backbone_names() -> list[str]:
    """The names of every ``keras.applications`` model."""
    return sorted(_applications().values())


def backbone_spec(name: str) -> BackboneSpec:
    """The ``keras.applications`` model called ``name`` (case, ``_`` and ``-`` ignored).

    Raises:
        ValueError: for a name Keras does not have (the message lists the close matches).
    """
    applications = _applications()
    if not isinstance(name, str) or model_key(name) not in applications:
        close = difflib.get_close_matches(model_key(str(name)), applications, n=4, cutoff=0.6)
        suggestion = (
            f"did you mean {', '.join(applications[key] for key in close)}?"
            if close
            else f"the models are: {', '.join(backbone_names())}"
        )
        raise ValueError(f"backbone.name={name!r} is not a keras.applications model; {suggestion}")
    canonical = applications[model_key(name)]
    constructor = getattr(keras.applications, canonical)
    module = importlib.import_module(constructor.__module__)
    return BackboneSpec(canonical, constructor, module.preprocess_input)


@dataclasses.dataclass(frozen=True)
class BackboneConfig:
    """A validated ``backbone`` block: ``weights`` is ``"imagenet"``, None or a path;
    ``arguments`` the constructor's other arguments (``{"alpha": 0.35}``)."""

    name: str = "resnet50"
    weights: str | None = "imagenet"
    cut_at: str | dict[str, int] | None = None
    arguments: Mapping[str, Any] = dataclasses.field(default_factory=dict)

    def to_parameters(self) -> dict[str, Any]:
        """The block as plain parameters (the arguments beside the other keys)."""
        return {"name": self.name, "weights": self.weights, "cut_at": self.cut_at, **self.arguments}


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
    if not isinstance(backbone, Mapping):
        raise ValueError(f"backbone must be a mapping; got {backbone!r}")
    name = backbone.get("name", BackboneConfig.name)
    spec = backbone_spec(name)
    backbone = block_items(backbone, (*BACKBONE_KEYS, *constructor_arguments(spec)), "backbone")
    arguments = {key: value for key, value in backbone.items() if key not in BACKBONE_KEYS}
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
    cut_at = _parse_cut(backbone.get("cut_at"))
    return BackboneConfig(name=name, weights=weights, cut_at=cut_at, arguments=arguments)


def constructor_arguments(spec: BackboneSpec) -> list[str]:
    """The arguments of the backbone's constructor that its block may set (not those in
    :data:`RESERVED_ARGUMENTS`): e.g. ``alpha`` for MobileNet and MobileNetV2."""
    return [
        argument
        for argument in inspect.signature(spec.constructor).parameters
        if argument not in RESERVED_ARGUMENTS
    ]


def _parse_cut(cut_at: Any) -> str | dict[str, int] | None:
    if cut_at is None or (isinstance(cut_at, str) and cut_at):
        return cut_at
    if isinstance(cut_at, Mapping):
        # a variant's cut_at merges over the shared block's: null removes a key
        cut = {
            key: value
            for key, value in block_items(cut_at, CUT_KEYS, "backbone.cut_at").items()
            if value is not None
        }
        if len(cut) == 1:
            ((key, value),) = cut.items()
            return {key: checks.positive_int(value, key, "backbone.cut_at")}
        if len(cut) == 2:
            raise ValueError(
                f"backbone.cut_at={dict(cut_at)!r} gives both activation and drop_last; keep "
                "one (a variant's cut_at is merged over the shared backbone's: set the other "
                "to null)"
            )
    raise ValueError(
        "backbone.cut_at must be a layer name, {activation: N} (the N-th activation layer), "
        f"{{drop_last: N}} (without the last N layers) or null; got {cut_at!r}"
    )


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
                **config.arguments,
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
    return keras.Model(model.input, _cut_output(model, config), name="backbone")


def cut_layer(model: keras.Model, cut_at: str | Mapping[str, int]) -> str:
    """The name of the layer where ``cut_at`` ends ``model`` (see the module docstring).

    Raises:
        ValueError: for a layer name the model does not have, or a number past its end.
    """
    layers = [layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
    where = f"backbone.cut_at={cut_at!r}"
    if isinstance(cut_at, str):
        if cut_at not in {layer.name for layer in layers}:
            raise ValueError(
                f"{where}: {model.name} has no such layer; its last layers are "
                f"{', '.join(layer.name for layer in layers[-5:])}"
            )
        return cut_at
    ((kind, number),) = cut_at.items()
    if kind == "activation":
        activations = [layer.name for layer in layers if isinstance(layer, ACTIVATION_LAYERS)]
        if number > len(activations):
            raise ValueError(f"{where}: {model.name} has {len(activations)} activation layers")
        return activations[number - 1]
    if number >= len(layers):
        raise ValueError(
            f"{where}: {model.name} has {len(layers)} layers (its input aside); drop fewer"
        )
    return layers[-number - 1].name


def _cut_output(model: keras.Model, config: BackboneConfig) -> Any:
    if config.cut_at is None:
        return model.output
    return model.get_layer(cut_layer(model, config.cut_at)).output


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
