"""Optuna hyperparameter tuning configured by Kedro parameters.

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
      pruner: {name: hyperband}  # hyperband | median | none; other keys: kwargs
      search_space:           # what to tune: see imgclf.training.search_space
        units: {type: int, low: 32, high: 512, step: 32, target: architecture.head.dense.0.units}
        learning_rate:
          type: float
          low: 1.0e-4
          high: 1.0e-2
          log: true
          target: training.optimizer.learning_rate

Storages: ``sqlite:///relative/path.db`` (``sqlite:////absolute/path.db``),
any other SQLAlchemy URL (``postgresql://user:password@host/db``,
``mysql://...``), or ``journal:///relative/path.log``
(``journal:////absolute/path.log``) for an Optuna journal file, which needs no
database server but has no heartbeat.

:func:`run_study` is safe to run from several processes (workers) on one
storage at once: ``n_trials`` is the budget of the study, not of one call, and
re-running after a kill keeps the finished trials and replaces the killed one.
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import logging
import math
import os
import socket
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from imgclf.training.search_space import (
    SearchSpace,
    grid_values,
    parse_search_space,
    target_values,
)

_LOGGER = logging.getLogger(__name__)

SAMPLERS = ("tpe", "random", "grid")
PRUNERS = ("hyperband", "median", "none")
DIRECTIONS = ("maximize", "minimize")
JOURNAL_PREFIX = "journal:///"
RDB_DIALECTS = ("sqlite", "postgresql", "postgres", "mysql", "mariadb", "oracle", "mssql")
SQLITE_LOCK_TIMEOUT_SECONDS = 60
RDB_OPEN_ATTEMPTS = 5
# User attributes this module records on trials.
WORKER_ATTR = "worker"
ERROR_ATTR = "error"
ORPHANED_ATTR = "orphaned"
SURPLUS_ATTR = "surplus"

_SAMPLER_CLASSES: dict[str, type] = {
    "tpe": optuna.samplers.TPESampler,
    "random": optuna.samplers.RandomSampler,
    "grid": optuna.samplers.GridSampler,
}
_PRUNER_CLASSES: dict[str, type] = {
    "hyperband": optuna.pruners.HyperbandPruner,
    "median": optuna.pruners.MedianPruner,
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
        pruner: ``{"name": hyperband | median | none, **pruner kwargs}``.
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
    pruner: Mapping[str, Any] = dataclasses.field(default_factory=lambda: {"name": "hyperband"})
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


# Sampler, pruner, storage.


def sampler_settings(config: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Validate a ``sampler`` setting (a mapping, a bare name or None for tpe).

    Returns:
        ``{"name": name, **options}``.

    Raises:
        ValueError: for an unknown name or option (the message lists the valid ones).
    """
    return _named_settings(config, "sampler", _SAMPLER_CLASSES, "tpe", _SAMPLER_RESERVED)


def pruner_settings(config: Mapping[str, Any] | str | None) -> dict[str, Any]:
    """Validate a ``pruner`` setting (a mapping, a bare name or None for hyperband).

    Returns:
        ``{"name": name, **options}``.

    Raises:
        ValueError: for an unknown name or option (the message lists the valid ones).
    """
    return _named_settings(config, "pruner", _PRUNER_CLASSES, "hyperband", ())


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
        warnings.simplefilter("ignore", ExperimentalWarning)
        return _SAMPLER_CLASSES[name](seed=seed, **settings)


def make_pruner(
    config: Mapping[str, Any] | str | None, max_resource: int
) -> optuna.pruners.BasePruner:
    """Build the pruner named in ``config``.

    Hyperband defaults to ``min_resource=1``, ``max_resource=max_resource`` (the
    caller's maximum epochs) and ``reduction_factor=3``; keys of ``config`` override them.
    """
    if isinstance(max_resource, bool) or not isinstance(max_resource, int) or max_resource < 1:
        raise ValueError(f"max_resource must be a positive integer; got {max_resource!r}")
    settings = pruner_settings(config)
    name = settings.pop("name")
    if name == "hyperband":
        settings = {
            "min_resource": 1,
            "max_resource": max_resource,
            "reduction_factor": 3,
            **settings,
        }
    return _PRUNER_CLASSES[name](**settings)


def make_storage(
    url: str | None,
    heartbeat_interval: int | None = None,
    grace_period: int | None = None,
) -> optuna.storages.BaseStorage:
    """Open the storage at ``url`` (see the module docstring), creating the parent folder
    of a local sqlite or journal file.

    Args:
        url: an SQLAlchemy URL, ``journal:///path``, or None for an in-memory storage.
        heartbeat_interval: seconds between heartbeats of running trials (RDB storages;
            a journal file has no heartbeat).
        grace_period: seconds without a heartbeat after which a running trial is failed
            (None: twice ``heartbeat_interval``).
    """
    _check_storage_url(url)
    if url is None:
        return optuna.storages.InMemoryStorage()
    if url.startswith(JOURNAL_PREFIX):
        path = Path(url[len(JOURNAL_PREFIX) :])
        path.parent.mkdir(parents=True, exist_ok=True)
        if heartbeat_interval is not None:
            _LOGGER.debug("journal storage %s has no heartbeat; heartbeat_interval ignored", url)
        backend = optuna.storages.journal.JournalFileBackend(str(path))
        return optuna.storages.JournalStorage(backend)
    engine_kwargs: dict[str, Any] = {}
    if _dialect(url) == "sqlite":
        from sqlalchemy.engine import make_url

        database = make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # Wait for the lock rather than fail at once when several workers write.
        engine_kwargs = {"connect_args": {"timeout": SQLITE_LOCK_TIMEOUT_SECONDS}}
    return _open_rdb_storage(url, engine_kwargs, heartbeat_interval, grace_period)


def _open_rdb_storage(
    url: str,
    engine_kwargs: dict[str, Any],
    heartbeat_interval: int | None,
    grace_period: int | None,
) -> optuna.storages.RDBStorage:
    """Open an RDB storage, retrying while another worker is creating its tables."""
    from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError

    for attempt in range(1, RDB_OPEN_ATTEMPTS + 1):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_interval,
                    grace_period=grace_period,
                )
        except (IntegrityError, OperationalError, ProgrammingError) as error:
            # Two workers creating the tables at once: one finds a table the other made.
            if attempt == RDB_OPEN_ATTEMPTS:
                raise
            _LOGGER.debug("opening storage failed (attempt %d), retrying: %s", attempt, error)
            time.sleep(0.1 * attempt)
    raise AssertionError("unreachable")  # pragma: no cover - the loop returns or raises


def parse_tuning_config(config: Mapping[str, Any] | TuningConfig) -> TuningConfig:
    """Validate a tuning parameter block and return a :class:`TuningConfig`.

    Raises:
        ValueError: for an unknown key (the message lists the valid ones) or a value of
            the wrong type or out of range, including every search-space error.
    """
    if isinstance(config, TuningConfig):
        return config
    if not isinstance(config, Mapping):
        raise ValueError(f"tuning config must be a mapping; got {config!r}")
    unknown = sorted(str(key) for key in config if key not in VALID_KEYS)
    if unknown:
        raise ValueError(
            f"unknown tuning key(s) {', '.join(unknown)}; valid keys are: {', '.join(VALID_KEYS)}"
        )
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
    _check_storage_url(storage)
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


# Study loop.


def worker_name() -> str:
    """This process as a tuning worker: ``"hostname:pid"``."""
    return f"{socket.gethostname()}:{os.getpid()}"


def counts_toward_budget(trial: FrozenTrial) -> bool:
    """Whether ``trial`` uses up one trial of the study's ``n_trials`` budget.

    Complete, pruned and running trials count, and so do failures of the objective (they
    carry an ``error`` attribute); trials of killed workers (``orphaned``), trials failed
    by the heartbeat, surplus trials of a race between workers and waiting trials do not.
    """
    if trial.user_attrs.get(SURPLUS_ATTR):
        return False
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING):
        return True
    return trial.state == TrialState.FAIL and ERROR_ATTR in trial.user_attrs


def run_study(
    objective: Callable[[optuna.Trial], float],
    config: Mapping[str, Any] | TuningConfig,
    *,
    seed: int | None,
    max_resource: int,
) -> optuna.Study:
    """Run trials of ``objective`` until the study's budget of ``n_trials`` is used.

    The study is created, or loaded if it exists in the storage. Several workers may run
    this at once on one storage: a worker starts a trial only while the trials counting
    toward the budget (see :func:`counts_toward_budget`) are fewer than ``n_trials``, and
    returns when they are not (without waiting for other workers' running trials). Before
    each trial it fails the running trials of dead processes on this host (``orphaned``)
    and, on RDB storages, trials without a recent heartbeat. An objective that raises
    fails its trial (``error`` attribute, a warning in the log) and the study goes on;
    ``optuna.TrialPruned`` prunes it.

    Args:
        objective: returns the trial's value; it calls :func:`suggest` itself, reports
            per-epoch values and raises ``optuna.TrialPruned`` when told to prune.
        config: tuning settings (see :func:`parse_tuning_config`).
        seed: sampler seed, or None. The tpe and random samplers draw each trial's values
            with a seed made from ``seed`` and the trial number, so one worker's run is
            reproducible, workers that share a study (with the same seed) draw different
            values, and a resumed study does not repeat its first draws. The grid sampler's
            seed orders the grid, the same for every worker.
        max_resource: the most epochs a trial trains (hyperband's ``max_resource``).

    Returns:
        The study, with the trials of every worker so far.
    """
    config = parse_tuning_config(config)
    space = config.search_space
    study = optuna.create_study(
        study_name=config.study_name,
        storage=make_storage(config.storage, config.heartbeat_interval, config.grace_period),
        sampler=_study_sampler(config.sampler, seed, space),
        pruner=make_pruner(config.pruner, max_resource),
        direction=config.direction,
        load_if_exists=True,
    )
    if study.direction.name.lower() != config.direction:
        raise ValueError(
            f"study {study.study_name!r} in the storage has direction "
            f"{study.direction.name.lower()}, but the tuning config says {config.direction}"
        )
    existing = len(study.get_trials(deepcopy=False))
    worker = worker_name()
    started = time.monotonic()
    _LOGGER.info(
        "Tuning study %r (%s) as worker %s: %d trial(s) in storage, budget %d",
        study.study_name,
        config.direction,
        worker,
        existing,
        config.n_trials,
    )
    while True:
        _fail_orphaned_trials(study)
        _fail_stale_trials(study)
        used = sum(counts_toward_budget(trial) for trial in study.get_trials(deepcopy=False))
        if used >= config.n_trials:
            _LOGGER.info("Study %r: budget of %d trials used", study.study_name, config.n_trials)
            break
        if config.timeout is not None and time.monotonic() - started >= config.timeout:
            _LOGGER.info("Study %r: timeout of %g s reached", study.study_name, config.timeout)
            break
        sampler = study.sampler
        if isinstance(sampler, optuna.samplers.GridSampler) and sampler.is_exhausted(study):
            _LOGGER.info("Study %r: every grid point has been tried", study.study_name)
            break
        dropped: list[int] = []
        trial_function = _trial_function(objective, worker, config.n_trials, dropped)
        with _without_optuna_failure_logs(dropped):
            study.optimize(trial_function, n_trials=1, catch=(Exception,), callbacks=[_log_trial])
        if dropped:
            _LOGGER.info(
                "Study %r: other workers used the budget first; trial %d dropped",
                study.study_name,
                dropped[0],
            )
            break
    return study


def _study_sampler(
    config: Mapping[str, Any], seed: int | None, space: SearchSpace
) -> optuna.samplers.BaseSampler:
    """The sampler of :func:`run_study`: seeded per trial, except the grid sampler."""
    if seed is None or config["name"] == "grid":
        return make_sampler(config, seed, space)
    return _TrialSeededSampler(lambda trial_seed: make_sampler(config, trial_seed, space), seed)


class _TrialSeededSampler(optuna.samplers.BaseSampler):
    """Samples each trial with a fresh sampler seeded from ``(seed, trial number)``.

    Trial numbers are unique in a study, so workers sharing one draw different values even
    with the same seed, and a re-run does not repeat the draws of the first trials.
    """

    def __init__(self, build: Callable[[int], optuna.samplers.BaseSampler], seed: int) -> None:
        self._build = build
        self._seed = seed
        self._sampler = build(seed)

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        self._sampler = self._build(zlib.crc32(f"{self._seed}/{trial.number}".encode()))
        self._sampler.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, optuna.distributions.BaseDistribution]:
        return self._sampler.infer_relative_search_space(study, trial)

    def sample_relative(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        search_space: dict[str, optuna.distributions.BaseDistribution],
    ) -> dict[str, Any]:
        return self._sampler.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: optuna.distributions.BaseDistribution,
    ) -> Any:
        return self._sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self._sampler.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self._sampler.reseed_rng()


class _SurplusTrialError(Exception):
    """Raised in a trial that other workers' trials left no budget for."""


def _trial_function(
    objective: Callable[[optuna.Trial], float],
    worker: str,
    n_trials: int,
    dropped: list[int],
) -> Callable[[optuna.Trial], float]:
    """Wrap ``objective`` for ``study.optimize``: record the worker, drop a surplus trial
    (appending its number to ``dropped``) and record the objective's errors."""

    def run(trial: optuna.Trial) -> float:
        trial.set_user_attr(WORKER_ATTR, worker)
        if _is_surplus(trial.study, trial.number, n_trials):
            trial.set_user_attr(SURPLUS_ATTR, True)
            dropped.append(trial.number)
            raise _SurplusTrialError(f"the budget of {n_trials} trials is used")
        try:
            return _objective_value(objective(trial))
        except optuna.TrialPruned:
            raise
        except Exception as error:
            message = f"{type(error).__name__}: {error}"
            trial.set_user_attr(ERROR_ATTR, message)
            _LOGGER.warning(
                "Trial %d failed with params %s: %s; the study goes on",
                trial.number,
                trial.params,
                message,
            )
            raise

    return run


class _DropTrialLogs(logging.Filter):
    """Drops Optuna's "Trial N failed ..." log records of the given trial numbers."""

    def __init__(self, numbers: Sequence[int]) -> None:
        super().__init__()
        self._numbers = numbers

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(message.startswith(f"Trial {number} failed") for number in self._numbers)


@contextlib.contextmanager
def _without_optuna_failure_logs(numbers: Sequence[int]) -> Iterator[None]:
    """Silence Optuna's failure warnings (with traceback) of surplus trials: not an error."""
    logger = logging.getLogger("optuna.study._optimize")
    log_filter = _DropTrialLogs(numbers)
    logger.addFilter(log_filter)
    try:
        yield
    finally:
        logger.removeFilter(log_filter)


def _objective_value(result: Any) -> float:
    """The objective's result as a float; ValueError if it is not a number or is NaN."""
    try:
        value = float(result)
    except (TypeError, ValueError):
        raise ValueError(f"the objective returned {result!r}, not a number") from None
    if math.isnan(value):
        raise ValueError("the objective returned NaN")
    return value


def _log_trial(study: optuna.Study, trial: FrozenTrial) -> None:
    """Log a finished trial (a ``study.optimize`` callback); failures are logged already."""
    if trial.state == TrialState.FAIL:
        return
    seconds = trial.duration.total_seconds() if trial.duration is not None else float("nan")
    _LOGGER.info(
        "Trial %d %s: value %s, params %s, %d epoch(s) reported, %.1f s",
        trial.number,
        trial.state.name,
        trial.value,
        trial.params,
        len(trial.intermediate_values),
        seconds,
    )


def _is_surplus(study: optuna.Study, number: int, n_trials: int) -> bool:
    """Whether the trials numbered below ``number`` already fill the budget."""
    earlier = study.get_trials(deepcopy=False)
    return sum(counts_toward_budget(t) for t in earlier if t.number < number) >= n_trials


def _fail_orphaned_trials(study: optuna.Study) -> None:
    """Fail the running trials whose worker is a process of this host that has died."""
    host = socket.gethostname()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = _local_pid(trial.user_attrs.get(WORKER_ATTR), host)
        if pid is None or _process_alive(pid):
            continue
        # Optuna has no public API to update another process's trial: use the storage.
        storage = study._storage
        try:
            storage.set_trial_user_attr(trial._trial_id, ORPHANED_ATTR, True)
            storage.set_trial_state_values(trial._trial_id, state=TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another worker got there first
        _LOGGER.warning(
            "Trial %d of worker %s, which is no longer running, marked failed (orphaned); "
            "it does not count toward the budget",
            trial.number,
            trial.user_attrs[WORKER_ATTR],
        )


def _fail_stale_trials(study: optuna.Study) -> None:
    """Fail running trials without a recent heartbeat (RDB storages with a heartbeat)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def _local_pid(worker: Any, host: str) -> int | None:
    """The pid in a ``"hostname:pid"`` worker name if it is on ``host``, else None."""
    if not isinstance(worker, str):
        return None
    worker_host, _, pid = worker.rpartition(":")
    if worker_host != host or not pid.isdigit():
        return None
    return int(pid)


def _process_alive(pid: int) -> bool:
    """Whether process ``pid`` exists and is not a zombie (``os.kill(pid, 0)`` on POSIX)."""
    import psutil

    if pid == os.getpid():
        return True
    if not psutil.pid_exists(pid):
        return False
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True


# Results.


def best_parameters(study: optuna.Study, space: Mapping[str, Any] | SearchSpace) -> dict[str, Any]:
    """The best complete trial's number, value, suggested params and target values.

    Returns:
        ``{"trial": number, "value": value, "params": {name: value},
        "targets": {dotted path: value written there}}``; ``targets`` includes the
        defaults of parameters whose condition did not hold and mapped bool values.

    Raises:
        ValueError: if no trial completed; the message quotes the first recorded errors.
    """
    space = parse_search_space(space)
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise ValueError(_no_complete_trial_message(study))
    best = study.best_trial
    params = {name: best.params[name] for name in space.names if name in best.params}
    return {
        "trial": best.number,
        "value": best.value,
        "params": params,
        "targets": target_values(space, params),
    }


def trials_table(study: optuna.Study) -> pd.DataFrame:
    """One row per trial, sorted by number: number, state, value, duration_seconds,
    epochs (intermediate values reported), worker, error, counted (toward the budget)
    and a ``param_<name>`` column per parameter."""
    trials = sorted(study.get_trials(deepcopy=False), key=lambda trial: trial.number)
    param_names: list[str] = []
    for trial in trials:
        param_names.extend(name for name in trial.params if name not in param_names)
    columns = [
        "number",
        "state",
        "value",
        "duration_seconds",
        "epochs",
        "worker",
        "error",
        "counted",
        *(f"param_{name}" for name in param_names),
    ]
    rows = []
    for trial in trials:
        duration = trial.duration
        rows.append(
            {
                "number": trial.number,
                "state": trial.state.name,
                "value": trial.value,
                "duration_seconds": None if duration is None else duration.total_seconds(),
                "epochs": len(trial.intermediate_values),
                "worker": trial.user_attrs.get(WORKER_ATTR),
                "error": trial.user_attrs.get(ERROR_ATTR),
                "counted": counts_toward_budget(trial),
                **{f"param_{name}": trial.params.get(name) for name in param_names},
            }
        )
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"value": "float64", "duration_seconds": "float64"})


def plot_optimization_history(
    study: optuna.Study, *, value_name: str = "Objective value"
) -> Figure:
    """Objective value per trial number: complete and pruned trials (their last reported
    value) as markers, the best value so far as a line, failed trials as x at the bottom."""
    figure = Figure(figsize=(8, 4.5), layout="constrained")
    axes = figure.add_subplot()
    direction = study.direction.name.lower()
    axes.set_title(f"{study.study_name}\noptimization history ({direction})")
    axes.set_xlabel("Trial number")
    axes.set_ylabel(value_name)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    trials = sorted(study.get_trials(deepcopy=False), key=lambda trial: trial.number)
    complete = [trial for trial in trials if trial.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED and t.value is not None]
    failed = [trial for trial in trials if trial.state == TrialState.FAIL]
    if complete:
        numbers = [trial.number for trial in complete]
        values = [trial.value for trial in complete]
        axes.plot(numbers, values, linestyle="none", marker="o", color="tab:blue", label="complete")
        pick = max if direction == "maximize" else min
        best = [pick(values[: index + 1]) for index in range(len(values))]
        axes.plot(numbers, best, drawstyle="steps-post", color="tab:green", label="best so far")
    if pruned:
        axes.plot(
            [trial.number for trial in pruned],
            [trial.value for trial in pruned],
            linestyle="none",
            marker="s",
            color="tab:orange",
            label="pruned (last reported value)",
        )
    if failed:
        axes.plot(
            [trial.number for trial in failed],
            [0.02] * len(failed),
            linestyle="none",
            marker="x",
            color="tab:red",
            transform=axes.get_xaxis_transform(),
            label="failed",
        )
    if trials:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0))
    else:
        axes.text(0.5, 0.5, "No trials yet", ha="center", va="center", transform=axes.transAxes)
    return figure


def plot_parameter_importances(study: optuna.Study, *, seed: int | None = 0) -> Figure:
    """Horizontal bars of fANOVA parameter importances (most important on top), or a
    figure that says why they are not available (fewer than two complete trials, no
    parameter that varies, or an error from Optuna)."""
    figure = Figure(figsize=(7, 4), layout="constrained")
    axes = figure.add_subplot()
    axes.set_title(f"{study.study_name}\nparameter importances")
    reason = _importances_unavailable_reason(study)
    importances: dict[str, float] = {}
    if reason is None:
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=seed)
        try:
            importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
        except (ValueError, RuntimeError) as error:
            reason = f"Optuna could not compute them ({error})"
        else:
            if not importances or not all(math.isfinite(value) for value in importances.values()):
                reason = "the objective value does not vary enough across the complete trials"
    if reason is not None:
        axes.axis("off")
        axes.text(
            0.5,
            0.5,
            f"Parameter importances are not available:\n{reason}",
            ha="center",
            va="center",
            wrap=True,
            transform=axes.transAxes,
        )
        return figure
    names = list(importances)[::-1]
    axes.barh(names, [importances[name] for name in names], color="tab:blue")
    axes.set_xlabel("Importance (fANOVA, normalised to sum 1)")
    axes.set_ylabel("Parameter")
    return figure


def _importances_unavailable_reason(study: optuna.Study) -> str | None:
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2:
        return f"they need at least 2 complete trials; the study has {len(complete)}"
    shared = set(complete[0].params).intersection(*(trial.params for trial in complete[1:]))
    varying = [name for name in shared if len({repr(t.params[name]) for t in complete}) > 1]
    if not varying:
        return "no parameter (present in every complete trial) takes more than one value"
    return None


def _no_complete_trial_message(study: optuna.Study, shown: int = 3) -> str:
    trials = sorted(study.get_trials(deepcopy=False), key=lambda trial: trial.number)
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    summary = ", ".join(f"{count} {state.lower()}" for state, count in states.items()) or "none"
    errors = [
        f"trial {trial.number}: {trial.user_attrs[ERROR_ATTR]}"
        for trial in trials
        if ERROR_ATTR in trial.user_attrs
    ]
    message = f"no trial of study {study.study_name!r} completed (trials: {summary})"
    if errors:
        more = f" (and {len(errors) - shown} more)" if len(errors) > shown else ""
        message += "; errors: " + "; ".join(errors[:shown]) + more
    return message


# Parsing helpers.


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


def _check_storage_url(url: Any) -> None:
    if url is None:
        return
    if not isinstance(url, str) or not url:
        raise ValueError(f"tuning 'storage' must be a URL string or null; got {url!r}")
    if url.startswith("journal:"):
        if not url.startswith(JOURNAL_PREFIX) or len(url) == len(JOURNAL_PREFIX):
            raise ValueError(
                f"journal storage URLs look like journal:///relative/path.log or "
                f"journal:////absolute/path.log; got {url!r}"
            )
        return
    if "://" not in url or _dialect(url) not in RDB_DIALECTS:
        raise ValueError(
            f"tuning 'storage' {url!r} is not supported; use an SQLAlchemy URL of "
            f"{', '.join(RDB_DIALECTS)} (e.g. sqlite:///data/06_models/optuna.db) or "
            f"journal:///path/to/study.log"
        )


def _dialect(url: str) -> str:
    """The database dialect of an SQLAlchemy URL (``postgresql+psycopg://`` -> postgresql)."""
    return url.split("://", 1)[0].split("+", 1)[0].lower()


def _integer(value: Any, key: str, *, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"tuning {key!r} must be an integer >= {minimum}; got {value!r}")
    return value
