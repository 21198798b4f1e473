"""The parameters of the environment being run, for the pipeline registry.

Which variants exist is read from the parameters (see :mod:`imgclf.variants`), so the
registry must know the active environment before it builds the pipelines. Kedro does not
pass it: ``kedro run --env X`` hands it to the session, whose ``after_context_created``
hook (:class:`imgclf.hooks.ActiveEnvironment`) gives the context's parameters, runtime
``--params`` included, to :func:`use` before the registry is first read. Commands that
run no hooks (``kedro viz run``/``build``, ``kedro registry list``) read the environment
named by ``KEDRO_ENV`` (default: ``local``, over ``base``), as Kedro does.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PIPELINES_MODULE = "imgclf.pipeline_registry"

_active: dict[str, Any] | None = None


def use(parameters: Mapping[str, Any]) -> None:
    """Build the pipelines from ``parameters`` from now on; pipelines already built from
    other parameters (an earlier session in this process) are built again."""
    global _active  # noqa: PLW0603 - the registry takes no arguments: this is its input
    parameters = dict(parameters)
    if parameters == _active:
        return
    _active = parameters
    from kedro.framework.project import pipelines

    pipelines.configure(PIPELINES_MODULE)


def active() -> dict[str, Any]:
    """The parameters given to :func:`use`, or else those of ``KEDRO_ENV``'s environment
    in the Kedro project around the working directory."""
    if _active is not None:
        return _active
    return load(os.environ.get("KEDRO_ENV") or None)


def load(env: str | None, project_path: Path | None = None) -> dict[str, Any]:
    """The parameters of environment ``env`` (None: the default run environment) as Kedro
    loads them, from ``project_path`` (default: the Kedro project around the working
    directory).

    Raises:
        ValueError: outside a Kedro project.
    """
    from kedro.utils import find_kedro_project

    from imgclf import settings

    project_path = project_path or find_kedro_project(Path.cwd())
    if project_path is None:
        raise ValueError(
            f"no Kedro project around {Path.cwd()}: run kedro from the project's folder"
        )
    arguments = dict(settings.CONFIG_LOADER_ARGS)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(Path(project_path) / "conf"),
        env=env or arguments.get("default_run_env"),
        **arguments,
    )
    return dict(loader["parameters"])
