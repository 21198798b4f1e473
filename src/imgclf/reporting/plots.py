"""Figures shared by the pipelines. Each function returns a matplotlib ``Figure`` that a
``matplotlib.MatplotlibDataset`` in the catalog writes to disk, or that
:func:`figure_image` turns into a Pillow image for a ``pillow.ImageDataset`` (which the
HTML report can load again and embed)."""

from __future__ import annotations

from collections.abc import Sequence

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from PIL import Image


def figure_image(fig: Figure, dpi: int = 100) -> Image.Image:
    """The figure drawn at ``dpi`` as an RGB Pillow image; the figure is closed. A figure
    made without pyplot (``Figure()``) is drawn on an Agg canvas."""
    fig.set_dpi(dpi)
    canvas = fig.canvas if hasattr(fig.canvas, "buffer_rgba") else FigureCanvasAgg(fig)
    canvas.draw()
    image = Image.fromarray(np.asarray(canvas.buffer_rgba())[:, :, :3].copy())
    plt.close(fig)
    return image


def grouped_bar_chart(
    counts: pd.DataFrame, *, title: str, ylabel: str = "images", label_format: str = "%g"
) -> Figure:
    """Bars per row (usually a class) with one coloured bar per column (a split or source).

    ``counts`` is a table of numbers: the index labels the x axis, each column is a series;
    each bar is labelled with its value in ``label_format``.
    """
    n_rows, n_series = counts.shape
    width = 0.8 / max(n_series, 1)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * n_rows * max(n_series, 1) ** 0.5 + 2), 4.2))
    positions = np.arange(n_rows)
    for i, column in enumerate(counts.columns):
        offset = (i - (n_series - 1) / 2) * width
        bars = ax.bar(positions + offset, counts[column].to_numpy(), width, label=str(column))
        if n_rows * n_series <= 60:
            ax.bar_label(bars, fmt=label_format, fontsize=7, padding=1)
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


def image_grid(rows: Sequence[tuple[str, Sequence[np.ndarray]]], *, title: str) -> Figure:
    """A grid with one labelled row per (label, images); images are uint8 arrays (H, W) or
    (H, W, C). Drawn as one mosaic image, 0.75 figure pixel per image pixel at 100 dpi
    (at least 0.6 inch a cell), which is fast to draw and save even for hundreds of images."""
    images = [image for _, row in rows for image in row]
    if not images:
        raise ValueError("image_grid needs at least one image")
    height = max(image.shape[0] for image in images)
    width = max(image.shape[1] for image in images)
    channels = 3 if any(image.ndim == 3 and image.shape[2] == 3 for image in images) else 1
    columns = max(len(row) for _, row in rows)
    gap = max(2, height // 16)
    mosaic = np.full(
        (len(rows) * (height + gap) - gap, columns * (width + gap) - gap, channels), 255, np.uint8
    )
    for r, (_, row) in enumerate(rows):
        for c, image in enumerate(row):
            cell = image.reshape(image.shape[0], image.shape[1], -1)
            top, left = r * (height + gap), c * (width + gap)
            mosaic[top : top + cell.shape[0], left : left + cell.shape[1]] = cell
    inches_per_pixel = max(0.0075, 0.6 / width)
    fig, ax = plt.subplots(
        figsize=(mosaic.shape[1] * inches_per_pixel + 1.0, mosaic.shape[0] * inches_per_pixel + 0.6)
    )
    ax.imshow(mosaic[:, :, 0] if channels == 1 else mosaic, cmap="gray", vmin=0, vmax=255)
    ax.set_yticks([r * (height + gap) + height / 2 for r in range(len(rows))])
    ax.set_yticklabels([str(label) for label, _ in rows])
    ax.set_xticks([])
    ax.tick_params(length=0)
    ax.spines[:].set_visible(False)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def training_curves(history: dict, *, title: str) -> Figure:
    """Loss, accuracy and learning rate per epoch, train against validation, from a training
    history (``imgclf.training.fit.summarise_history``); the best epoch is marked. Accuracy
    is drawn from 0 to 1 and loss from 0, with what guessing among the history's
    ``classes`` scores (accuracy 1/k, cross-entropy ln k) as dashed lines, so that a model
    that learnt nothing looks like one."""
    rows = pd.DataFrame(history["epochs"])
    if rows.empty:
        raise ValueError("training_curves needs a history with at least one epoch")
    classes = len(history.get("classes") or [])
    chance = {"loss": np.log(classes), "accuracy": 1 / classes} if classes > 1 else {}
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.8))
    for ax, metric in zip(axes[:2], ("loss", "accuracy")):
        for prefix, label, style in (("", "train", "-o"), ("val_", "validation", "-s")):
            if prefix + metric in rows:
                ax.plot(rows["epoch"], rows[prefix + metric], style, markersize=3, label=label)
        if metric in chance:
            ax.axhline(chance[metric], color="black", linestyle="--", linewidth=1, label="chance")
        ax.set_ylabel(metric)
        ax.legend(frameon=False)
    axes[0].set_ylim(bottom=0)
    axes[1].set_ylim(0, 1.02)
    axes[2].plot(rows["epoch"], rows["learning_rate"], "-o", markersize=3, color="tab:green")
    axes[2].set_ylabel("learning rate")
    if rows["learning_rate"].gt(0).all() and rows["learning_rate"].nunique() > 1:
        axes[2].set_yscale("log")
    best = history.get("best_epoch")
    for ax in axes:
        ax.set_xlabel("epoch")
        if best is not None:
            ax.axvline(best, color="grey", linestyle=":", linewidth=1)
        ax.spines[["top", "right"]].set_visible(False)
    if best is not None:
        axes[1].set_title(f"best epoch {best} ({history['monitor']} {history['best_value']:.3f})")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
