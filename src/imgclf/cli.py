"""The project's own ``kedro`` commands (Kedro adds this module's ``cli`` group's commands
to its own): ``kedro deploy airflow``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from kedro.framework.startup import ProjectMetadata

from imgclf.deployment import DEFAULT_ENV, write_airflow_dag

AIRFLOW_CONFIG_PATTERNS = ["airflow*", "airflow*/**"]


@click.group(name="imgclf")
def cli() -> None:
    """imgclf's commands."""


@cli.group()
def deploy() -> None:
    """Hand the project's graph to an orchestrator."""


@deploy.command()
@click.option("-e", "--env", default=DEFAULT_ENV, show_default=True, help="Kedro environment")
@click.option(
    "-p",
    "--pipeline",
    "pipeline_name",
    default="__default__",
    show_default=True,
    help="the pipeline to deploy",
)
@click.option(
    "-t",
    "--target-dir",
    default="airflow_dags",
    show_default=True,
    type=click.Path(file_okay=False),
    help="folder of the DAG file (relative: to the project)",
)
@click.pass_obj
def airflow(metadata: ProjectMetadata, env: str, pipeline_name: str, target_dir: str) -> None:
    """Write an Apache Airflow DAG of a pipeline with one task per namespace: each
    variant trains in one task and is evaluated in another (docs/deployment.md). DAG
    arguments (schedule, retries, start_date, ...) come from conf/<env>/airflow.yml:
    ``default:`` for every pipeline, ``<pipeline>:`` for one."""  # fmt: skip
    from kedro.framework.project import pipelines
    from kedro.framework.session import KedroSession

    with KedroSession.create(project_path=metadata.project_path, env=env) as session:
        context = session.load_context()  # also picks the environment's variants
        settings = _dag_settings(context.config_loader, pipeline_name)
    if pipeline_name not in pipelines:
        raise click.BadParameter(
            f"no pipeline {pipeline_name!r}; the pipelines are {', '.join(sorted(pipelines))}",
            param_hint="--pipeline",
        )
    folder = Path(target_dir)
    try:
        path, tasks = write_airflow_dag(
            pipelines[pipeline_name],
            catalog=context.catalog,
            pipeline_name=pipeline_name,
            env=env,
            package_name=metadata.package_name,
            folder=folder if folder.is_absolute() else metadata.project_path / folder,
            settings=settings,
        )
    except ValueError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"Wrote {path} ({tasks} tasks) for pipeline {pipeline_name!r} of env {env!r}")


def _dag_settings(config: Any, pipeline_name: str) -> dict[str, Any]:
    """``default`` then ``<pipeline_name>`` of the environment's airflow config, if any."""
    from kedro.config import MissingConfigException

    config.config_patterns.setdefault("airflow", AIRFLOW_CONFIG_PATTERNS)
    try:
        airflow = dict(config["airflow"])
    except MissingConfigException:
        return {}
    return {**airflow.get("default", {}), **airflow.get(pipeline_name, {})}
