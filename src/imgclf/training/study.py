"""The study loop: trials of an objective until the study's budget is used, safe to run from
several processes (workers) on one storage at once.

``n_trials`` is the budget of the study, not of one call, and re-running after a kill keeps
the finished trials and replaces the killed one (see :func:`run_study`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import socket
import time
import warnings
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState

from imgclf.training.search_space import SearchSpace
from imgclf.training.storage import make_storage
from imgclf.training.tuning import TuningConfig, make_pruner, make_sampler, parse_tuning_config

# _log_trial logs one line per trial; Optuna's own handler would say it again, on its own
# line format. Its warnings go through the project's logging (conf/logging.yml).
optuna.logging.disable_default_handler()
optuna.logging.enable_propagation()
optuna.logging.set_verbosity(optuna.logging.WARNING)

_LOGGER = logging.getLogger(__name__)

# User attributes this module records on trials.
WORKER_ATTR = "worker"
ERROR_ATTR = "error"
ORPHANED_ATTR = "orphaned"
SURPLUS_ATTR = "surplus"


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
    storage = make_storage(config.storage, config.heartbeat_interval, config.grace_period)
    study = optuna.create_study(
        study_name=config.study_name,
        storage=storage,
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
        _fail_orphaned_trials(study, storage)
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


def _fail_orphaned_trials(study: optuna.Study, storage: optuna.storages.BaseStorage) -> None:
    """Fail the running trials whose worker is a process of this host that has died.

    A study updates only its own process's trials; another process's trial is updated
    through the storage the study was opened on (``BaseStorage``'s public methods).
    """
    host = socket.gethostname()
    study_id = storage.get_study_id_from_name(study.study_name)
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = _local_pid(trial.user_attrs.get(WORKER_ATTR), host)
        if pid is None or _process_alive(pid):
            continue
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        try:
            storage.set_trial_user_attr(trial_id, ORPHANED_ATTR, True)
            storage.set_trial_state_values(trial_id, state=TrialState.FAIL)
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
