"""What a finished (or running) study says: the best trial's values and every trial as a
table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from imgclf.lazy import lazy_module
from imgclf.training.search_space import SearchSpace, parse_search_space, target_values

optuna = lazy_module("optuna")
studies = lazy_module("imgclf.training.study")


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
    if not study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)):
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
                "worker": trial.user_attrs.get(studies.WORKER_ATTR),
                "error": trial.user_attrs.get(studies.ERROR_ATTR),
                "counted": studies.counts_toward_budget(trial),
                **{f"param_{name}": trial.params.get(name) for name in param_names},
            }
        )
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"value": "float64", "duration_seconds": "float64"})


def _no_complete_trial_message(study: optuna.Study, shown: int = 3) -> str:
    trials = sorted(study.get_trials(deepcopy=False), key=lambda trial: trial.number)
    states: dict[str, int] = {}
    for trial in trials:
        states[trial.state.name] = states.get(trial.state.name, 0) + 1
    summary = ", ".join(f"{count} {state.lower()}" for state, count in states.items()) or "none"
    errors = [
        f"trial {trial.number}: {trial.user_attrs[studies.ERROR_ATTR]}"
        for trial in trials
        if studies.ERROR_ATTR in trial.user_attrs
    ]
    message = f"no trial of study {study.study_name!r} completed (trials: {summary})"
    if errors:
        more = f" (and {len(errors) - shown} more)" if len(errors) > shown else ""
        message += "; errors: " + "; ".join(errors[:shown]) + more
    return message
