"""Tables as text: the cell format every table of the project shares, and Markdown."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd


def display_value(value: Any, digits: int = 3) -> str:
    """A table cell: floats rounded to ``digits``, missing values (None, NaN, NA) "—",
    mappings and lists of pairs as ``key: value, ...``, other lists comma-separated."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, Mapping):
        return ", ".join(f"{key}: {display_value(item, digits)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        if all(isinstance(item, list | tuple) and len(item) == 2 for item in value):
            return display_value(dict(value), digits)
        return ", ".join(display_value(item, digits) for item in value)
    return str(value)


def markdown_table(table: pd.DataFrame, digits: int = 3) -> str:
    """A GitHub-flavoured Markdown table (see :func:`display_value`)."""
    lines = [
        "| " + " | ".join(map(str, table.columns)) + " |",
        "|" + "|".join(" --- " for _ in table.columns) + "|",
    ]
    lines += [
        "| " + " | ".join(display_value(value, digits).replace("|", "\\|") for value in row) + " |"
        for row in table.itertuples(index=False)
    ]
    return "\n".join(lines) + "\n"
