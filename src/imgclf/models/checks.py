"""Validation of parameter dicts shared by the model builders: each check raises a
``ValueError`` that names the setting and says what it must be."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from imgclf.lazy import lazy_module

keras = lazy_module("keras")


def non_empty_list(value: Any, where: str) -> Sequence[Any]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{where} must be a non-empty list; got {value!r}")
    return value


def positive_int(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{where}: {key!r} must be a positive int; got {value!r}")
    return value


def positive_number(value: Any, key: str, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ValueError(f"{where}: {key!r} must be a positive number; got {value!r}")
    return float(value)


def size_pair(value: Any, key: str, where: str) -> tuple[int, int]:
    """An int ``n`` (meaning ``(n, n)``) or a ``[height, width]`` pair of positive ints."""
    if isinstance(value, Sequence) and not isinstance(value, str | bytes) and len(value) == 2:
        return positive_int(value[0], key, where), positive_int(value[1], key, where)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(
            f"{where}: {key!r} must be a positive int or a [height, width] pair of them; "
            f"got {value!r}"
        )
    return value, value


def boolean(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{where}: {key!r} must be true or false; got {value!r}")
    return value


def choice(value: Any, key: str, choices: Sequence[str | None], where: str) -> Any:
    if value not in choices:
        names = ", ".join("null" if choice is None else choice for choice in choices)
        raise ValueError(f"{where}: {key!r} must be one of {names}; got {value!r}")
    return value


def fraction(value: Any, key: str, where: str) -> float:
    if (
        isinstance(value, bool)
        or not isinstance(value, int | float)
        or not 0.0 <= float(value) < 1.0
    ):
        raise ValueError(f"{where}: '{key}' must be a number in [0, 1); got {value!r}")
    return float(value)


def activation(value: Any, where: str) -> str:
    """A Keras activation name; null means "linear" (no activation)."""
    if value is None:
        return "linear"
    try:
        valid = isinstance(value, str) and keras.activations.get(value) is not None
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(
            f"{where}: 'activation' must be a Keras activation name such as relu, elu, "
            f"gelu, swish, tanh or linear; got {value!r}"
        )
    return value


def initializer(value: Any, where: str) -> str:
    try:
        valid = isinstance(value, str) and keras.initializers.get(value) is not None
    except ValueError:
        valid = False
    if not valid:
        raise ValueError(
            f"{where}: 'kernel_initializer' must be a Keras initializer name such as "
            f"glorot_uniform, he_uniform or he_normal; got {value!r}"
        )
    return value
