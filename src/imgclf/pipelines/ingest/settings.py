"""The ``ingest`` parameter block, read once into :class:`IngestSettings`."""

from __future__ import annotations

import dataclasses
from typing import Any

from imgclf.config import block_items

# an ingest key of earlier versions, now split.classes.min_images
MOVED_TO_SPLIT = "min_images_per_class"


@dataclasses.dataclass(frozen=True)
class IngestSettings:
    """``params:ingest``.

    Attributes:
        workers: processes that decode images; None: one per CPU core.
        max_pixels: larger images are quarantined (possible decompression bombs).
        near_duplicate_distance: 1 − cosine similarity of two images' perceptual hashes
            at or below which they are copies (0: identical hashes only; negative: no
            grouping).
        samples_per_class: images per class in the sample grid.
    """

    workers: int | None = None
    max_pixels: int = 89_478_485
    near_duplicate_distance: float = 0.02
    samples_per_class: int = 8


def parse_ingest(block: Any) -> IngestSettings:
    """``params:ingest`` checked and converted.

    Raises:
        ValueError: for an unknown key or a value out of range, naming it.
    """
    if isinstance(block, dict) and MOVED_TO_SPLIT in block:
        raise ValueError(
            f"ingest.{MOVED_TO_SPLIT} is now split.classes.min_images (classes below it are "
            "left out, not an error): move the setting to conf/<env>/parameters_split.yml"
        )
    values = block_items(block, IngestSettings, "ingest")
    settings = IngestSettings(**values)
    if settings.workers is not None:
        _whole(settings.workers, "workers", minimum=1)
    _whole(settings.max_pixels, "max_pixels", minimum=1)
    _whole(settings.samples_per_class, "samples_per_class", minimum=1)
    distance = settings.near_duplicate_distance
    if isinstance(distance, bool) or not isinstance(distance, int | float) or distance > 2:
        raise ValueError(
            "ingest.near_duplicate_distance must be a number up to 2 (1 - cosine similarity; "
            f"0 = identical hashes only, negative = no grouping); got {distance!r}"
        )
    return settings


def _whole(value: Any, key: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"ingest.{key} must be a whole number >= {minimum}; got {value!r}")
