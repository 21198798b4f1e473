"""Histograms of oriented gradients (Dalal and Triggs' HOG), the classic hand-made image
feature: the baseline's ``features: hog``. NumPy only.

Per image: the gradient at each pixel (centred differences); per cell of
``pixels_per_cell`` × ``pixels_per_cell`` pixels, a histogram of the gradients' unsigned
orientations (0-180°) in ``orientations`` bins, weighted by their magnitudes; per block of
``cells_per_block`` × ``cells_per_block`` cells (overlapping, one cell apart), the cells'
histograms joined and normalised (L2-Hys: L2, values clipped at 0.2, L2 again). The
feature vector is every block's, in order.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-5
CLIP = 0.2


def hog_features(
    images: np.ndarray,
    *,
    orientations: int = 9,
    pixels_per_cell: int = 4,
    cells_per_block: int = 2,
) -> np.ndarray:
    """HOG features of a batch of grayscale images ``(n, height, width)``: ``(n, features)``
    float32. Pixels past the last whole cell are left out.

    Raises:
        ValueError: when the images hold fewer than ``cells_per_block`` cells a side.
    """
    images = np.asarray(images, dtype=np.float32)
    count, height, width = images.shape
    rows, columns = height // pixels_per_cell, width // pixels_per_cell
    if min(rows, columns) < cells_per_block:
        raise ValueError(
            f"HOG: {height}x{width} px images hold {rows}x{columns} cells of "
            f"{pixels_per_cell} px, fewer than a block of {cells_per_block}x{cells_per_block}; "
            "raise image_size or lower pixels_per_cell"
        )
    dx = np.zeros_like(images)
    dy = np.zeros_like(images)
    dx[:, :, 1:-1] = images[:, :, 2:] - images[:, :, :-2]
    dy[:, 1:-1, :] = images[:, 2:, :] - images[:, :-2, :]
    cropped = (slice(None), slice(0, rows * pixels_per_cell), slice(0, columns * pixels_per_cell))
    dx, dy = dx[cropped], dy[cropped]
    magnitude = np.hypot(dx, dy)
    angle = np.rad2deg(np.arctan2(dy, dx)) % 180.0
    bins = np.minimum((angle * orientations / 180.0).astype(np.int64), orientations - 1)
    # the flat index of each pixel's (image, cell row, cell column, bin)
    cell_row = np.arange(rows * pixels_per_cell) // pixels_per_cell
    cell_column = np.arange(columns * pixels_per_cell) // pixels_per_cell
    cell = (cell_row[:, None] * columns + cell_column[None, :])[None, :, :]
    image = np.arange(count)[:, None, None] * (rows * columns)
    index = (image + cell) * orientations + bins
    histograms = np.bincount(
        index.ravel(), weights=magnitude.ravel(), minlength=count * rows * columns * orientations
    ).reshape(count, rows, columns, orientations)
    across, down = rows - cells_per_block + 1, columns - cells_per_block + 1
    blocks = np.concatenate(
        [
            histograms[:, top : top + across, left : left + down]
            for top in range(cells_per_block)
            for left in range(cells_per_block)
        ],
        axis=-1,
    )
    blocks = _normalise(np.minimum(_normalise(blocks), CLIP))
    return blocks.reshape(count, -1).astype(np.float32)


def _normalise(blocks: np.ndarray) -> np.ndarray:
    return blocks / np.sqrt(np.sum(blocks**2, axis=-1, keepdims=True) + EPSILON**2)
