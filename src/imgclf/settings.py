"""Kedro project settings: https://docs.kedro.org/en/stable/kedro_project_setup/settings.html"""

import os
import warnings
from pathlib import Path

from kedro.config import OmegaConfigLoader
from kedro.utils import find_kedro_project

from imgclf.hooks import ActiveEnvironment
from imgclf.tracking import TrackOutputs

# TensorFlow's C++ start-up messages (CPU features, CUDA probing) hidden for every kedro
# command; set TF_CPP_MIN_LOG_LEVEL=0 to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Two warnings every kedro command would print, about code that is not the user's: Kedro's
# and kedro-mlflow's own calls of an OmegaConf function deprecated in favour of another, and
# Kedro's advice against dots in dataset names, which our catalog names (scratch_cnn.deep.model,
# ...) use on purpose: they are the namespaced outputs that other pipelines read.
warnings.filterwarnings("ignore", r"register_new_resolver\(\) is deprecated", UserWarning)
warnings.filterwarnings("ignore", r"One or more dataset names contain '\.'", UserWarning)

# The registry builds the variants of the environment being run (imgclf.project_parameters);
# the outputs go to the MLflow run kedro-mlflow opens (imgclf.tracking).
HOOKS = (ActiveEnvironment(), TrackOutputs())


def project_path() -> str:
    """The Kedro project around the working directory (``${project_path:}`` in conf/)."""
    return str(find_kedro_project(Path.cwd()) or Path.cwd())


CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment's parameter file overrides single keys (e.g. ingest.samples_per_class)
    # and keeps the rest of base's block.
    "merge_strategy": {"parameters": "soft"},
    "custom_resolvers": {"project_path": project_path},
}
