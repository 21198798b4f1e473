"""Split the image index into train, validation and test sets, keeping duplicates together."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
