"""`kedro deploy airflow`: the graph as an Airflow DAG with one task per namespace."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline, node
from slugify import slugify

from conftest import environment_on_test_sizes, kedro, kedro_run
from imgclf import project_parameters
from imgclf.deployment import namespace_tasks, passed_in_memory


def _identity(*values):
    return values[0]


def small_pipeline() -> Pipeline:
    return Pipeline(
        [
            node(_identity, "raw", "clean", name="prepare", namespace="ingest"),
            node(_identity, "clean", "model_a", name="a.train", namespace="fit.a"),
            node(_identity, "model_a", "curve_a", name="a.plot", namespace="fit.a"),
            node(_identity, "clean", "model_b", name="b.train", namespace="fit.b"),
            node(_identity, ["model_a", "model_b"], "report", name="report"),
        ]
    )


def test_each_namespace_is_one_task_after_the_tasks_it_reads_from():
    tasks = namespace_tasks(small_pipeline())

    names = [task.name for task in tasks]
    assert (names[0], names[-1]) == ("ingest", "report")  # report: a node without a namespace
    by_name = {task.name: task for task in tasks}
    assert by_name["fit.a"].nodes == ["fit.a.a.train", "fit.a.a.plot"]
    assert by_name["fit.a"].dependencies == ["ingest"]
    assert by_name["report"].dependencies == ["fit.a", "fit.b"]


def test_namespaces_that_need_each_other_are_refused_by_name():
    pipeline = Pipeline(
        [
            node(_identity, "x", "y", name="one", namespace="first"),
            node(_identity, "y", "z", name="two", namespace="second"),
            node(_identity, "z", "w", name="three", namespace="first"),
        ]
    )
    with pytest.raises(ValueError, match="namespaces first and second depend on each other"):
        namespace_tasks(pipeline)


def test_datasets_that_would_pass_between_tasks_in_memory_are_named():
    catalog = DataCatalog({"model_a": MemoryDataset()})  # declared, but in memory
    # clean (undeclared) and model_a pass between tasks; curve_a and raw do not
    assert passed_in_memory(small_pipeline(), catalog) == ["clean", "model_a", "model_b"]


AIRFLOW_IMPORT = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
(dag,) = bag.dags.values()
ran = []
for task_id in sys.argv[2:]:  # run these tasks' Python bodies: Kedro in this folder
    dag.get_task(task_id).python_callable()
    ran.append(task_id)
print(json.dumps({
    "errors": bag.import_errors,
    "dag_id": dag.dag_id,
    "tasks": {task.task_id: sorted(task.upstream_task_ids) for task in dag.tasks},
    "ran": ran,
    "schedule": dag.schedule,
    "retries": dag.default_args["retries"],
}))
"""


@pytest.mark.slow
def test_the_dag_airflow_imports_has_one_task_per_variant_ordered_as_the_graph(
    project, tmp_path, monkeypatch
):
    env = environment_on_test_sizes(project, "experiments")
    (project / "conf" / env / "airflow.yml").write_text(
        "default:\n  schedule: '@weekly'\n  retries: 2\n"
    )
    made = kedro(project, "deploy", "airflow", "--env", env)
    dag_file = project / "airflow_dags" / f"imgclf_{env}_dag.py"
    assert str(dag_file) in made.stdout.replace("\n", "")

    imported = subprocess.run(
        [sys.executable, "-c", AIRFLOW_IMPORT, str(dag_file.parent), "ingest", "split"],
        cwd=project,
        env={
            **os.environ,
            "AIRFLOW_HOME": str(tmp_path / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "KEDRO_DISABLE_TELEMETRY": "true",
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert imported.returncode == 0, imported.stderr[-3000:]
    dag = json.loads(imported.stdout.strip().splitlines()[-1])
    assert dag["errors"] == {}
    assert dag["dag_id"] == slugify(f"imgclf_{env}")
    assert (dag["schedule"], dag["retries"]) == ("@weekly", 2)  # from conf/<env>/airflow.yml

    monkeypatch.setattr(project_parameters, "_active", None)  # the registry's, restored after
    project_parameters.use(project_parameters.load(env, project))
    from kedro.framework.project import pipelines

    graph = pipelines["__default__"]
    expected = {
        slugify(task.name): sorted(slugify(needed) for needed in task.dependencies)
        for task in namespace_tasks(graph)
    }
    assert dag["tasks"] == expected
    # every variant of the environment trains in a task of its own, after the split
    trained = {each.namespace for each in graph.nodes if each.name.endswith(".train")}
    for namespace in trained:
        assert "split" in dag["tasks"][slugify(namespace)]
    text = dag_file.read_text()
    assert all(f'"{graph_node.name}"' in text for graph_node in graph.nodes)
    # the tasks' bodies run Kedro: ingest and split wrote the split
    assert dag["ran"] == ["ingest", "split"]
    assert (project / "data" / env / "05_model_input" / "train_index.parquet").is_file()


@pytest.mark.slow
def test_data_dir_may_be_an_fsspec_url_with_the_local_folders_kept_local(project, tmp_path):
    """With ``data_dir`` an fsspec URL (``memory:///`` here, ``s3://`` for users), the
    indexes, feature caches, models and metrics are written there and read back by the
    next nodes; what deployment.md says stays local (checkpoints, TensorBoard, the Optuna
    and MLflow stores) is set to local folders, as it tells users to."""
    import fsspec

    conf = project / "conf"
    (conf / "test" / "globals.yml").write_text("data_dir: memory:///imgclf/test\n")
    local = tmp_path / "local"
    for name, old, new in (
        # the demo's generator draws into a local folder
        ("test/catalog.yml", "${globals:data_dir}/01_raw", str(local / "01_raw")),
        ("base/mlflow.yml", "${project_path:}/${globals:data_dir}", str(local)),
    ):
        (conf / name).write_text((conf / name).read_text().replace(old, new))
    settings = ",".join(
        f"{key}={value}"
        for key, value in {
            "checkpoint_dir": local / "checkpoints",
            "tensorboard_dir": local / "tensorboard",
            "scratch_cnn.tuned.tuning.storage": f"sqlite:///{local / 'optuna.db'}",
        }.items()
    )
    kedro_run(project, "--env", "test", "--pipelines", "ingest,split", "--params", settings)
    namespaces = "scratch_cnn.shallow,transfer.features,transfer.adam,evaluate.scratch_cnn.shallow"
    kedro_run(
        project,
        *("--env", "test", "--pipelines", "scratch_cnn,transfer,evaluate"),
        *("--namespaces", namespaces, "--params", settings),
    )

    written = {
        path.removeprefix("/imgclf/test/")
        for path in fsspec.filesystem("memory").find("/imgclf/test")
    }
    for expected in (
        "05_model_input/train_index.parquet",
        "06_models/scratch_cnn/shallow/model.keras",
        "06_models/transfer/adam/model.keras",
        "07_model_output/scratch_cnn/shallow/test_predictions.csv",
        "08_reporting/scratch_cnn/shallow/metrics.json",
    ):
        assert expected in written, "\n".join(sorted(written))
    assert any(path.startswith("04_feature/transfer/") for path in written), sorted(written)
    assert not (project / "data").exists()  # nothing fell back to a local data folder
    assert not any(project.glob("memory*"))  # nor to a folder named after the URL
