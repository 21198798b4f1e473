"""Which setting won: every pair of trained models whose configurations differ in exactly
one setting, and the patterns those pairs share.

A model's **settings** are the leaves of the ``.config`` its training wrote, by path
(``training.optimizer.learning_rate``, ``head.dense.0.units``); a **setting** groups the
leaves under the first two keys of their path (``training.optimizer``, ``backbone.cut_at``,
``head.dense``, ``architecture.blocks``) or under the only one (``output``, ``source``).
``transfer.adam`` and ``transfer.sgd`` differ only in ``training.optimizer``, so the pair
says which optimizer won there and by how many points of test accuracy.

A **pattern** is what several pairs that compare the same two values of one setting agree
on: one value won every pair, or (as S0 found for its optimizers) one value won on the
larger models and the other on the smaller, split at a parameter count.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd

COLUMNS = [
    "setting",
    "model_a",
    "value_a",
    "model_b",
    "value_b",
    "test_accuracy_a",
    "test_accuracy_b",
    "winner",
    "winning_value",
    "points",
    "parameters_a",
    "parameters_b",
]
LEVEL = "level"
IGNORED = ("name",)


def flat_settings(config: Mapping[str, Any]) -> dict[str, Any]:
    """The leaves of a model's configuration by dotted path (list items by index), its
    ``name`` aside; an empty block or list is a leaf of its own."""
    leaves: dict[str, Any] = {}

    def walk(value: Any, path: str) -> None:
        items: Iterable[tuple[Any, Any]] = ()
        if isinstance(value, Mapping):
            items = value.items()
        elif isinstance(value, list | tuple):
            items = enumerate(value)
        else:
            leaves[path] = value
            return
        items = list(items)
        if not items:
            leaves[path] = value
        for key, item in items:
            walk(item, f"{path}.{key}" if path else str(key))

    walk({key: value for key, value in config.items() if key not in IGNORED}, "")
    return leaves


def setting_of(path: str) -> str:
    """The setting a leaf belongs to: the first two keys of its path."""
    return ".".join(path.split(".")[:2])


def different_setting(a: Mapping[str, Any], b: Mapping[str, Any]) -> str | None:
    """The one setting in which two models' flat settings differ; None when they differ in
    none or in more than one."""
    paths = {path for path in a.keys() | b.keys() if a.get(path, _ABSENT) != b.get(path, _ABSENT)}
    settings = {setting_of(path) for path in paths}
    return settings.pop() if len(settings) == 1 else None


def comparison_table(metrics: Iterable[Mapping[str, Any]], *, tolerance: float) -> pd.DataFrame:
    """One row per pair of trained models that differ in one setting: the setting, each
    model's value of it and test accuracy, the winner (``level`` when the accuracies are
    less than ``tolerance`` apart) and the points it won by, and both parameter counts."""
    trained = [entry for entry in metrics if entry.get("trained", True) and entry.get("settings")]
    rows = []
    for first, second in itertools.combinations(trained, 2):
        setting = different_setting(first["settings"], second["settings"])
        if setting is None:
            continue
        labels = {
            id(first): _label(first["settings"], second["settings"], setting),
            id(second): _label(second["settings"], first["settings"], setting),
        }
        a, b = sorted((first, second), key=lambda entry: labels[id(entry)])
        accuracy_a, accuracy_b = a["test"]["accuracy"], b["test"]["accuracy"]
        gap = abs(accuracy_a - accuracy_b)
        winner = LEVEL if gap < tolerance else (a if accuracy_a > accuracy_b else b)
        rows.append(
            {
                "setting": setting,
                "model_a": a["model"],
                "value_a": labels[id(a)],
                "model_b": b["model"],
                "value_b": labels[id(b)],
                "test_accuracy_a": accuracy_a,
                "test_accuracy_b": accuracy_b,
                "winner": LEVEL if winner == LEVEL else winner["model"],
                "winning_value": LEVEL if winner == LEVEL else labels[id(winner)],
                "points": round(gap * 100, 2),
                "parameters_a": a["facts"].get("parameters_total"),
                "parameters_b": b["facts"].get("parameters_total"),
            }
        )
    table = pd.DataFrame(rows, columns=COLUMNS)
    return table.astype({"parameters_a": "Int64", "parameters_b": "Int64"})


def comparison_lines(table: pd.DataFrame) -> list[str]:
    """The pairs and their patterns as Markdown list items for the summary."""
    if table.empty:
        return []
    lines = ["- Settings compared (pairs of models that differ in one setting only):"]
    for row in table.itertuples():
        if row.winner == LEVEL:
            outcome = f"level ({row.points:g} points apart)"
        else:
            loser = row.value_b if row.winning_value == row.value_a else row.value_a
            outcome = f"**{row.winning_value}** beat {loser} by {row.points:g} points"
        lines.append(
            f"  - {row.setting}: {row.model_a} ({row.value_a}, {row.test_accuracy_a:.3f}) vs "
            f"{row.model_b} ({row.value_b}, {row.test_accuracy_b:.3f}): {outcome}"
        )
    found = patterns(table)
    if found:
        lines.append("- Patterns across pairs:")
        lines += [f"  - {pattern}" for pattern in found]
    return lines


def patterns(table: pd.DataFrame) -> list[str]:
    """What the pairs comparing the same two values of one setting agree on (two pairs at
    least): one value won them all, or one won above a parameter count and the other
    below; or how the wins split when neither holds."""
    found = []
    for (setting, value_a, value_b), pairs in table.groupby(
        ["setting", "value_a", "value_b"], sort=False
    ):
        if len(pairs) < 2:
            continue
        decided = pairs[pairs["winner"] != LEVEL]
        wins = decided["winning_value"].value_counts()
        level = len(pairs) - len(decided)
        ties = f", {level} level" if level else ""
        what = f"{setting} {value_a} vs {value_b}"
        if len(wins) == 1 and len(decided) >= 2:
            found.append(f"{what}: **{wins.index[0]} won all {len(decided)} decided pairs**{ties}.")
        elif len(wins) == 2:
            split = _size_split(decided)
            if split:
                large, small, threshold = split
                found.append(
                    f"{what}: **{large} won above ~{_millions(threshold)} parameters, {small} "
                    f"below** ({len(decided)} decided pairs{ties})."
                )
            else:
                counts = ", ".join(f"{value} {count}" for value, count in wins.items())
                found.append(f"{what}: no pattern; wins {counts}{ties}.")
    return found


def _size_split(decided: pd.DataFrame) -> tuple[str, str, float] | None:
    """``(value winning the larger models, value winning the smaller, threshold)`` when the
    pairs sorted by size fall into a run of one winner then a run of the other."""
    sizes = [
        math.sqrt(float(a) * float(b)) if not (pd.isna(a) or pd.isna(b)) else math.nan
        for a, b in zip(decided["parameters_a"], decided["parameters_b"], strict=True)
    ]
    if any(math.isnan(size) for size in sizes):
        return None
    ordered = sorted(zip(sizes, decided["winning_value"], strict=True))
    values = [value for _, value in ordered]
    changes = [i for i in range(1, len(values)) if values[i] != values[i - 1]]
    if len(changes) != 1:
        return None
    (cut,) = changes
    if ordered[cut - 1][0] == ordered[cut][0]:
        return None  # models of one size won by both values: no size explains it
    threshold = math.sqrt(ordered[cut - 1][0] * ordered[cut][0])
    return values[-1], values[0], threshold


def _millions(parameters: float) -> str:
    return f"{float(f'{parameters / 1e6:.2g}'):g} M"


def _label(settings: Mapping[str, Any], other: Mapping[str, Any], setting: str) -> str:
    """A model's value of a setting, as it differs from the other model's: the block's
    ``name`` when that differs (``adam``), else the leaves that differ
    (``learning_rate=0.001``), or the value itself for a setting that is one leaf."""
    if setting in settings:
        return _show(settings[setting])
    prefix = setting + "."
    differing = {
        path[len(prefix) :]: settings.get(path, _ABSENT)
        for path in sorted(settings.keys() | other.keys(), key=_order(settings, other))
        if path.startswith(prefix) and settings.get(path, _ABSENT) != other.get(path, _ABSENT)
    }
    if "name" in differing:
        return _show(differing["name"])
    shown = [f"{key}={_show(value)}" for key, value in differing.items() if value is not _ABSENT]
    return ", ".join(shown) or "none"


def _order(*settings: Mapping[str, Any]) -> Any:
    """Sort key: the paths in the order the configurations list them."""
    order = {path: index for index, path in enumerate(dict.fromkeys(itertools.chain(*settings)))}
    return order.__getitem__


def _show(value: Any) -> str:
    if isinstance(value, Sequence | Mapping) and not isinstance(value, str) and not value:
        return "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


_ABSENT = object()
