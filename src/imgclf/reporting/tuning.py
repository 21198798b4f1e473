"""Figures of an Optuna study: its optimisation history and its parameter importances."""

from __future__ import annotations

import math

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from imgclf.lazy import lazy_module

optuna = lazy_module("optuna")


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
    complete = [trial for trial in trials if trial.state == optuna.trial.TrialState.COMPLETE]
    pruned = [
        t for t in trials if t.state == optuna.trial.TrialState.PRUNED and t.value is not None
    ]
    failed = [trial for trial in trials if trial.state == optuna.trial.TrialState.FAIL]
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
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < 2:
        return f"they need at least 2 complete trials; the study has {len(complete)}"
    shared = set(complete[0].params).intersection(*(trial.params for trial in complete[1:]))
    varying = [name for name in shared if len({repr(t.params[name]) for t in complete}) > 1]
    if not varying:
        return "no parameter (present in every complete trial) takes more than one value"
    return None
