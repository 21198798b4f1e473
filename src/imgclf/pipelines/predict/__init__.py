"""The ``predict`` pipeline: label new images with a trained model and export it."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
