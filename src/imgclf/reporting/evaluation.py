"""Figures of a model's evaluation: confusion matrices, image galleries with captions,
Grad-CAM overlays, convolution channel maps and the leaderboard chart."""

from __future__ import annotations

import math
from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib import colormaps, patches
from matplotlib.figure import Figure
from matplotlib.ticker import LogLocator, NullFormatter, ScalarFormatter

from imgclf.reporting.plots import grouped_bar_chart

MAX_ANNOTATED_CLASSES = 20
"""Confusion matrices with more classes than this are drawn without numbers in cells."""


def confusion_matrix_figure(
    matrix: np.ndarray, classes: Sequence[str], *, normalised: bool, title: str
) -> Figure:
    """Rows are true classes, columns predicted ones; counts, or shares of each row."""
    matrix = np.asarray(matrix)
    n = len(classes)
    side = min(14.0, max(4.5, 0.45 * n + 2.5))
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    shown = ax.imshow(matrix, cmap="Blues", vmin=0, vmax=1 if normalised else max(1, matrix.max()))
    fig.colorbar(
        shown,
        ax=ax,
        fraction=0.046,
        pad=0.04,
        label="share of the true class" if normalised else "images",
    )
    ax.set_xticks(
        range(n),
        [str(name) for name in classes],
        rotation=45 if n > 6 else 0,
        ha="right" if n > 6 else "center",
    )
    ax.set_yticks(range(n), [str(name) for name in classes])
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    if n <= MAX_ANNOTATED_CLASSES:
        threshold = (1 if normalised else max(1, matrix.max())) / 2
        for (row, column), value in np.ndenumerate(matrix):
            if value:
                ax.text(
                    column,
                    row,
                    f"{value:.2f}" if normalised else str(value),
                    ha="center",
                    va="center",
                    fontsize=7 if n > 10 else 9,
                    color="white" if value > threshold else "black",
                )
    ax.set_title(title)
    fig.tight_layout()
    return fig


def gallery(
    images: Sequence[np.ndarray],
    captions: Sequence[str],
    *,
    title: str,
    columns: int = 8,
    overlays: Sequence[np.ndarray] | None = None,
    boxes: Sequence[Sequence[tuple[np.ndarray, str]]] | None = None,
) -> Figure:
    """Images (uint8, ``(h, w)`` or ``(h, w, channels)``) in a grid, each with a caption;
    ``overlays`` (values in [0, 1], any resolution) are drawn over them as jet heat maps,
    ``boxes`` (per image: ``(x_min, y_min, x_max, y_max)`` fractions and a colour) as
    rectangles. An empty gallery is a figure that says so."""
    if not len(images):
        fig, ax = plt.subplots(figsize=(6, 1.2))
        ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=12)
        ax.set_axis_off()
        ax.set_title(title)
        return fig
    columns = min(columns, len(images))
    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(1.7 * columns, 1.9 * rows + 0.5), squeeze=False
    )
    for i, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if i >= len(images):
            continue
        picture = images[i]
        if picture.ndim == 3 and picture.shape[2] == 1:
            picture = picture[:, :, 0]
        ax.imshow(picture, cmap="gray", vmin=0, vmax=255)
        if overlays is not None:
            ax.imshow(
                overlays[i],
                cmap="jet",
                alpha=0.45,
                vmin=0,
                vmax=1,
                extent=(-0.5, picture.shape[1] - 0.5, picture.shape[0] - 0.5, -0.5),
                interpolation="bilinear",
            )
        height, width = picture.shape[:2]
        for box, colour in boxes[i] if boxes is not None else ():
            x_min, y_min, x_max, y_max = np.asarray(box, np.float64) * [
                width,
                height,
                width,
                height,
            ]
            ax.add_patch(
                patches.Rectangle(
                    (x_min - 0.5, y_min - 0.5),
                    x_max - x_min,
                    y_max - y_min,
                    fill=False,
                    edgecolor=colour,
                    linewidth=1.5,
                )
            )
        ax.set_title(captions[i], fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def channel_maps(activations: np.ndarray, *, title: str, channels: int = 16) -> Figure:
    """The ``channels`` most active channels of one image's layer output ``(h, w, c)``,
    each scaled to its own range (viridis), with its index and mean activation."""
    activations = np.asarray(activations, dtype=np.float64)
    strongest = np.argsort(-activations.mean(axis=(0, 1)), kind="stable")[:channels]
    columns = min(8, len(strongest))
    rows = math.ceil(len(strongest) / columns)
    fig, axes = plt.subplots(
        rows, columns, figsize=(1.6 * columns, 1.75 * rows + 0.5), squeeze=False
    )
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, channel in zip(axes.flat, strongest):
        values = activations[:, :, channel]
        ax.imshow(values, cmap="viridis", interpolation="nearest")
        ax.set_title(f"#{channel} mean {values.mean():.2g}", fontsize=7)
    fig.suptitle(
        f"{title} ({activations.shape[0]}x{activations.shape[1]}, {activations.shape[2]} channels)"
    )
    fig.tight_layout()
    return fig


def channel_bars(values: np.ndarray, *, title: str, channels: int = 16) -> Figure:
    """The ``channels`` largest values of one image's globally pooled activations ``(c,)``,
    one bar per channel (largest first), labelled with the channel's index."""
    values = np.asarray(values, dtype=np.float64)
    strongest = np.argsort(-values, kind="stable")[:channels]
    fig, ax = plt.subplots(figsize=(max(4.0, 0.4 * len(strongest) + 1.5), 3.0))
    ax.bar(range(len(strongest)), values[strongest], color="#3b6ea8")
    ax.set_xticks(range(len(strongest)), [f"#{channel}" for channel in strongest], fontsize=7)
    ax.set_xlabel("channel")
    ax.set_ylabel("pooled activation")
    ax.set_title(f"{title} ({len(values)} channels, the {len(strongest)} largest)", fontsize=9)
    fig.tight_layout()
    return fig


def leaderboard_figure(leaderboard: pd.DataFrame, *, chance: float | None = None) -> Figure:
    """Test accuracy and macro F1 per model (bars, best at the top, coloured by family),
    and test accuracy against training seconds (log scale, accuracy from 0 to 1); a dashed
    line at ``chance``, the accuracy of guessing."""
    table = leaderboard.sort_values("test_accuracy", ascending=True)
    families = list(dict.fromkeys(leaderboard["family"]))
    colours = {family: colormaps["tab10"](i % 10) for i, family in enumerate(families)}
    fig, (bars, scatter) = plt.subplots(
        1, 2, figsize=(13, max(3.5, 0.42 * len(table) + 1.5)), gridspec_kw={"width_ratios": [3, 2]}
    )
    positions = np.arange(len(table))
    bars.barh(
        positions + 0.2, table["test_accuracy"], 0.4, color=[colours[f] for f in table["family"]]
    )
    bars.barh(positions - 0.2, table["macro_f1"], 0.4, color="lightgrey")
    for position, value in zip(positions, table["test_accuracy"]):
        bars.text(value + 0.005, position + 0.2, f"{value:.3f}", va="center", fontsize=7)
    bars.set_yticks(positions, table["model"])
    bars.set_xlim(0, 1.08)
    bars.set_xlabel("test accuracy (coloured by family) and macro F1 (grey)")
    for family in families:
        rows = table[table["family"] == family]
        scatter.scatter(
            rows["training_seconds"].clip(lower=0.01),
            rows["test_accuracy"],
            color=colours[family],
            label=family,
        )
        for _, row in rows.iterrows():
            scatter.annotate(
                row["variant"],
                (max(row["training_seconds"], 0.01), row["test_accuracy"]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
    scatter.set_xscale("log")
    scatter.xaxis.set_major_locator(LogLocator(subs=(1.0, 3.0)))
    scatter.xaxis.set_major_formatter(ScalarFormatter())
    scatter.xaxis.set_minor_formatter(NullFormatter())
    scatter.set_xlabel("training seconds (log)")
    scatter.set_ylabel("test accuracy")
    scatter.set_ylim(0, 1.04)
    if chance is not None:
        bars.axvline(chance, color="black", linestyle="--", linewidth=1, label="chance")
        scatter.axhline(chance, color="black", linestyle="--", linewidth=1)
        bars.text(chance, len(table) - 0.4, f" chance {chance:.3f}", fontsize=7, va="bottom")
    scatter.legend(frameon=False, fontsize=8)
    for ax in (bars, scatter):
        ax.spines[["top", "right"]].set_visible(False)
    fig.suptitle("Leaderboard")
    fig.tight_layout()
    return fig


def sweep_figure(scores: pd.DataFrame, *, title: str) -> Figure:
    """Grouped bars of a sweep's scores (rows: arms; columns: val accuracy, test accuracy,
    macro F1), or a note when no arm has scores yet."""
    if scores.empty:
        fig, ax = plt.subplots(figsize=(6, 1.6))
        ax.axis("off")
        ax.text(0.5, 0.5, "No arm of this sweep has been trained yet", ha="center", va="center")
        ax.set_title(title)
        return fig
    fig = grouped_bar_chart(scores, title=title, ylabel="score", label_format="%.2f")
    fig.axes[0].set_ylim(0, 1.08)
    return fig
