"""Ingest: validate, hash, de-duplicate and profile every image listed by ``raw_images``."""

from imgclf.pipelines.ingest.pipeline import create_pipeline

__all__ = ["create_pipeline"]
