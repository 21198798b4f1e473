"""Figures shared by the pipelines. Each function returns a matplotlib ``Figure`` that a
``matplotlib.MatplotlibDataset`` in the catalog writes to disk."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def grouped_bar_chart(counts: pd.DataFrame, *, title: str, ylabel: str = "images") -> Figure:
    """Bars per row (usually a class) with one coloured bar per column (a split or source).

    ``counts`` is a table of numbers: the index labels the x axis, each column is a series.
    """
    n_rows, n_series = counts.shape
    width = 0.8 / max(n_series, 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * n_rows * max(n_series, 1) ** 0.5 + 2), 4.2))
    positions = np.arange(n_rows)
    for i, column in enumerate(counts.columns):
        offset = (i - (n_series - 1) / 2) * width
        bars = ax.bar(positions + offset, counts[column].to_numpy(), width, label=str(column))
        if n_rows * n_series <= 60:
            ax.bar_label(bars, fontsize=7, padding=1)
    ax.set_xticks(positions)
    ax.set_xticklabels(
        [str(i) for i in counts.index],
        rotation=45 if n_rows > 8 else 0,
        ha="right" if n_rows > 8 else "center",
    )
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    if n_series > 1:
        ax.legend(frameon=False)
    ax.spines[["top", "right"]].set_visible(False)
    fig.tight_layout()
    return fig


def image_grid(
    rows: Sequence[tuple[str, Sequence[np.ndarray]]], *, title: str, cell_inches: float = 1.1
) -> Figure:
    """A grid with one row per (row label, images); images are uint8 arrays (H, W) or (H, W, C)."""
    n_rows = max(len(rows), 1)
    n_cols = max((len(images) for _, images in rows), default=1) or 1
    fig, axes = plt.subplots(
        n_rows,
        n_cols,
        figsize=(cell_inches * n_cols + 1.2, cell_inches * n_rows + 0.6),
        squeeze=False,
    )
    for r, (label, images) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            ax.spines[:].set_visible(False)
            if c < len(images):
                image = images[c]
                if image.ndim == 3 and image.shape[2] == 1:
                    image = image[:, :, 0]
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
            if c == 0:
                ax.set_ylabel(str(label), rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    return fig
