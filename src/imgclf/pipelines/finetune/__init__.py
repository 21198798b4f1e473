"""Fine-tuning: a transfer variant's model with its backbone's last layers unfrozen, trained on."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
