"""The ``tuning`` parameter block of a tuned variant, validated into a :class:`TuningConfig`,
and the Optuna samplers and pruners it names.

A tuning node trains a model once per trial with values drawn from a search
space declared in parameters; the objective (training a Keras model) is
supplied by the caller, so this module imports neither TensorFlow nor Keras.
Everything is configured by a plain dict, e.g.::

    tuning:
      study_name: scratch_cnn.tuned
      storage: sqlite:///data/06_models/optuna.db  # null: in memory (nothing to resume)
      direction: maximize        # maximize | minimize (default: minimize when monitor ends in loss)
      monitor: val_accuracy      # the metric the caller's objective returns
      n_trials: 40               # budget of the whole study, shared by every worker
      timeout: null              # seconds: no new trial starts after this long
      epochs: 20                 # the caller's epochs per trial; null: its own default
      executions_per_trial: 1    # fits per trial (the caller averages them)
      heartbeat_interval: 60     # RDB storages: trials of dead workers are failed after
      grace_period: 120          #   grace_period seconds without a heartbeat
      sampler: {name: tpe, n_startup_trials: 10}  # tpe | random | grid; other keys: kwargs
      pruner: {name: percentile} # percentile | median | hyperband | successive_halving | none
      search_space:           # what to tune: see imgclf.training.search_space
        units: {type: int, low: 32, high: 512, step: 32, target: architecture.head.dense.0.units}
        learning_rate:
          type: float
          low: 1.0e-4
          high: 1.0e-2
          log: true
          target: training.optimizer.learning_rate

Storages (:mod:`imgclf.training.storage`): ``sqlite:///relative/path.db`` (``sqlite:////absolute/path.db``),
any other SQLAlchemy URL (``postgresql://user:password@host/db``,
``mysql://...``), or ``journal:///relative/path.log``
(``journal:////absolute/path.log``) for an Optuna journal file, which needs no
database server but has no heartbeat.

:func:`imgclf.training.study.run_study` is safe to run from several processes (workers) on one
storage at once: ``n_trials`` is the budget of the study, not of one call, and
re-running after a kill keeps the finished trials and replaces the killed one.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

from imgclf.config import block_items
from imgclf.lazy import lazy_module
from imgclf.training.search_space import SearchSpace, grid_values, parse_search_space
from imgclf.training.storage import check_storage_url

optuna = lazy_module("optuna")

SAMPLERS = ("tpe", "random", "grid")
DIRECTIONS = ("maximize", "minimize")


_SAMPLER_CLASSES: dict[str, type] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
}
# What a pruner's keys default to where Optuna gives none (percentile) or where we chose: the
# percentile pruner by default, keeping the top quarter of trials from the second epoch on.
# On the demo's studies (benchmarks/tuning.py --replay, five seeds of 12 trials x 6 epochs) it
# trained 0.5-0.79 of the epochs and kept the best trial on every seed; pruning after the first
# epoch (Optuna's median pruner, Hyperband from one epoch) lost up to 8.5 points on a seed whose
# best trial was at chance after one epoch. docs/training.md says which pruner to pick when.
PRUNER_DEFAULTS: dict[str, dict[str, Any]] = {
    "percentile": {"percentile": 25.0, "n_startup_trials": 2, "n_warmup_steps": 2},
    "hyperband": {"min_resource": 1, "reduction_factor": 3},
}
_PRUNER_CLASSES: dict[str, type] = {
    "hyperband": optuna.pruners.HyperbandPruner,
    "median": optuna.pruners.MedianPruner,
    "percentile": optuna.pruners.PercentilePruner,
    "successive_halving": optuna.pruners.SuccessiveHalvingPruner,
    "none": optuna.pruners.NopPruner,
}
# Constructor arguments this module sets itself, so they are not options in parameters.
_SAMPLER_RESERVED = ("seed", "search_space")


@dataclasses.dataclass(frozen=True)
class TuningConfig:
    """Validated tuning settings (see the module docstring for the parameter block).

    Attributes:
        search_space: the parameters to tune.
        sampler: ``{"name": tpe | random | grid, **sampler kwargs}``.
        pruner: ``{"name": hyperband | median | percentile | successive_halving | none,
            **pruner kwargs}``.
        storage: storage URL, or None for an in-memory study.
        study_name: name of the study in the storage (needed with a storage).
        direction: maximize or minimize.
        n_trials: budget of trials of the whole study, shared by all workers.
        timeout: seconds after which a call of :func:`run_study` starts no new trial.
        executions_per_trial: how many fits the caller averages per trial.
        heartbeat_interval: seconds between heartbeats of a running trial (RDB storages).
        grace_period: seconds without a heartbeat after which a trial is failed.
        epochs: the caller's epochs per trial, or None for its default.
        monitor: the metric the caller's objective returns.
    """

    search_space: SearchSpace
    sampler: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"name": "tpe"})
    pruner: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"name": "percentile"})
    storage: str | None = None
    study_name: str | None = None
    direction: str = "maximize"
    n_trials: int = 20
    timeout: float | None = None
    executions_per_trial: int = 1
    heartbeat_interval: int | None = 60
    grace_period: int | None = None
    epochs: int | None = None
    monitor: str = "val_accuracy"


VALID_KEYS = tuple(field.name for field in dataclasses.fields(TuningConfig))


def sampler_settings(config: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Validate a ``sampler`` setting (a mapping, a bare name or None for tpe).

    Returns:
        ``{"name": name, **options}``.

    Raises:
        ValueError: for an unknown name or option (the message lists the valid ones).
    """
    return _named_settings(config, "sampler", _SAMPLER_CLASSES, "tpe", _SAMPLER_RESERVED)


def pruner_settings(config: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Validate a ``pruner`` setting (a mapping, a bare name or None for percentile).

    Returns:
        ``{"name": name, **options}``.

    Raises:
        ValueError: for an unknown name or option (the message lists the valid ones).
    """
    return _named_settings(config, "pruner", _PRUNER_CLASSES, "percentile", ())


def make_sampler(
    config: Mapping[str, Any] | str | None,
    seed: int | None,
    search_space: Mapping[str, Any] | SearchSpace,
) -> optuna.samplers.BaseSampler:
    """Build the sampler named in ``config``, seeded with ``seed``.

    The grid sampler's grid comes from :func:`grid_values`; other keys of ``config``
    are passed to the sampler's constructor.
    """
    settings = sampler_settings(config)
    name = settings.pop("name")
    if name == "grid":
        return optuna.samplers.GridSampler(grid_values(search_space), seed=seed, **settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return _SAMPLER_CLASSES[name](seed=seed, **settings)


def make_pruner(
    config: Mapping[str, Any] | str | None, max_resource: int
) -> optuna.pruners.BasePruner:
    """Build the pruner named in ``config`` (:data:`PRUNER_DEFAULTS` under its own keys).

    Hyperband's ``max_resource`` defaults to ``max_resource``, the caller's maximum epochs.
    """
    if isinstance(max_resource, bool) or not isinstance(max_resource, int) or max_resource < 1:
        raise ValueError(f"max_resource must be a positive integer; got {max_resource!r}")
    settings = pruner_settings(config)
    name = settings.pop("name")
    defaults = dict(PRUNER_DEFAULTS.get(name, {}))
    if name == "hyperband":
        defaults["max_resource"] = max_resource
    return _PRUNER_CLASSES[name](**{**defaults, **settings})


def parse_tuning_config(config: Mapping[str, Any] | TuningConfig) -> TuningConfig:
    """Validate a tuning parameter block and return a :class:`TuningConfig`.

    Raises:
        ValueError: for an unknown key (the message lists the valid ones) or a value of
            the wrong type or out of range, including every search-space error.
    """
    if isinstance(config, TuningConfig):
        return config
    if config is None:
        raise ValueError("tuning must be a mapping with a search_space; got null")
    config = block_items(config, TuningConfig, "tuning")
    if "search_space" not in config:
        raise ValueError("tuning config needs a search_space mapping of parameters to tune")
    space = parse_search_space(config["search_space"])
    sampler = sampler_settings(config.get("sampler"))
    if sampler["name"] == "grid":
        grid_values(space)
    values: dict[str, Any] = {
        "search_space": space,
        "sampler": sampler,
        "pruner": pruner_settings(config.get("pruner")),
    }
    storage = config.get("storage")
    check_storage_url(storage)
    values["storage"] = storage
    study_name = config.get("study_name")
    if study_name is not None and (not isinstance(study_name, str) or not study_name):
        raise ValueError(f"tuning 'study_name' must be a non-empty string; got {study_name!r}")
    if storage is not None and study_name is None:
        raise ValueError(
            "tuning 'study_name' is needed with a storage, so that re-runs and other workers "
            "continue the same study"
        )
    values["study_name"] = study_name
    monitor = config.get("monitor", "val_accuracy")
    if not isinstance(monitor, str) or not monitor:
        raise ValueError(f"tuning 'monitor' must be a metric name; got {monitor!r}")
    values["monitor"] = monitor
    default_direction = "minimize" if monitor.endswith("loss") else "maximize"
    direction = config.get("direction", default_direction)
    if direction not in DIRECTIONS:
        raise ValueError(
            f"tuning 'direction' must be one of {', '.join(DIRECTIONS)}; got {direction!r}"
        )
    values["direction"] = direction
    values["n_trials"] = _integer(config.get("n_trials", 20), "n_trials", minimum=1)
    values["executions_per_trial"] = _integer(
        config.get("executions_per_trial", 1), "executions_per_trial", minimum=1
    )
    for key, default in (("heartbeat_interval", 60), ("grace_period", None), ("epochs", None)):
        value = config.get(key, default)
        values[key] = None if value is None else _integer(value, key, minimum=1)
    timeout = config.get("timeout")
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ValueError(
                f"tuning 'timeout' must be a positive number of seconds or null; got {timeout!r}"
            )
        timeout = float(timeout)
    values["timeout"] = timeout
    return TuningConfig(**values)


def _named_settings(
    config: Any,
    kind: str,
    classes: Mapping[str, type],
    default: str,
    reserved: Sequence[str],
) -> dict[str, Any]:
    if config is None:
        config = {"name": default}
    elif isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, Mapping):
        raise ValueError(
            f"tuning '{kind}' must be a mapping with a 'name' or a name; got {config!r}"
        )
    name = config.get("name", default)
    if name not in classes:
        raise ValueError(
            f"tuning '{kind}' name {name!r} is unknown; valid names are: {', '.join(classes)}"
        )
    signature = inspect.signature(classes[name].__init__)
    valid = [
        option
        for option, argument in signature.parameters.items()
        if option != "self"
        and option not in reserved
        and argument.kind not in (argument.VAR_POSITIONAL, argument.VAR_KEYWORD)
    ]
    options = {key: value for key, value in config.items() if key != "name"}
    unknown = sorted(str(key) for key in options if key not in valid)
    if unknown:
        raise ValueError(
            f"tuning '{kind}' {name}: unknown option(s) {', '.join(unknown)}; valid options "
            f"are: {', '.join(valid) or '(none)'}"
        )
    return {"name": name, **options}


def _integer(value: Any, key: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"tuning {key!r} must be an integer >= {minimum}; got {value!r}")
    return value
