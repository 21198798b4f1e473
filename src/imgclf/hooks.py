"""Project hooks (registered in :mod:`imgclf.settings`)."""

from __future__ import annotations

from kedro.framework.context import KedroContext
from kedro.framework.hooks import hook_impl

from imgclf import project_parameters


class ActiveEnvironment:
    """Hands the session's parameters (its environment's, with runtime ``--params``) to the
    pipeline registry before Kedro first reads it, so that ``kedro run --env X`` builds the
    variants that environment declares."""

    @hook_impl
    def after_context_created(self, context: KedroContext) -> None:
        # the config loader, not context.params: those validate against the pipelines
        project_parameters.use(context.config_loader["parameters"])
