"""The whole default graph on conf/test, then predict: every model scored, the baseline
beside them, the leaderboard, the report and predictions with the best network."""

from __future__ import annotations

import html
import json
import os
import shutil
import subprocess

import nbformat
import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from nbclient import NotebookClient
from PIL import Image
from tests.conftest import PROJECT, copy_project, kedro, kedro_run

from imgclf import project_parameters
from imgclf.variants import declare_variants

pytestmark = pytest.mark.slow  # every test here reads the finished project of one whole run

DECLARED = declare_variants(project_parameters.load("test", PROJECT))
NETWORKS = [variant.namespace for variant in DECLARED if variant.network]
BASELINE = "baseline.logistic_regression"  # the test env's only baseline
PLOTS = {"confusion_matrix", "confusion_matrix_normalised", "misclassified", "least_confident"}
NETWORK_PLOTS = {"training_curves", "grad_cam", "activations_first_conv", "activations_last_conv"}
# S0's CNN1 max-pools its last convolution; the others flatten it or pool only earlier maps
POOLED = {"scratch_cnn.shallow"}


@pytest.fixture(scope="module")
def finished_project(tmp_path_factory):
    root = copy_project(tmp_path_factory.mktemp("evaluate") / "project")
    # the whole graph in a process of its own, as users run it (its memory leaves with it)
    kedro(root, "run", "--env", "test", "--params", "backbone.weights=none")
    kedro_run(root, "--env", "test", "--pipelines", "predict", "--params", "predict.batch_size=32")
    return root / "data" / "test"


def test_every_variant_and_the_baseline_are_on_the_leaderboard(finished_project):
    leaderboard = pd.read_csv(finished_project / "08_reporting" / "leaderboard.csv")
    assert sorted(leaderboard["model"]) == sorted([*NETWORKS, BASELINE])
    assert leaderboard["test_accuracy"].is_monotonic_decreasing
    assert set(leaderboard["family"]) == {"scratch_cnn", "transfer", "finetune", "baseline"}
    backbone = project_parameters.load("test", PROJECT)["backbone"]["name"]
    assert leaderboard.loc[leaderboard["family"] == "transfer", "backbone"].eq(backbone).all()
    summary = (finished_project / "08_reporting" / "leaderboard_summary.md").read_text()
    assert f"**Best overall: {leaderboard['model'].iloc[0]}**" in summary
    markdown = (finished_project / "08_reporting" / "leaderboard.md").read_text()
    rows = [line.split(" | ")[0].lstrip("| ") for line in markdown.splitlines()[4:]]
    assert rows == leaderboard["model"].tolist()


def test_the_summary_compares_the_variants_that_differ_in_one_setting(finished_project):
    pairs = pd.read_csv(finished_project / "08_reporting" / "setting_comparisons.csv")
    compared = {(row.setting, row.model_a, row.model_b) for row in pairs.itertuples()}
    # base's four transfer variants: two optimizers, with and without augmentation
    assert {
        ("training.optimizer", "transfer.adam", "transfer.sgd"),
        ("training.optimizer", "transfer.adam_aug", "transfer.sgd_aug"),
        ("training.augmentation", "transfer.adam", "transfer.adam_aug"),
        ("training.augmentation", "transfer.sgd", "transfer.sgd_aug"),
    } <= compared
    summary = (finished_project / "08_reporting" / "leaderboard_summary.md").read_text()
    (optimizer,) = pairs[
        (pairs["model_a"] == "transfer.adam") & (pairs["model_b"] == "transfer.sgd")
    ][["value_a", "value_b", "winning_value"]].itertuples(index=False)
    assert optimizer[:2] == ("adam", "sgd")
    line = next(line for line in summary.splitlines() if "transfer.adam (adam," in line)
    assert line.startswith("  - training.optimizer: transfer.adam (adam, ")
    assert (
        ("level" in line)
        if optimizer.winning_value == "level"
        else (f"**{optimizer.winning_value}** beat" in line)
    )


def test_the_tuned_variant_writes_its_trials_and_the_studys_plots(finished_project):
    reporting = finished_project / "08_reporting" / "scratch_cnn" / "tuned"
    for output in ("optimization_history.png", "param_importances.png", "training_curves.png"):
        assert (reporting / output).stat().st_size > 0
    trials = pd.read_csv(finished_project / "07_model_output/scratch_cnn/tuned/trials.csv")
    assert len(trials) == 3  # the test environment's n_trials


@pytest.mark.parametrize("name", ["transfer.sgd_aug", "scratch_cnn.tuned", BASELINE])
def test_metrics_agree_with_the_saved_test_predictions(finished_project, name):
    family, variant = name.split(".")
    metrics = json.loads(
        (finished_project / "08_reporting" / family / variant / "metrics.json").read_text()
    )
    predictions = pd.read_csv(
        finished_project / "07_model_output" / family / variant / "test_predictions.csv"
    )
    test_index = pd.read_parquet(finished_project / "05_model_input" / "test_index.parquet")

    assert predictions["path"].tolist() == test_index["path"].tolist()
    assert metrics["test"]["accuracy"] == pytest.approx(predictions["correct"].mean())
    assert (
        metrics["test"]["examples"]
        == len(test_index)
        == sum(map(sum, metrics["test"]["confusion_matrix"]))
    )
    assert metrics["misclassified"] == int((~predictions["correct"]).sum())
    margins = [row["margin"] for row in metrics["least_confident"]]
    assert margins == sorted(margins) and margins[0] == pytest.approx(predictions["margin"].min())


def test_plots_and_explanations_lie_beside_the_metrics(finished_project):
    for name in [*NETWORKS, BASELINE]:
        folder = finished_project / "08_reporting" / name.replace(".", "/")
        plots = {path.stem for path in (folder / "evaluation").glob("*.png")}
        assert PLOTS <= plots
        explanations = {path.stem for path in (folder / "explanations").glob("*.png")}
        if name == BASELINE:
            assert not explanations and "training_curves" not in plots
        else:
            expected = {"grad_cam", "activations_first_conv", "activations_last_conv"}
            pooled = {"activations_last_conv_pooled"} if name in POOLED else set()
            assert explanations == expected | pooled
            assert "training_curves" in plots


def test_the_report_is_one_self_contained_page_with_every_model(finished_project):
    page = (finished_project / "08_reporting" / "report.html").read_text()
    leaderboard = pd.read_csv(finished_project / "08_reporting" / "leaderboard.csv")
    sections = page.split('<h3 id="')[1:]
    # one section per model, in leaderboard order, each embedding its own plots
    assert [section.split('"', 1)[0] for section in sections] == leaderboard["model"].tolist()
    for section in sections:
        name = section.split('"', 1)[0]
        shown = {alt.split('"', 1)[0] for alt in section.split('<img alt="')[1:]}
        plots = {
            "confusion_matrix",
            "confusion_matrix_normalised",
            "misclassified",
            "least_confident",
        }
        explained = {
            "grad_cam",
            "activations_first_conv",
            "activations_last_conv",
            "training_curves",
        }
        tuning = {"optimization_history", "param_importances"}
        if name in POOLED:
            explained = explained | {"activations_last_conv_pooled"}
        expected = plots if name == BASELINE else plots | explained
        assert shown == (expected | tuning if name == "scratch_cnn.tuned" else expected)
    assert 'alt="leaderboard" src="data:image/' in page
    # the data section shows the class distribution and sample images
    data = page.split('<section id="data">', 1)[1].split("</section>", 1)[0]
    assert 'alt="images per class"' in data and 'alt="sample images per class"' in data
    # conf/test trains its backbones from random weights, and the page says so first
    warning = page.split('<p class="warning">', 1)[1].split("</p>", 1)[0]
    assert page.index('<p class="warning">') < page.index('<section id="data">')
    assert "transfer.adam" in warning and "random backbone weights" in warning
    # the key leaderboard columns come first, every column behind a fold
    board = page.split('<section id="leaderboard">', 1)[1]
    first_table = board.split("<table>", 1)[1].split("</thead>", 1)[0]
    assert [cell.split("<", 1)[0] for cell in first_table.split("<th>")[1:]] == [
        "model",
        "test accuracy",
        "macro F1",
        "val accuracy",
        "seconds",
        "parameters",
        "backbone weights",
    ]
    assert "<summary>all columns</summary>" in board
    assert "[[" not in page and "{'" not in page  # no Python reprs
    assert page.count(" src=") == page.count(' src="data:image/')  # nothing links a file


def test_predict_labels_the_new_images_with_the_best_network(finished_project):
    leaderboard = pd.read_csv(finished_project / "08_reporting" / "leaderboard.csv")
    best = leaderboard[leaderboard["family"] != "baseline"]["model"].iloc[0]
    output = finished_project / "07_model_output" / "predictions"
    summary = json.loads((output / "summary.json").read_text())
    predictions = pd.read_csv(output / "predictions.csv")

    assert summary["model"] == best
    assert summary["predicted"] == len(predictions) == 48  # conf/test: 4 test images x 12 classes
    assert summary["unreadable"] == 0
    assert {"label", "confidence", "label_3", "confidence_3", "true_label"} <= set(
        predictions.columns
    )
    assert (finished_project / "06_models" / "exported" / "saved_model" / "saved_model.pb").exists()


def test_each_run_is_an_mlflow_run_with_every_variants_parameters_and_scores(finished_project):
    client = MlflowClient(f"sqlite:///{finished_project / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("imgclf")
    runs = {run.info.run_name: run for run in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"__default__", "predict"}  # the second run beside the first
    default = runs["__default__"]
    params, scores = default.data.params, default.data.metrics
    assert default.info.status == "FINISHED" and default.data.tags["env"] == "test"
    assert params["backbone.weights"] == "none"
    for name in NETWORKS:
        # the parameters the variant was trained with, and its scores
        assert params[f"{name}.config.name"] == name
        assert int(params[f"{name}.config.training.epochs"]) >= 1
        metrics = json.loads(
            (
                finished_project / "08_reporting" / name.replace(".", "/") / "metrics.json"
            ).read_text()
        )
        assert scores[f"{name}.test_accuracy"] == pytest.approx(metrics["test"]["accuracy"])
        history = json.loads(
            (
                finished_project / "07_model_output" / name.replace(".", "/") / "history.json"
            ).read_text()
        )
        epochs = client.get_metric_history(default.info.run_id, f"{name}.history.val_loss")
        assert [metric.step for metric in epochs] == [row["epoch"] for row in history["epochs"]]
    assert 0 <= scores[f"{BASELINE}.test_accuracy"] <= 1
    artifacts = {artifact.path for artifact in client.list_artifacts(default.info.run_id)}
    assert {"report.html", "leaderboard.json", "leaderboard_plot.png", "scratch_cnn"} <= artifacts
    tuned = {a.path for a in client.list_artifacts(default.info.run_id, "scratch_cnn/tuned")}
    assert {"scratch_cnn/tuned/trials.json", "scratch_cnn/tuned/param_importances.png"} <= tuned
    assert runs["predict"].data.params["predict.batch_size"] == "32"


BROWSERS = ("chromium-headless-shell", "chromium", "google-chrome")
PAGE_CHECK = """<script>window.addEventListener("load", () => {
  const images = [...document.images];
  const board = document.querySelector("#leaderboard .scroll table").getBoundingClientRect();
  const page = document.documentElement;
  const check = document.createElement("pre");
  check.id = "check";
  check.textContent = JSON.stringify({
    images: images.length,
    broken: images.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.alt),
    page_width: page.clientWidth,
    scroll_width: page.scrollWidth,
    leaderboard_right: board.right,
  });
  document.body.appendChild(check);
});</script>"""


def headless_browser() -> str:
    """Chromium's path; without one CI fails (`make test` installs Debian's package) and a
    developer's run skips."""
    found = next((path for path in map(shutil.which, BROWSERS) if path), None)
    if found is None:
        message = "no headless Chromium: apt-get install chromium-headless-shell (make browser)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def test_the_report_reads_well_in_a_browser(finished_project, tmp_path):
    browser = headless_browser()
    report = finished_project / "08_reporting" / "report.html"
    checked = tmp_path / "report.html"
    checked.write_text(report.read_text().replace("</body>", PAGE_CHECK + "</body>"))
    flags = ["--no-sandbox", "--disable-gpu", "--window-size=1280,2400", "--hide-scrollbars"]
    shot = tmp_path / "report.png"
    subprocess.run(
        [browser, *flags, f"--screenshot={shot}", report.as_uri()],
        check=True,
        capture_output=True,
        timeout=120,
    )
    dom = subprocess.run(
        [browser, *flags, "--virtual-time-budget=20000", "--dump-dom", checked.as_uri()],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    result = json.loads(html.unescape(dom.split('<pre id="check">', 1)[1].split("</pre>", 1)[0]))
    # every embedded image decodes, and nothing, the leaderboard least, is wider than the page
    assert result["images"] > 20 and result["broken"] == []
    assert result["scroll_width"] <= result["page_width"] == 1280
    assert result["leaderboard_right"] <= result["page_width"]
    with Image.open(shot) as screenshot:
        assert screenshot.size == (1280, 2400)
        assert np.asarray(screenshot.convert("L")).std() > 10  # a page, not a blank


def test_the_results_notebook_runs_on_the_finished_project(finished_project, monkeypatch):
    project = finished_project.parent.parent
    notebook = nbformat.read(PROJECT / "notebooks" / "results.ipynb", as_version=4)
    monkeypatch.setenv("KEDRO_ENV", "test")  # the kernel inherits it: %reload_kedro loads it
    client = NotebookClient(
        notebook, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(project)}}
    )
    client.execute()  # raises on the first cell that fails
    outputs = [out for cell in notebook.cells if cell.cell_type == "code" for out in cell.outputs]
    text = " ".join(
        str(out.get("data", {}).get("text/plain", out.get("text", ""))) for out in outputs
    )
    assert "test_accuracy" in text and "weights" in text  # the leaderboard
    assert any("image/png" in out.get("data", {}) for out in outputs)  # its plots
    assert "predicted" in text and "confidence" in text  # the prediction table
    assert "__default__" in text and "predict" in text  # the MLflow runs
