"""Tables as text: the cell format every table of the project shares, and Markdown."""

from __future__ import annotations

from typing import Any

import pandas as pd


def display_value(value: Any, digits: int = 3) -> str:
    """A table cell: floats rounded to ``digits``, missing values (None, NaN, NA) "—"."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
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
