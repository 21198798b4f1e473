"""Transfer learning: a frozen pretrained backbone with a new head, S0's four variants."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
