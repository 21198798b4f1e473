"""CNNs trained from scratch, one per declared variant (base: the seed's shallow, deep, tuned)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
