"""imgclf: Kedro pipelines for image classification, from a folder of images to a report."""

__version__ = "0.1.0"
