"""Tests for Optuna tuning (imgclf.training.tuning, storage, study, trials and the study
plots), with cheap synthetic objectives (no TensorFlow)."""

from __future__ import annotations

import copy
import itertools
import logging
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import optuna
import pytest
from optuna.trial import FixedTrial, TrialState

from imgclf.reporting.tuning import plot_optimization_history, plot_parameter_importances
from imgclf.training.search_space import (
    apply_suggestions,
    grid_values,
    parse_search_space,
    suggest,
    validate_targets,
)
from imgclf.training.storage import make_storage
from imgclf.training.study import counts_toward_budget, run_study, worker_name
from imgclf.training.trials import best_parameters, trials_table
from imgclf.training.tuning import VALID_KEYS, make_pruner, make_sampler, parse_tuning_config

optuna.logging.set_verbosity(optuna.logging.WARNING)

SPACE = {
    "units": {
        "type": "int",
        "low": 32,
        "high": 512,
        "step": 32,
        "target": "architecture.head.dense.0.units",
    },
    "activation": {
        "type": "categorical",
        "choices": ["relu", "tanh"],
        "target": "architecture.head.dense.0.activation",
    },
    "dropout": {
        "type": "bool",
        "target": "architecture.head.dense.0.dropout",
        "if_true": 0.25,
        "if_false": 0.0,
    },
    "learning_rate": {
        "type": "float",
        "low": 1.0e-4,
        "high": 1.0e-2,
        "log": True,
        "target": "training.optimizer.learning_rate",
    },
    "optimizer": {
        "type": "categorical",
        "choices": ["adam", "sgd"],
        "target": "training.optimizer.name",
    },
    "momentum": {
        "type": "float",
        "low": 0.0,
        "high": 0.95,
        "when": {"optimizer": "sgd"},
        "target": "training.optimizer.momentum",
        "default": 0.0,
    },
    "batch_size": {"type": "categorical", "choices": [16, 32, 64], "target": "training.batch_size"},
}
BASE_CONFIG = {
    "architecture": {"head": {"dense": [{"units": 64, "activation": "relu", "dropout": 0.5}]}},
    "training": {"optimizer": {"name": "adam", "learning_rate": 0.001}, "batch_size": 32},
}
ADAM_VALUES = {
    "units": 128,
    "activation": "tanh",
    "dropout": True,
    "learning_rate": 0.003,
    "optimizer": "adam",
    "batch_size": 64,
}
X_SPACE = {"x": {"type": "float", "low": 0.0, "high": 1.0}}

# A tuning worker run as a separate process: argv = storage URL, mode, seed, n_trials,
# sync folder. It writes "ready-<pid>" there and waits for "go" before it starts.
WORKER_SCRIPT = """
import os
import sys
import time
from pathlib import Path

from imgclf.training.search_space import suggest
from imgclf.training.study import run_study
from imgclf.training.tuning import parse_tuning_config

storage, mode, seed, n_trials, sync = sys.argv[1:6]
config = parse_tuning_config(
    {
        "study_name": "workers",
        "storage": storage,
        "n_trials": int(n_trials),
        "sampler": {"name": "random"},
        "pruner": "none",
        "search_space": {"x": {"type": "float", "low": 0.0, "high": 1.0}},
    }
)


def objective(trial):
    x = suggest(trial, config.search_space)["x"]
    if mode == "hang" and trial.number >= 2:
        time.sleep(600)
    if mode == "sleep":
        time.sleep(0.2)
    return x


(Path(sync) / f"ready-{os.getpid()}").touch()
while not (Path(sync) / "go").exists():
    time.sleep(0.01)
run_study(objective, config, seed=int(seed), max_resource=1)
"""


def tuning(**settings: Any) -> dict[str, Any]:
    """A tuning parameter block over ``X_SPACE`` with a random sampler and no pruner."""
    return {
        "search_space": X_SPACE,
        "sampler": {"name": "random"},
        "pruner": {"name": "none"},
        "n_trials": 3,
        **settings,
    }


def x_objective(trial: optuna.Trial) -> float:
    return suggest(trial, X_SPACE)["x"]


def sqlite_url(folder: Path) -> str:
    return f"sqlite:///{folder}/optuna/study.db"


def load(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=make_storage(url))


def by_number(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return sorted(study.get_trials(), key=lambda trial: trial.number)


# Parsing.


def test_parse_search_space_reads_every_type_in_declaration_order():
    space = parse_search_space(SPACE)

    assert space.names == tuple(SPACE)
    units = space["units"]
    assert (units.type, units.low, units.high, units.step, units.log) == ("int", 32, 512, 32, False)
    assert units.targets == ("architecture.head.dense.0.units",)
    assert space["learning_rate"].log and space["learning_rate"].step is None
    assert space["dropout"].choices == (False, True)
    assert space["momentum"].when == (("optimizer", ("sgd",)),)
    assert space["momentum"].has_default and space["momentum"].default == 0.0


def test_a_null_entry_removes_a_parameter_from_the_search_space():
    space = parse_search_space({**SPACE, "units": None, "momentum": None})
    assert "units" not in space.names and "momentum" not in space.names
    assert space.names == tuple(name for name in SPACE if name not in ("units", "momentum"))


@pytest.mark.parametrize(
    ("parameters", "message"),
    [
        ({"x": {"type": "integer", "low": 1, "high": 2}}, "valid types are: int, float, cat"),
        (
            {"x": {"type": "int", "low": 1, "high": 9, "stp": 2}},
            r"unknown key\(s\) in .*\(type int\): stp; valid keys are: .*step",
        ),
        ({"x": {"type": "float", "low": 0.5, "high": 0.5}}, "low < high"),
        ({"x": {"type": "int", "low": 1}}, "needs 'high'"),
        ({"x": {"type": "int", "low": 1, "high": 9, "step": 0}}, "'step' must be > 0"),
        ({"x": {"type": "int", "low": 1.5, "high": 9}}, "'low' must be an integer"),
        (
            {"x": {"type": "float", "low": 0.1, "high": 1, "log": True, "step": 0.1}},
            "'log' and 'step' are exclusive",
        ),
        ({"x": {"type": "float", "low": 0.0, "high": 1, "log": True}}, "'log' needs low > 0"),
        ({"x": {"type": "categorical", "choices": []}}, "non-empty list"),
        ({"x": {"type": "categorical", "choices": [[1, 2]]}}, "strings, numbers, booleans"),
        ({"x": {"type": "bool", "if_true": 0.25}}, "both 'if_true' and 'if_false'"),
        ({"x": {"type": "bool", "default": True}}, "'default' is only used"),
        ({"x": {"type": "bool", "target": "model..units"}}, "no empty segments"),
        ({"x": {"type": "int", "low": 1, "high": 3, "grid": [1, 5]}}, r"5 is outside \[1, 3\]"),
        (
            {"x": {"type": "bool", "when": {"optimiser": "sgd"}}},
            "'when' names 'optimiser', which is not a parameter",
        ),
        (
            {"x": {"type": "bool", "when": {"y": True}}, "y": {"type": "bool"}},
            "'when' names 'y', which is declared after it",
        ),
        (
            {
                "y": {"type": "categorical", "choices": ["adam", "sgd"]},
                "x": {"type": "bool", "when": {"y": "sdg"}},
            },
            "'sdg', which is not one of its choices",
        ),
        ({}, "at least one parameter"),
    ],
)
def test_parse_search_space_rejects_bad_parameters_naming_the_problem(parameters, message):
    with pytest.raises(ValueError, match=message):
        parse_search_space(parameters)


def test_parse_tuning_config_fills_defaults_and_infers_the_direction():
    config = parse_tuning_config({"search_space": X_SPACE})

    assert config.sampler == {"name": "tpe"}
    assert config.pruner == {"name": "percentile"}
    assert (config.storage, config.study_name, config.direction) == (None, None, "maximize")
    assert (config.n_trials, config.executions_per_trial, config.monitor) == (20, 1, "val_accuracy")
    assert config.timeout is None and config.epochs is None
    minimize = parse_tuning_config({"search_space": X_SPACE, "monitor": "val_loss"})
    assert minimize.direction == "minimize"
    shorthand = parse_tuning_config(
        {"search_space": X_SPACE, "sampler": "random", "pruner": "none"}
    )
    assert (shorthand.sampler, shorthand.pruner) == ({"name": "random"}, {"name": "none"})


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"n_trails": 5}, r"unknown key\(s\) in tuning: n_trails; valid keys are: .*n_trials"),
        ({"n_trials": 0}, "'n_trials' must be an integer >= 1"),
        ({"executions_per_trial": 0}, "'executions_per_trial' must be an integer >= 1"),
        ({"timeout": -1}, "'timeout' must be a positive number"),
        ({"direction": "up"}, "'direction' must be one of maximize, minimize"),
        ({"sampler": {"name": "cmaes"}}, "valid names are: tpe, random, grid"),
        ({"sampler": {"name": "tpe", "startup": 3}}, "valid options are: .*n_startup_trials"),
        ({"pruner": {"name": "median", "warmup": 3}}, "valid options are: .*n_warmup_steps"),
        ({"sampler": {"name": "grid"}}, "cannot enumerate float parameter.*x.*grid:"),
        ({"storage": "sqlite:///x.db"}, "'study_name' is needed with a storage"),
        (
            {"storage": "redis://host", "study_name": "s"},
            "'storage' 'redis://host' is not supported",
        ),
        ({"storage": "journal://x.log", "study_name": "s"}, "journal:///relative/path.log"),
        (
            {"storage": "mysql+pymysql://me:secret@db/optuna", "study_name": "s"},
            r"mysql\+pymysql://me:\*\*\*@db/optuna needs the database driver 'pymysql'",
        ),
        (
            {"storage": "postgresql+nodriver://db/optuna", "study_name": "s"},
            "is not a usable SQLAlchemy URL: Can't load plugin",
        ),
    ],
)
def test_parse_tuning_config_rejects_bad_settings(settings, message):
    with pytest.raises(ValueError, match=message):
        parse_tuning_config({**tuning(), **settings})


def test_a_postgresql_storage_without_its_driver_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "psycopg", None)  # `import psycopg` now fails
    settings = {"storage": "postgresql://me:secret@db/optuna", "study_name": "s"}
    with pytest.raises(ValueError, match=r"driver 'psycopg'.*pip install 'imgclf\[postgres\]'"):
        parse_tuning_config({**tuning(), **settings})
    monkeypatch.undo()
    assert parse_tuning_config({**tuning(), **settings}).storage == settings["storage"]


def test_parse_tuning_config_with_no_search_space_says_so():
    with pytest.raises(ValueError, match="needs a search_space"):
        parse_tuning_config({"n_trials": 3})
    assert "search_space" in VALID_KEYS


# Suggestions and targets.


def test_suggest_skips_a_parameter_whose_condition_fails_and_apply_writes_its_default():
    values = suggest(FixedTrial(ADAM_VALUES), SPACE)

    assert values == ADAM_VALUES
    assert list(values) == [name for name in SPACE if name != "momentum"]
    tuned = apply_suggestions(BASE_CONFIG, SPACE, values)
    assert tuned["training"]["optimizer"] == {
        "name": "adam",
        "learning_rate": 0.003,
        "momentum": 0.0,
    }
    assert tuned["architecture"]["head"]["dense"][0] == {
        "units": 128,
        "activation": "tanh",
        "dropout": 0.25,
    }
    assert tuned["training"]["batch_size"] == 64


def test_suggest_includes_a_parameter_whose_condition_holds_and_maps_false():
    fixed = {**ADAM_VALUES, "optimizer": "sgd", "momentum": 0.9, "dropout": False}
    values = suggest(FixedTrial(fixed), SPACE)

    assert values["momentum"] == 0.9
    tuned = apply_suggestions(BASE_CONFIG, SPACE, values)
    assert tuned["training"]["optimizer"]["momentum"] == 0.9
    assert tuned["training"]["optimizer"]["name"] == "sgd"
    assert tuned["architecture"]["head"]["dense"][0]["dropout"] == 0.0


def test_condition_with_a_list_of_values_and_parameter_without_default_or_target():
    space = {
        "family": {"type": "categorical", "choices": ["a", "b", "c"]},
        "width": {
            "type": "int",
            "low": 1,
            "high": 4,
            "when": {"family": ["a", "b"]},
            "target": "w",
        },
    }
    assert suggest(FixedTrial({"family": "b", "width": 3}), space) == {"family": "b", "width": 3}
    assert suggest(FixedTrial({"family": "c", "width": 3}), space) == {"family": "c"}
    assert apply_suggestions({"w": 9}, space, {"family": "c"}) == {"w": 9}


def test_apply_suggestions_returns_a_deep_copy_and_leaves_the_base_config_alone():
    base = copy.deepcopy(BASE_CONFIG)

    tuned = apply_suggestions(base, SPACE, ADAM_VALUES)

    assert base == BASE_CONFIG
    assert tuned is not base
    assert tuned["architecture"]["head"]["dense"] is not base["architecture"]["head"]["dense"]
    tuned["training"]["optimizer"]["name"] = "changed"
    assert base["training"]["optimizer"]["name"] == "adam"


def test_a_target_list_writes_every_path_and_list_indices_reach_into_lists():
    space = {"units": {"type": "int", "low": 8, "high": 64, "target": ["layers.0", "layers.1"]}}

    tuned = apply_suggestions({"layers": [1, 2, 3]}, space, {"units": 16})

    assert tuned == {"layers": [16, 16, 3]}


@pytest.mark.parametrize(
    ("target", "message"),
    [
        ("architecture.head.dense.3.units", "list index 3 is out of range"),
        ("architecture.body.dense", "no key 'body' in architecture; keys there are: head"),
        ("architecture.head.dense.first.units", "must be an index"),
        ("training.batch_size.value", "training.batch_size is a int"),
    ],
)
def test_a_target_that_does_not_exist_is_an_error_naming_the_path(target, message):
    space = {"units": {"type": "int", "low": 8, "high": 64, "target": target}}

    with pytest.raises(ValueError, match=message) as raised:
        apply_suggestions(BASE_CONFIG, space, {"units": 16})
    assert target in str(raised.value)
    with pytest.raises(ValueError, match=message):
        validate_targets(BASE_CONFIG, space)


def test_validate_targets_accepts_new_leaf_keys_and_lists_every_bad_path():
    validate_targets(BASE_CONFIG, SPACE)  # momentum is a new key of training.optimizer
    space = {
        "a": {"type": "bool", "target": "training.optimiser.momentum"},
        "b": {"type": "bool", "target": "architecture.head.dense.1.units"},
    }
    with pytest.raises(ValueError, match="optimiser") as raised:
        validate_targets(BASE_CONFIG, space)
    assert "dense.1.units" in str(raised.value)


def test_apply_suggestions_rejects_values_of_unknown_parameters():
    with pytest.raises(ValueError, match=r"unknown search-space parameter.*units2"):
        apply_suggestions(BASE_CONFIG, SPACE, {**ADAM_VALUES, "units2": 3})


# Sampler, pruner, storage.


def test_make_sampler_pruner_and_storage_build_what_the_settings_name(tmp_path):
    tpe = make_sampler({"name": "tpe", "n_startup_trials": 4}, 1, X_SPACE)
    assert isinstance(tpe, optuna.samplers.TPESampler)
    assert isinstance(make_sampler("random", 1, X_SPACE), optuna.samplers.RandomSampler)
    percentile = make_pruner(None, 12)  # the default: the top quarter from epoch 2 on
    assert isinstance(percentile, optuna.pruners.PercentilePruner)
    assert (percentile._percentile, percentile._n_startup_trials) == (25.0, 2)
    assert percentile._n_warmup_steps == 2
    assert make_pruner({"name": "percentile", "percentile": 10.0}, 12)._percentile == 10.0
    hyperband = make_pruner("hyperband", 12)
    assert isinstance(hyperband, optuna.pruners.HyperbandPruner)
    assert hyperband._max_resource == 12
    assert isinstance(make_pruner({"name": "median"}, 5), optuna.pruners.MedianPruner)
    assert isinstance(make_pruner("none", 5), optuna.pruners.NopPruner)

    rdb = make_storage(sqlite_url(tmp_path / "deep"), heartbeat_interval=30)
    assert isinstance(rdb, optuna.storages.RDBStorage)
    assert rdb.get_heartbeat_interval() == 30
    assert (tmp_path / "deep" / "optuna").is_dir()
    journal = make_storage(f"journal:///{tmp_path}/logs/study.log", heartbeat_interval=30)
    assert isinstance(journal, optuna.storages.JournalStorage)
    assert (tmp_path / "logs" / "study.log").is_file()


def test_grid_values_come_from_choices_bools_int_ranges_and_grid_lists():
    space = {
        "activation": {"type": "categorical", "choices": ["relu", "tanh"]},
        "dropout": {"type": "bool"},
        "units": {"type": "int", "low": 16, "high": 64, "step": 16},
        "rate": {"type": "float", "low": 0.0, "high": 1.0, "grid": [0.1, 0.5]},
    }
    assert grid_values(space) == {
        "activation": ["relu", "tanh"],
        "dropout": [False, True],
        "units": [16, 32, 48, 64],
        "rate": [0.1, 0.5],
    }


@pytest.mark.parametrize("n_trials", [6, 10])
def test_grid_sampler_tries_every_grid_point_exactly_once(n_trials):
    space = {
        "activation": {"type": "categorical", "choices": ["relu", "tanh"]},
        "layers": {"type": "int", "low": 1, "high": 3},
    }
    config = {"search_space": space, "sampler": "grid", "pruner": "none", "n_trials": n_trials}

    study = run_study(lambda trial: len(suggest(trial, space)), config, seed=0, max_resource=1)

    tried = [(trial.params["activation"], trial.params["layers"]) for trial in study.trials]
    assert len(tried) == 6  # a larger budget stops when the grid is exhausted
    assert set(tried) == set(itertools.product(["relu", "tanh"], [1, 2, 3]))


def test_tpe_with_the_same_seed_suggests_the_same_sequence():
    space = {
        "units": {"type": "int", "low": 8, "high": 256, "log": True},
        "rate": {"type": "float", "low": 0.0, "high": 1.0},
        "activation": {"type": "categorical", "choices": ["relu", "tanh", "gelu"]},
    }
    config = {
        "search_space": space,
        "sampler": {"name": "tpe", "n_startup_trials": 3},
        "pruner": "none",
        "n_trials": 6,
    }

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, space)
        return values["rate"] + values["units"] / 256

    def params(seed: int) -> list[dict[str, Any]]:
        study = run_study(objective, config, seed=seed, max_resource=1)
        return [trial.params for trial in study.trials]

    first = params(seed=11)
    assert params(seed=11) == first
    assert params(seed=12) != first


# The study loop.


def pruning_objective(trial: optuna.Trial) -> float:
    """Trial 3 reports clearly bad values, trial 5 raises; the others report 1.0 + 0.1 * step."""
    values = suggest(trial, {"x": X_SPACE["x"], "width": {"type": "int", "low": 1, "high": 4}})
    if trial.number == 5:
        raise RuntimeError("synthetic failure of trial 5")
    level = 0.0 if trial.number == 3 else 1.0
    for step in range(4):
        trial.report(level + 0.1 * step, step)
        if trial.should_prune():
            raise optuna.TrialPruned()
    return values["x"] + values["width"] / 10


@pytest.fixture(scope="module")
def pruned_study() -> optuna.Study:
    space = {"x": X_SPACE["x"], "width": {"type": "int", "low": 1, "high": 4}}
    config = tuning(
        search_space=space,
        pruner={"name": "median", "n_startup_trials": 2, "n_warmup_steps": 0},
        n_trials=8,
        study_name="pruned",
    )
    return run_study(pruning_objective, config, seed=0, max_resource=4)


def test_median_pruner_prunes_a_clearly_bad_trial_and_the_table_shows_epochs(pruned_study):
    table = trials_table(pruned_study)

    assert list(table["number"]) == list(range(8))
    assert table.loc[3, "state"] == "PRUNED"
    assert table.loc[3, "epochs"] == 1
    assert set(table.loc[table["state"] == "COMPLETE", "epochs"]) == {4}
    assert table.loc[5, "state"] == "FAIL"
    assert table.loc[5, "error"] == "RuntimeError: synthetic failure of trial 5"
    assert table.loc[5, "epochs"] == 0
    assert table["counted"].all()
    assert set(table["worker"]) == {worker_name()}
    assert (table["duration_seconds"] >= 0).all()
    assert {"param_x", "param_width"} <= set(table.columns)
    assert table.columns[:8].tolist() == [
        "number",
        "state",
        "value",
        "duration_seconds",
        "epochs",
        "worker",
        "error",
        "counted",
    ]


def test_a_raising_objective_fails_its_trial_counts_it_and_the_study_goes_on(caplog):
    def objective(trial: optuna.Trial) -> float:
        x = x_objective(trial)
        if trial.number == 1:
            raise ValueError("boom in trial 1")
        return x

    with caplog.at_level(logging.WARNING, logger="imgclf.training.study"):
        study = run_study(objective, tuning(n_trials=3), seed=0, max_resource=1)

    states = [trial.state for trial in by_number(study)]
    assert states == [TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert by_number(study)[1].user_attrs["error"] == "ValueError: boom in trial 1"
    assert "boom in trial 1" in caplog.text


def test_an_objective_returning_nan_fails_with_an_error():
    study = run_study(lambda trial: float("nan"), tuning(n_trials=1), seed=0, max_resource=1)

    assert study.trials[0].state == TrialState.FAIL
    assert study.trials[0].user_attrs["error"] == "ValueError: the objective returned NaN"


def test_rerunning_on_the_same_storage_continues_the_study(tmp_path):
    url = sqlite_url(tmp_path)
    first = run_study(x_objective, tuning(storage=url, study_name="s"), seed=0, max_resource=1)
    before = [(trial.number, trial.params, trial.value) for trial in by_number(first)]

    run_study(x_objective, tuning(storage=url, study_name="s", n_trials=5), seed=0, max_resource=1)
    calls = []
    again = run_study(
        lambda trial: calls.append(trial) or 0.0,
        tuning(storage=url, study_name="s", n_trials=5),
        seed=0,
        max_resource=1,
    )

    after = by_number(load(url, "s"))
    assert len(after) == 5
    assert all(trial.state == TrialState.COMPLETE for trial in after)
    assert [(trial.number, trial.params, trial.value) for trial in after[:3]] == before
    assert after[3].params != after[0].params  # the resumed sampler does not repeat its draws
    assert calls == [] and len(again.trials) == 5


def test_rerunning_with_another_direction_is_an_error(tmp_path):
    url = sqlite_url(tmp_path)
    run_study(x_objective, tuning(storage=url, study_name="s", n_trials=1), seed=0, max_resource=1)
    with pytest.raises(ValueError, match="has direction maximize"):
        run_study(
            x_objective,
            tuning(storage=url, study_name="s", direction="minimize"),
            seed=0,
            max_resource=1,
        )


def test_timeout_stops_starting_new_trials():
    def slow(trial: optuna.Trial) -> float:
        time.sleep(0.15)
        return x_objective(trial)

    started = time.monotonic()
    study = run_study(slow, tuning(n_trials=100, timeout=0.2), seed=0, max_resource=1)

    assert 1 <= len(study.trials) <= 3
    assert time.monotonic() - started < 2


def test_a_trial_started_after_other_workers_filled_the_budget_is_dropped_as_surplus(monkeypatch):
    original_ask = optuna.Study.ask
    rival_numbers: list[int] = []

    def ask_right_after_another_worker(self, *args, **kwargs):
        if not rival_numbers:  # another worker asks between our budget check and our ask
            rival = original_ask(self)
            rival.set_user_attr("worker", "other-host:1")
            rival_numbers.append(rival.number)
        return original_ask(self, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "ask", ask_right_after_another_worker)
    calls = []

    study = run_study(
        lambda trial: calls.append(trial) or 1.0, tuning(n_trials=1), seed=0, max_resource=1
    )

    rival, ours = by_number(study)
    assert calls == []
    assert rival.state == TrialState.RUNNING and counts_toward_budget(rival)
    assert ours.state == TrialState.FAIL
    assert ours.user_attrs["surplus"] is True and not counts_toward_budget(ours)


def test_running_trials_of_dead_local_processes_are_orphaned_and_replaced(tmp_path):
    url = sqlite_url(tmp_path)
    study = optuna.create_study(study_name="s", storage=make_storage(url), direction="maximize")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    for worker in (f"{socket.gethostname()}:{dead.pid}", worker_name(), "elsewhere:1"):
        study.ask().set_user_attr("worker", worker)

    run_study(x_objective, tuning(storage=url, study_name="s", n_trials=3), seed=0, max_resource=1)

    orphan, own, remote, new = by_number(load(url, "s"))
    assert orphan.state == TrialState.FAIL and orphan.user_attrs["orphaned"] is True
    assert not counts_toward_budget(orphan)
    assert own.state == TrialState.RUNNING  # this process is alive
    assert remote.state == TrialState.RUNNING  # another host: left to the heartbeat
    assert new.state == TrialState.COMPLETE


# Several processes.


def start_worker(script: Path, url: str, mode: str, seed: int, *, n_trials: int, sync: Path):
    log = (sync / f"{mode}-{len(list(sync.glob('*.log')))}.log").open("w")
    return subprocess.Popen(
        [sys.executable, str(script), url, mode, str(seed), str(n_trials), str(sync)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


def wait_for(condition, what: str, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def worker_logs(sync: Path) -> str:
    return "\n".join(path.read_text() for path in sorted(sync.glob("*.log")))


@pytest.fixture
def worker_script(tmp_path: Path) -> Path:
    script = tmp_path / "worker.py"
    script.write_text(textwrap.dedent(WORKER_SCRIPT))
    return script


@pytest.mark.parametrize("storage", ["journal:///{folder}/study.log", "sqlite:///{folder}/s.db"])
def test_two_concurrent_workers_share_the_budget_of_one_study(tmp_path, worker_script, storage):
    url = storage.format(folder=tmp_path)
    sync = tmp_path / "sync"
    sync.mkdir()
    # The same parameters, seed included, as when one pipeline runs in two terminals.
    workers = [
        start_worker(worker_script, url, "sleep", 1, n_trials=8, sync=sync) for _ in range(2)
    ]
    try:
        wait_for(lambda: len(list(sync.glob("ready-*"))) == 2, "both workers to start")
        (sync / "go").touch()
        codes = [worker.wait(timeout=60) for worker in workers]
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
    assert codes == [0, 0], worker_logs(sync)

    trials = by_number(load(url, "workers"))
    counted = [trial for trial in trials if counts_toward_budget(trial)]
    assert [trial.number for trial in counted] == list(range(8))
    assert all(trial.state == TrialState.COMPLETE for trial in counted)
    assert len([trial for trial in trials if trial.state == TrialState.COMPLETE]) == 8
    assert all(trial.user_attrs.get("surplus") for trial in trials if trial not in counted)
    pids = {int(trial.user_attrs["worker"].rpartition(":")[2]) for trial in counted}
    assert pids == {worker.pid for worker in workers}
    assert len({trial.params["x"] for trial in counted}) == 8  # no repeated draws


def test_rerunning_after_a_kill_keeps_finished_trials_and_replaces_the_killed_one(
    tmp_path, worker_script
):
    url = sqlite_url(tmp_path)
    sync = tmp_path / "sync"
    sync.mkdir()
    (sync / "go").touch()
    worker = start_worker(worker_script, url, "hang", 0, n_trials=4, sync=sync)

    def killed_trial_is_running() -> bool:
        assert worker.poll() is None, worker_logs(sync)
        try:
            trials = by_number(load(url, "workers"))
        except KeyError:  # the study does not exist yet
            return False
        states = [trial.state for trial in trials]
        return states == [TrialState.COMPLETE] * 2 + [TrialState.RUNNING] and bool(
            trials[2].user_attrs.get("worker")
        )

    try:
        wait_for(killed_trial_is_running, "two complete trials and a running third")
    finally:
        worker.kill()
        worker.wait()
    finished = [(trial.params, trial.value) for trial in by_number(load(url, "workers"))[:2]]

    config = tuning(storage=url, study_name="workers", n_trials=4)
    run_study(x_objective, config, seed=5, max_resource=1)

    trials = by_number(load(url, "workers"))
    assert [(trial.params, trial.value) for trial in trials[:2]] == finished
    assert trials[2].state == TrialState.FAIL and trials[2].user_attrs["orphaned"] is True
    assert [trial.state for trial in trials[3:]] == [TrialState.COMPLETE] * 2
    assert sum(counts_toward_budget(trial) for trial in trials) == 4
    assert trials[3].user_attrs["worker"] == worker_name()


# Results.


def test_best_parameters_reports_params_and_the_targets_they_set():
    space = {
        "optimizer": {"type": "categorical", "choices": ["adam", "sgd"], "target": "opt.name"},
        "momentum": {
            "type": "float",
            "low": 0.0,
            "high": 0.95,
            "when": {"optimizer": "sgd"},
            "default": 0.0,
            "target": "opt.momentum",
            "grid": [0.5, 0.9],
        },
        "dropout": {"type": "bool", "if_true": 0.25, "if_false": 0.0, "target": "model.dropout"},
    }

    def objective(trial: optuna.Trial) -> float:
        values = suggest(trial, space)
        return (values["optimizer"] == "adam") + values["dropout"] + values.get("momentum", 0)

    config = {"search_space": space, "sampler": "grid", "pruner": "none", "n_trials": 8}
    study = run_study(objective, config, seed=0, max_resource=1)

    best = best_parameters(study, space)
    assert best["value"] == 2.0
    assert best["params"] == {"optimizer": "adam", "dropout": True}
    assert best["targets"] == {"opt.name": "adam", "opt.momentum": 0.0, "model.dropout": 0.25}
    assert study.trials[best["trial"]].value == 2.0


def test_best_parameters_without_a_complete_trial_quotes_the_errors():
    def objective(trial: optuna.Trial) -> float:
        x_objective(trial)
        raise MemoryError(f"out of memory in trial {trial.number}")

    study = run_study(objective, tuning(n_trials=2), seed=0, max_resource=1)

    with pytest.raises(ValueError, match=r"no trial .* completed") as raised:
        best_parameters(study, X_SPACE)
    assert "trial 0: MemoryError: out of memory in trial 0" in str(raised.value)
    assert "2 fail" in str(raised.value)


def test_optimization_history_plots_each_complete_and_pruned_trial(pruned_study):
    figure = plot_optimization_history(pruned_study)

    axes = figure.axes[0]
    assert axes.get_xlabel() == "Trial number"
    assert axes.get_ylabel() == "Objective value"
    assert "pruned" in axes.get_title() and "maximize" in axes.get_title()
    lines = {line.get_label(): line for line in axes.get_lines()}
    points = len(lines["complete"].get_xdata()) + len(
        lines["pruned (last reported value)"].get_xdata()
    )
    trials = pruned_study.trials
    assert points == sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    assert list(lines["failed"].get_xdata()) == [5]
    best = list(lines["best so far"].get_ydata())
    assert best == sorted(best) and best[-1] == pruned_study.best_value


def test_parameter_importances_draw_one_bar_per_varying_parameter(pruned_study):
    figure = plot_parameter_importances(pruned_study)

    axes = figure.axes[0]
    assert len(axes.patches) == 2
    assert {label.get_text() for label in axes.get_yticklabels()} == {"x", "width"}
    assert axes.get_xlabel().startswith("Importance")
    assert "parameter importances" in axes.get_title()


@pytest.mark.parametrize(
    ("n_trials", "space", "reason"),
    [
        (1, X_SPACE, "at least 2 complete trials; the study has 1"),
        (3, {"fixed": {"type": "categorical", "choices": ["only"]}}, "takes more than one value"),
    ],
)
def test_parameter_importances_say_why_they_are_not_available(n_trials, space, reason):
    study = run_study(
        lambda trial: len(suggest(trial, space)) + trial.number,
        tuning(search_space=space, n_trials=n_trials),
        seed=0,
        max_resource=1,
    )

    figure = plot_parameter_importances(study)

    text = " ".join(text.get_text() for text in figure.axes[0].texts).replace("\n", " ")
    assert "Parameter importances are not available" in text
    assert reason in text
    assert not figure.axes[0].patches
