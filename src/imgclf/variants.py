"""The variants an environment declares, read from its parameters.

Every key of a family's parameter block (``scratch_cnn``, ``transfer``, ``finetune``) other
than its reserved ones (``defaults``; ``features`` for transfer) is a variant, e.g.::

    transfer:
      defaults: {...}           # what every transfer variant shares
      adam: {}                  # the defaults as they are
      mobilenet:                # a variant writes only what differs from the defaults
        backbone: {name: mobilenet_v2}
        head: {pooling: global_average}
      adam_aug: null            # removes a variant that base declares

What a variant is follows from its parameters, never from a table in Python:

- it is **tuned** when it has a ``tuning`` block (an Optuna study first, then the best
  trial trained as the variant);
- a transfer variant **trains on cached features** when nothing the backbone sees can
  change between epochs or trials: no ``training.augmentation``, and no search-space
  target under ``backbone``, ``image`` or ``training.augmentation``, and no box output
  (the caches hold no boxes). Otherwise its images go
  through the frozen backbone every epoch. Variants with the same backbone configuration
  (name, weights, cut, image size and colour mode) share one feature cache;
- a fine-tune variant **starts from** the transfer variant named by ``from`` (default: the
  one of its own name);
- a variant with a ``sweep`` (arm name -> overrides of the variant) is a template: each arm
  is a variant of its own, named ``<variant>_<arm>``, and the arms are compared in
  ``evaluate``. An arm ``as_declared: {}`` trains the variant unchanged.

:func:`declare_variants` reads all of this once (the pipeline registry builds one
namespaced pipeline per :class:`Variant`); the nodes then resolve and validate every
parameter of their variant at run time.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

FAMILIES = ("scratch_cnn", "transfer", "finetune", "baseline")
RESERVED = {
    "scratch_cnn": ("defaults",),
    "transfer": ("defaults", "features"),
    "finetune": ("defaults",),
    "baseline": ("defaults",),
}
NETWORK_FAMILIES = ("scratch_cnn", "transfer", "finetune")
IMAGES, FEATURES = "images", "features"
# The backbone block's own keys; any other key is an argument of the model's constructor.
BACKBONE_KEYS = ("name", "weights", "cut_at")
# Search-space targets under these change what the frozen backbone computes.
BACKBONE_INPUTS = ("backbone", "image", "training.augmentation")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class Variant:
    """One declared variant of a family, as the pipelines build it.

    Attributes:
        family: ``scratch_cnn``, ``transfer``, ``finetune`` or ``baseline`` (a
            scikit-learn classifier, :mod:`imgclf.evaluation.baseline`).
        name: the variant's name in its family (``deep``; ``augmentation_rotation`` for
            the arm ``rotation`` of the variant ``augmentation``).
        tuned: whether an Optuna study over its ``tuning.search_space`` runs first.
        trains_on: ``images``, or ``features`` (transfer: the cached backbone features).
        features: the name of its feature cache (``features`` variants), see
            :func:`feature_cache_name`.
        start: fine-tune variants: the transfer variant they start from.
        declared: the key of its parameter block (``augmentation`` for the arms of
            ``augmentation``'s sweep).
        arm: the sweep arm it is, or None.
    """

    family: str
    name: str
    tuned: bool = False
    trains_on: str = IMAGES
    features: str | None = None
    start: str | None = None
    declared: str = ""
    arm: str | None = None

    @property
    def namespace(self) -> str:
        """``<family>.<name>``: its Kedro namespace and the prefix of its datasets."""
        return f"{self.family}.{self.name}"

    @property
    def network(self) -> bool:
        """Whether it is a Keras network (every family but ``baseline``)."""
        return self.family in NETWORK_FAMILIES

    @property
    def sweep(self) -> str | None:
        """``<family>.<declared>`` for a sweep arm: the sweep it belongs to."""
        return f"{self.family}.{self.declared}" if self.arm is not None else None


def declare_variants(parameters: Mapping[str, Any]) -> list[Variant]:
    """Every variant the parameters declare, family by family, in declaration order.

    Args:
        parameters: the environment's whole parameter tree (``image``, ``backbone`` and
            the family blocks).

    Raises:
        ValueError: for a variant block that is not a mapping, a bad name or sweep, a
            family block without ``defaults``, or a fine-tune variant whose ``from`` is not
            a declared transfer variant. The message names the key and the fix.
    """
    variants: list[Variant] = []
    for family in FAMILIES:
        for name, declared, arm, merged in _expand(family, parameters.get(family)):
            variant = Variant(family=family, name=name, declared=declared, arm=arm)
            variants.append(_describe(variant, merged, parameters, variants))
    names = [variant.namespace for variant in variants]
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise ValueError(
            f"variant name(s) declared twice: {', '.join(twice)} (a sweep arm is named "
            "<variant>_<arm>): rename the variant or the arm"
        )
    return variants


def variant_blocks(
    defaults: Mapping[str, Any] | None,
    own: Mapping[str, Any] | None,
    arm: str | None,
    *,
    name: str,
) -> dict[str, Any]:
    """The variant's parameters: ``defaults``, then its own block (without its ``sweep``),
    then the overrides of sweep arm ``arm``, merged key by key (lists are replaced).

    Raises:
        ValueError: if ``arm`` is not an arm of the block's sweep.
    """
    own = dict(own or {})
    sweep = own.pop("sweep", None) or {}
    merged = merge_parameters(defaults or {}, own)
    if arm is None:
        return merged
    if arm not in sweep:
        raise ValueError(f"{name}: no sweep arm {arm!r} in its parameters")
    return merge_parameters(merged, sweep[arm] or {})


def merge_parameters(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` with ``overrides`` merged in, key by key at every depth.

    A variant's parameter block writes only what differs from the shared defaults.
    Mappings merge recursively; any other value (lists and null included) replaces the
    default. Neither input is changed.
    """
    merged = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge_parameters(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def variant_backbone(
    shared: Mapping[str, Any] | None, own: Mapping[str, Any] | None
) -> dict[str, Any]:
    """A transfer variant's backbone block: its own keys over the project's ``backbone``.
    A variant that names another model keeps the shared ``weights`` and ``cut_at`` but not
    the shared model's constructor arguments (MobileNet's ``alpha`` means nothing to VGG16)."""
    shared, own = dict(shared or {}), dict(own or {})
    if "name" in own and model_key(own["name"]) != model_key(shared.get("name", "")):
        shared = {key: value for key, value in shared.items() if key in BACKBONE_KEYS}
    return {**shared, **own}


def model_key(name: Any) -> str:
    """A model's name as matched: ``mobilenet_v2`` and ``MobileNetV2`` are one model."""
    return str(name).lower().replace("_", "").replace("-", "")


def feature_cache_name(backbone: Mapping[str, Any], image: Mapping[str, Any]) -> str:
    """A readable, unique name for the features of one backbone configuration:
    ``resnet50_64px_auto_1a2b3c4d`` (the digest covers name, weights, cut and image)."""
    size = image.get("size")
    pixels = f"{size[0]}x{size[1]}" if isinstance(size, Sequence) else f"{size}"
    key = json.dumps(
        {"backbone": dict(backbone), "size": size, "color_mode": image.get("color_mode")},
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(key.encode()).hexdigest()[:8]
    return f"{backbone.get('name')}_{pixels}px_{image.get('color_mode')}_{digest}"


def _expand(family: str, block: Any) -> list[tuple[str, str, str | None, dict[str, Any]]]:
    """``(name, declared key, arm, merged parameters)`` of every variant in ``block``."""
    if block is None:
        return []
    if not isinstance(block, Mapping):
        raise ValueError(f"parameters {family} must be a mapping of variants; got {block!r}")
    declared = [key for key in block if key not in RESERVED[family] and block[key] is not None]
    if declared and "defaults" not in block:
        raise ValueError(f"parameters {family}.defaults is missing: add `defaults: {{}}`")
    found = []
    for key in declared:
        where = f"{family}.{key}"
        _check_name(key, where)
        own = block[key]
        if not isinstance(own, Mapping):
            raise ValueError(
                f"parameters {where} must be a mapping of the variant's parameters "
                f"({{}} for the defaults as they are), or null to remove it; got {own!r}"
            )
        sweep = own.get("sweep")
        if sweep is None:
            found.append((key, key, None, variant_blocks(block["defaults"], own, None, name=where)))
            continue
        if not isinstance(sweep, Mapping) or not sweep:
            raise ValueError(
                f"parameters {where}.sweep must map arm names to overrides of the variant, e.g. "
                f"{{rotation: {{training: {{augmentation: {{rotation: 0.1}}}}}}}}; got {sweep!r}"
            )
        for arm, overrides in sweep.items():
            _check_name(str(arm), f"{where}.sweep.{arm}")
            if overrides is not None and not isinstance(overrides, Mapping):
                raise ValueError(
                    f"parameters {where}.sweep.{arm} must be a mapping of overrides; "
                    f"got {overrides!r}"
                )
            if "sweep" in (overrides or {}):
                raise ValueError(f"parameters {where}.sweep.{arm}: an arm cannot sweep again")
            merged = variant_blocks(block["defaults"], own, str(arm), name=where)
            found.append((f"{key}_{arm}", key, str(arm), merged))
    return found


def _describe(
    variant: Variant,
    merged: Mapping[str, Any],
    parameters: Mapping[str, Any],
    earlier: Sequence[Variant],
) -> Variant:
    """``variant`` with what its merged parameters say: tuned, what it trains on, its start."""
    tuning = merged.get("tuning")
    variant = dataclasses.replace(variant, tuned=tuning is not None)
    family, declared = variant.family, variant.declared
    if family == "transfer":
        image = merge_parameters(parameters.get("image") or {}, merged.get("image") or {})
        backbone = variant_backbone(parameters.get("backbone"), merged.get("backbone"))
        if _on_features(merged, tuning):
            return dataclasses.replace(
                variant, trains_on=FEATURES, features=feature_cache_name(backbone, image)
            )
    if family == "finetune":
        start = merged.get("from", declared)
        transfer = [v.name for v in earlier if v.family == "transfer"]
        if start not in transfer:
            raise ValueError(
                f"parameters finetune.{declared}: from {start!r} is not a transfer variant of "
                f"this environment (declared: {', '.join(transfer) or 'none'}); set "
                "`from: <transfer variant>`"
            )
        return dataclasses.replace(variant, start=start)
    return variant


def _on_features(merged: Mapping[str, Any], tuning: Any) -> bool:
    from imgclf.imaging.augment import parse_augmentation

    augmentation = (merged.get("training") or {}).get("augmentation")
    if not parse_augmentation(augmentation).is_identity:
        return False
    output = merged.get("output")
    if isinstance(output, Mapping) and output.get("box") not in (None, False):
        return False  # the feature caches hold no boxes
    space = (tuning or {}).get("search_space") or {}
    targets = []
    for setting in space.values():
        target = (setting or {}).get("target") if isinstance(setting, Mapping) else None
        targets += [target] if isinstance(target, str) else list(target or [])
    return not any(
        target == prefix or str(target).startswith(f"{prefix}.")
        for target in targets
        for prefix in BACKBONE_INPUTS
    )


def _check_name(name: str, where: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"parameters {where}: {name!r} is not a valid variant name: use letters, digits "
            "and underscores, starting with a letter (it becomes a Kedro namespace)"
        )
