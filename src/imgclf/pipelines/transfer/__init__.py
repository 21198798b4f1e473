"""Transfer learning: a frozen pretrained backbone with a new head, one per declared variant."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
