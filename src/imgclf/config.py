"""The one way a parameter block is read: :func:`block_items` checks that the block is a
mapping whose keys are all known, before the block's own parser checks and converts its
values into its dataclass (``TrainingConfig``, ``TuningConfig``, ``EvaluationConfig``, ...).
A misspelt key therefore fails the same way everywhere, naming the block, the key and the
valid ones."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any


def block_items(block: Any, valid: type | Sequence[str], where: str) -> dict[str, Any]:
    """The items of parameter block ``block`` (None: none).

    Args:
        block: the block as Kedro loaded it.
        valid: the dataclass the block becomes (its fields are the valid keys), or the
            valid keys themselves.
        where: the block's name in messages, e.g. ``training.optimizer``.

    Raises:
        ValueError: ``"<where> must be a mapping; got ..."`` or ``"unknown key(s) in
            <where>: <keys>; valid keys are: <keys>"``.
    """
    if block is None:
        return {}
    if not isinstance(block, Mapping):
        raise ValueError(f"{where} must be a mapping; got {block!r}")
    names = (
        [field.name for field in dataclasses.fields(valid)]
        if isinstance(valid, type)
        else list(valid)
    )
    unknown = sorted(str(key) for key in block if key not in names)
    if unknown:
        raise ValueError(
            f"unknown key(s) in {where}: {', '.join(unknown)}; valid keys are: {', '.join(names)}"
        )
    return dict(block)
