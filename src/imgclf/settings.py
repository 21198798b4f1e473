"""Kedro project settings: https://docs.kedro.org/en/stable/kedro_project_setup/settings.html"""

import os
import sys
import warnings
from pathlib import Path

from kedro.config import OmegaConfigLoader
from kedro.utils import find_kedro_project

from imgclf.atomic import describe_write_error
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


def _explain_write_errors(previous_hook):
    def hook(kind, error, trace):
        message = describe_write_error(error)
        if message is None:
            previous_hook(kind, error, trace)
        else:
            print(f"Error: {message}", file=sys.stderr)

    return hook


# A full disk, a read-only or a vanished output folder ends a kedro command (exit code 1)
# with one sentence that names the file and what to do, not with a traceback; Kedro's log
# above it names the node that failed and the --from-nodes to go on from.
sys.excepthook = _explain_write_errors(sys.excepthook)

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
