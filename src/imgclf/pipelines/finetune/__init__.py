"""Fine-tuning: the augmented transfer models with their backbones' last layers unfrozen."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
