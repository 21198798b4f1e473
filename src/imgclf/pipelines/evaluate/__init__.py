"""The ``evaluate`` pipeline: test metrics, plots and explanations of every declared variant,
the scikit-learn baselines, the leaderboard and the report."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
