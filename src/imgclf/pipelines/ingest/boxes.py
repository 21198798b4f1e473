"""Bounding boxes in ingest: each listed box checked against its decoded image, a bad one
quarantined with the reason, the good ones turned into fractions of the image.

The listing (``raw_images`` with ``boxes``, see
:class:`imgclf.datasets.ImageDirectoryDataset`) gives ``box_x_min`` … ``box_y_max`` in
the table's units (``box_units``: pixels or fractions) and ``box_problem`` when the table
had no usable row. A box is good when its four values are finite, min < max on each axis,
and it lies inside the image (0 … width and 0 … height pixels; 0 … 1 as fractions). The
index then holds the box as fractions: ``box_x_min`` = left edge / width, and so on, the
form in which models predict it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from imgclf.datasets.image_directory import BOX_COLUMNS, BOX_LISTING_COLUMNS

NO_BOX, BAD_BOX = "no box", "bad box"
_AXES = (("x", "width"), ("y", "height"))


def listing_columns(listing: pd.DataFrame) -> list[str]:
    """The box columns of a listing: all of them when it has boxes, none otherwise."""
    return BOX_LISTING_COLUMNS if "box_x_min" in listing.columns else []


def index_columns(index: pd.DataFrame) -> list[str]:
    """The box columns an index keeps: the four fractions when it has boxes."""
    return BOX_COLUMNS if "box_x_min" in index.columns else []


def check_boxes(files: pd.DataFrame) -> pd.DataFrame:
    """``files`` (a scan) with every still valid file whose box is missing or bad given a
    ``reason`` and ``detail``, and the boxes as fractions of the image. Files without
    boxes in the listing are returned as they are."""
    if "box_x_min" not in files.columns:
        return files
    files = files.copy()
    candidates = files["reason"].isna()
    problem = candidates & files["box_problem"].notna()
    files.loc[problem, "reason"] = NO_BOX
    files.loc[problem, "detail"] = files.loc[problem, "box_problem"]
    checked = candidates & ~problem
    rows = files.loc[checked, [*BOX_COLUMNS, "box_units", "width", "height"]]
    details = [_box_problem(row) for row in rows.itertuples(index=False)]
    bad = pd.Series(details, index=files.index[checked], dtype="object").dropna()
    files.loc[bad.index, "reason"] = BAD_BOX
    files.loc[bad.index, "detail"] = bad
    for axis, side in _AXES:
        scale = np.where(files["box_units"] == "pixels", files[side].astype("float64"), 1.0)
        for end in ("min", "max"):
            column = f"box_{axis}_{end}"
            files[column] = files[column].astype("float64") / scale
    return files


def _box_problem(row: tuple) -> str | None:
    """Why one box does not fit its image, or None when it does."""
    x_min, y_min, x_max, y_max, units, width, height = row
    values = {"x_min": x_min, "y_min": y_min, "x_max": x_max, "y_max": y_max}
    infinite = [name for name, value in values.items() if not np.isfinite(value)]
    if infinite:
        return f"box {', '.join(infinite)} is not a finite number"
    limits = {"x": float(width), "y": float(height)} if units == "pixels" else {"x": 1.0, "y": 1.0}
    shown = f"{width}x{height} px image" if units == "pixels" else "image (fractions: 0 to 1)"
    for axis, _ in _AXES:
        low, high = values[f"{axis}_min"], values[f"{axis}_max"]
        if not low < high:
            return f"box {axis}_min {low:g} is not below {axis}_max {high:g}"
        if low < 0 or high > limits[axis]:
            return (
                f"box {axis}_min {low:g} .. {axis}_max {high:g} is outside the {shown} "
                f"(it must lie within 0 .. {limits[axis]:g})"
            )
    return None
