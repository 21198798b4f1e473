"""Kedro project settings: https://docs.kedro.org/en/stable/kedro_project_setup/settings.html"""

from kedro.config import OmegaConfigLoader

from imgclf.hooks import ActiveEnvironment

# The registry builds the variants of the environment being run (imgclf.project_parameters).
HOOKS = (ActiveEnvironment(),)

CONFIG_LOADER_CLASS = OmegaConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    # An environment's parameter file overrides single keys (e.g. ingest.samples_per_class)
    # and keeps the rest of base's block.
    "merge_strategy": {"parameters": "soft"},
}
