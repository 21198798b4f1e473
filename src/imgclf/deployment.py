"""The project's graph as an Apache Airflow DAG: one task per namespace, so each variant
trains in one task (one process: TensorFlow started once, no model handed between tasks)
and is evaluated in one more, written with kedro-airflow's own DAG template
(``kedro deploy airflow``, see docs/deployment.md).

A task runs its nodes with ``KedroSession.run(node_names=...)`` in the project folder,
in the environment the DAG was made for; Airflow orders the tasks as the nodes' inputs
and outputs order them.
"""

from __future__ import annotations

import graphlib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.pipeline import Pipeline
from kedro.pipeline.node import GroupedNodes, Node

from imgclf import atomic

TEMPLATE = "airflow_dag_template.j2"
# kedro-airflow's run environment default, whose DAG file name has no environment in it
DEFAULT_ENV = "local"


def namespace_tasks(pipeline: Pipeline) -> list[GroupedNodes]:
    """The nodes of ``pipeline`` grouped by their whole namespace (``scratch_cnn.deep``,
    ``evaluate.scratch_cnn.deep``, ``ingest``; a node without one is a task of its own),
    each group with the groups it depends on, in an order that runs.

    Raises:
        ValueError: if two namespaces depend on each other (no order runs them).
    """
    groups: dict[str, list[str]] = {}
    needs: dict[str, set[str]] = {}
    for node in pipeline.nodes:  # topologically sorted
        task = _task_name(node)
        groups.setdefault(task, []).append(node.name)
        parents = {_task_name(parent) for parent in pipeline.node_dependencies[node]}
        needs.setdefault(task, set()).update(parents - {task})
    try:
        order = list(graphlib.TopologicalSorter(needs).static_order())
    except graphlib.CycleError as error:
        raise ValueError(
            f"namespaces {' and '.join(sorted(set(error.args[1])))} depend on each other, "
            "so no order of one task per namespace runs them"
        ) from None
    return [
        GroupedNodes(name=task, type="nodes", nodes=groups[task], dependencies=sorted(needs[task]))
        for task in order
    ]


def passed_in_memory(pipeline: Pipeline, catalog: Any) -> list[str]:
    """The datasets that one task of :func:`namespace_tasks` makes and another reads but
    that ``catalog`` keeps in memory (undeclared, or a ``MemoryDataset``): in Airflow each
    task is a process of its own, so they would be gone."""
    from kedro.io import MemoryDataset

    makers = {output: _task_name(node) for node in pipeline.nodes for output in node.outputs}
    between = {
        name
        for node in pipeline.nodes
        for name in node.inputs
        if name in makers and makers[name] != _task_name(node)
    }
    return sorted(name for name in between if isinstance(catalog.get(name), MemoryDataset | None))


def write_airflow_dag(
    pipeline: Pipeline,
    *,
    catalog: Any,
    pipeline_name: str,
    env: str,
    package_name: str,
    folder: Path,
    settings: Mapping[str, Any],
) -> tuple[Path, int]:
    """Write the DAG file of ``pipeline`` (one task per namespace) into ``folder``; return
    its path, ``<package>[_<env>][_<pipeline>]_dag.py`` as kedro-airflow names it, and its
    number of tasks. The DAG's id is that name without ``_dag.py``. ``settings`` fill the
    template's DAG arguments (schedule, retries, start_date, ...).

    Raises:
        ValueError: if a dataset would pass between two tasks in memory (naming it), or
            two namespaces depend on each other.
    """
    lost = passed_in_memory(pipeline, catalog)
    if lost:
        raise ValueError(
            f"{', '.join(lost)} would pass between Airflow tasks in memory, and each task is a "
            f"process of its own: declare {'them' if len(lost) > 1 else 'it'} in "
            f"conf/{env}/catalog.yml (a file dataset) and run the command again"
        )
    import jinja2
    import kedro_airflow
    from slugify import slugify

    templates = jinja2.Environment(
        loader=jinja2.FileSystemLoader(Path(kedro_airflow.__file__).parent),
        autoescape=True,
        lstrip_blocks=True,
    )
    templates.filters["slugify"] = slugify
    suffix = "".join(
        f"_{part}" for part, default in ((env, DEFAULT_ENV), (pipeline_name, "__default__"))
        if part != default
    )  # fmt: skip
    tasks = namespace_tasks(pipeline)
    text = templates.get_template(TEMPLATE).render(
        dag_name=package_name + suffix,
        node_objs=tasks,
        env=env,
        pipeline_name=pipeline_name,
        package_name=package_name,
        pipeline=pipeline,
        conf_source="",
        **settings,
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{package_name}{suffix}_dag.py"
    atomic.write_text(path, text)
    return path, len(tasks)


def _task_name(node: Node) -> str:
    return node.namespace or node.name
