"""CNNs trained from scratch: the seed's shallow and deep CNNs, and an Optuna-tuned one."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
