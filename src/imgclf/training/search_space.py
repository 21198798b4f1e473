"""Search spaces for Optuna declared in parameters: parse, suggest, apply.

A tuned variant declares what to tune as a mapping of parameter names to their
settings, each with the dotted path (``target``) of the variant parameter it sets::

    search_space:
      units: {type: int, low: 32, high: 512, step: 32, target: architecture.head.dense.0.units}
      activation:
        type: categorical
        choices: [relu, tanh]
        target: architecture.head.dense.0.activation
      dropout:
        type: bool
        target: architecture.head.dense.0.dropout
        if_true: 0.25          # written to the target instead of true
        if_false: 0.0
      learning_rate:
        type: float
        low: 1.0e-4
        high: 1.0e-2
        log: true
        target: training.optimizer.learning_rate
      optimizer: {type: categorical, choices: [adam, sgd], target: training.optimizer.name}
      momentum:
        type: float
        low: 0.0
        high: 0.95
        when: {optimizer: sgd}  # only suggested for sgd; otherwise the target gets default
        default: 0.0
        target: training.optimizer.momentum
        grid: [0.0, 0.9]       # values for the grid sampler (floats need one)
      batch_size: {type: categorical, choices: [16, 32, 64], target: training.batch_size}

Parameter types are ``int`` (low, high, step, log), ``float`` (low, high,
step or log), ``categorical`` (choices) and ``bool``. A ``target`` is a dotted
path (or a list of them) into the config being tuned, where integer segments
index lists; a parameter without one only serves as a condition for others.
``when`` may only name parameters declared before it. An entry set to null is
left out (an environment can remove an entry of the base search space).
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

from imgclf.config import block_items
from imgclf.lazy import lazy_module

optuna = lazy_module("optuna")

PARAMETER_TYPES = ("int", "float", "categorical", "bool")
_COMMON_KEYS = ("type", "target", "when", "default", "grid")
PARAMETER_KEYS = {
    "int": (*_COMMON_KEYS, "low", "high", "step", "log"),
    "float": (*_COMMON_KEYS, "low", "high", "step", "log"),
    "categorical": (*_COMMON_KEYS, "choices"),
    "bool": (*_COMMON_KEYS, "if_true", "if_false"),
}
_CHOICE_TYPES = (str, int, float, bool, type(None))


@dataclasses.dataclass(frozen=True)
class Parameter:
    """One validated search-space parameter.

    Attributes:
        name: the parameter's name (its key in ``search_space``; Optuna's param name).
        type: int, float, categorical or bool.
        low: smallest value (int and float).
        high: largest value (int and float).
        step: spacing of the values (int: 1 unless given; float: None for continuous).
        log: sample on a log scale (int and float).
        choices: the values of a categorical (``(False, True)`` for a bool).
        targets: dotted paths into the tuned config that receive the value.
        when: ``((other_name, allowed_values), ...)``: suggested only if every named
            parameter was suggested with one of its allowed values.
        default: written to the targets when the ``when`` condition does not hold
            (only if ``has_default``).
        has_default: whether ``default`` was given (it may be None).
        if_true: written to the targets instead of True (bool, only if ``maps_bool``).
        if_false: written to the targets instead of False (bool, only if ``maps_bool``).
        maps_bool: whether ``if_true``/``if_false`` were given.
        grid: values for the grid sampler, or None to derive them.
    """

    name: str
    type: str
    low: float | None = None
    high: float | None = None
    step: float | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()
    targets: tuple[str, ...] = ()
    when: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    default: Any = None
    has_default: bool = False
    if_true: Any = None
    if_false: Any = None
    maps_bool: bool = False
    grid: tuple[Any, ...] | None = None

    def condition_met(self, values: Mapping[str, Any]) -> bool:
        """Whether the ``when`` condition holds for the values suggested so far."""
        return all(name in values and values[name] in allowed for name, allowed in self.when)

    def target_value(self, value: Any) -> Any:
        """The value written to the targets for a suggested ``value``."""
        if self.maps_bool:
            return self.if_true if value else self.if_false
        return value


@dataclasses.dataclass(frozen=True)
class SearchSpace:
    """Validated search space: the parameters in declaration order."""

    parameters: tuple[Parameter, ...]

    @property
    def names(self) -> tuple[str, ...]:
        """Parameter names in declaration order."""
        return tuple(parameter.name for parameter in self.parameters)

    def __getitem__(self, name: str) -> Parameter:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(name)


def parse_search_space(space: Mapping[str, Any] | SearchSpace) -> SearchSpace:
    """Validate a ``search_space`` mapping and return a :class:`SearchSpace`.

    An entry whose settings are null is left out, so that an environment can remove a
    parameter that the base environment's search space declares.

    Raises:
        ValueError: for an unknown type or key (the message lists the valid ones), a bad
            range, step or choice list, a bad target path, or a ``when`` naming a
            parameter that is not declared before it.
    """
    if isinstance(space, SearchSpace):
        return space
    if isinstance(space, Mapping):
        # null removes an entry, e.g. one inherited from another environment's file
        space = {name: settings for name, settings in space.items() if settings is not None}
    if not isinstance(space, Mapping) or not space:
        raise ValueError(
            f"search_space must be a mapping of at least one parameter name to its settings; "
            f"got {space!r}"
        )
    parameters: dict[str, Parameter] = {}
    for name, settings in space.items():
        if not isinstance(name, str) or not name:
            raise ValueError(
                f"search_space parameter names must be non-empty strings; got {name!r}"
            )
        parameters[name] = _parse_parameter(name, settings, parameters, tuple(space))
    return SearchSpace(tuple(parameters.values()))


def suggest(
    trial: optuna.trial.BaseTrial, space: Mapping[str, Any] | SearchSpace
) -> dict[str, Any]:
    """Suggest a value for every parameter whose ``when`` condition holds.

    Returns:
        ``{name: value}`` of the suggested parameters only, in declaration order.
    """
    space = parse_search_space(space)
    values: dict[str, Any] = {}
    for parameter in space.parameters:
        if parameter.condition_met(values):
            values[parameter.name] = _suggest_parameter(trial, parameter)
    return values


def target_values(
    space: Mapping[str, Any] | SearchSpace, values: Mapping[str, Any]
) -> dict[str, Any]:
    """Map suggested values to ``{dotted target path: value written there}``.

    Bool parameters write ``if_true``/``if_false`` when given; a parameter whose ``when``
    condition does not hold writes its ``default`` if it has one and nothing otherwise.
    When two parameters share a target, the later one wins.

    Raises:
        ValueError: for a value of an unknown parameter, or a missing value of a
            parameter whose condition holds.
    """
    space = parse_search_space(space)
    unknown = sorted(str(name) for name in values if name not in space.names)
    if unknown:
        raise ValueError(
            f"value(s) for unknown search-space parameter(s) {', '.join(unknown)}; "
            f"parameters are: {', '.join(space.names)}"
        )
    assignments: dict[str, Any] = {}
    for parameter in space.parameters:
        if parameter.name in values:
            value = parameter.target_value(values[parameter.name])
        elif parameter.condition_met(values):
            raise ValueError(
                f"no value for search-space parameter {parameter.name!r}, which is suggested "
                f"for these values"
            )
        elif parameter.has_default:
            value = parameter.default
        else:
            continue
        for target in parameter.targets:
            assignments[target] = value
    return assignments


def apply_suggestions(
    config: Mapping[str, Any],
    space: Mapping[str, Any] | SearchSpace,
    values: Mapping[str, Any],
) -> dict[str, Any]:
    """Return a deep copy of ``config`` with every target set from ``values``.

    A new key may be added inside an existing mapping; everything above the last path
    segment, and any list index, must already exist.

    Raises:
        ValueError: naming the path that does not exist in ``config``.
    """
    if not isinstance(config, Mapping):
        raise ValueError(f"the config to tune must be a mapping; got {config!r}")
    result = copy.deepcopy(dict(config))
    for path, value in target_values(space, values).items():
        container, key = _locate(result, path)
        container[key] = copy.deepcopy(value)
    return result


def validate_targets(config: Mapping[str, Any], space: Mapping[str, Any] | SearchSpace) -> None:
    """Check that every target of ``space`` resolves in ``config`` (call before a study).

    Raises:
        ValueError: listing every target path that does not resolve, and why.
    """
    space = parse_search_space(space)
    problems = []
    for parameter in space.parameters:
        for target in parameter.targets:
            try:
                _locate(config, target)
            except ValueError as error:
                problems.append(f"parameter {parameter.name!r}: {error}")
    if problems:
        raise ValueError("search-space target(s) not found in the config:\n" + "\n".join(problems))


def grid_values(space: Mapping[str, Any] | SearchSpace) -> dict[str, list[Any]]:
    """The grid sampler's values per parameter: ``grid`` if given, else the choices of a
    categorical, ``[False, True]`` for a bool, or ``range(low, high + 1, step)`` for an int.

    The grid is the product of every parameter's values, conditional ones included: a
    point is tried once for each value of a parameter even when its condition fails.

    Raises:
        ValueError: naming every float parameter without a ``grid`` list.
    """
    space = parse_search_space(space)
    grid: dict[str, list[Any]] = {}
    missing = []
    for parameter in space.parameters:
        if parameter.grid is not None:
            grid[parameter.name] = list(parameter.grid)
        elif parameter.type in ("categorical", "bool"):
            grid[parameter.name] = list(parameter.choices)
        elif parameter.type == "int":
            assert parameter.low is not None and parameter.high is not None
            step = int(parameter.step or 1)
            grid[parameter.name] = list(range(int(parameter.low), int(parameter.high) + 1, step))
        else:
            missing.append(parameter.name)
    if missing:
        raise ValueError(
            f"the grid sampler cannot enumerate float parameter(s) {', '.join(missing)}; "
            f"add a list of values to try, e.g. grid: [0.001, 0.01]"
        )
    return grid


def _parse_parameter(
    name: str,
    settings: Any,
    earlier: Mapping[str, Parameter],
    declared: Sequence[str],
) -> Parameter:
    where = f"search_space parameter {name!r}"
    if not isinstance(settings, Mapping):
        raise ValueError(f"{where} must be a mapping with a 'type'; got {settings!r}")
    kind = settings.get("type")
    if kind not in PARAMETER_TYPES:
        raise ValueError(
            f"{where} has type {kind!r}; valid types are: {', '.join(PARAMETER_TYPES)}"
        )
    block_items(settings, PARAMETER_KEYS[kind], f"{where} (type {kind})")
    values: dict[str, Any] = {"name": name, "type": kind}
    if kind in ("int", "float"):
        values.update(_parse_range(settings, kind, where))
    elif kind == "categorical":
        values["choices"] = _parse_choices(settings.get("choices"), where)
    else:
        values["choices"] = (False, True)
        values.update(_parse_bool_mapping(settings, where))
    values["targets"] = _parse_targets(settings.get("target"), where)
    if "when" in settings:
        values["when"] = _parse_when(settings["when"], where, earlier, declared)
    if "default" in settings:
        if "when" not in settings:
            raise ValueError(
                f"{where}: 'default' is only used when the 'when' condition does not hold; "
                f"add a 'when' or remove the 'default'"
            )
        values["default"] = settings["default"]
        values["has_default"] = True
    parameter = Parameter(**values)
    if "grid" in settings:
        parameter = dataclasses.replace(parameter, grid=_parse_grid(settings["grid"], parameter))
    return parameter


def _parse_range(settings: Mapping[str, Any], kind: str, where: str) -> dict[str, Any]:
    number = _integer_value if kind == "int" else _number_value
    for key in ("low", "high"):
        if key not in settings:
            raise ValueError(f"{where} of type {kind} needs '{key}'")
    low = number(settings["low"], f"{where} 'low'")
    high = number(settings["high"], f"{where} 'high'")
    if not low < high:
        raise ValueError(f"{where} needs low < high; got low={low!r}, high={high!r}")
    log = settings.get("log", False)
    if not isinstance(log, bool):
        raise ValueError(f"{where} 'log' must be true or false; got {log!r}")
    step = settings.get("step")
    if step is not None:
        step = number(step, f"{where} 'step'")
        if step <= 0:
            raise ValueError(f"{where} 'step' must be > 0; got {step!r}")
        if log and not (kind == "int" and step == 1):
            raise ValueError(f"{where}: 'log' and 'step' are exclusive; give one of them")
    if log and low <= 0:
        raise ValueError(f"{where}: 'log' needs low > 0; got low={low!r}")
    if kind == "int" and step is None:
        step = 1
    return {"low": low, "high": high, "step": step, "log": log}


def _parse_choices(choices: Any, where: str) -> tuple[Any, ...]:
    if isinstance(choices, str | bytes) or not isinstance(choices, Sequence) or not choices:
        raise ValueError(f"{where} needs 'choices', a non-empty list of values; got {choices!r}")
    for choice in choices:
        if not isinstance(choice, _CHOICE_TYPES):
            raise ValueError(
                f"{where}: choices must be strings, numbers, booleans or null; got {choice!r}"
            )
    if len({(type(choice), choice) for choice in choices}) != len(choices):
        raise ValueError(f"{where}: choices must not repeat; got {list(choices)!r}")
    return tuple(choices)


def _parse_bool_mapping(settings: Mapping[str, Any], where: str) -> dict[str, Any]:
    given = [key for key in ("if_true", "if_false") if key in settings]
    if not given:
        return {}
    if len(given) == 1:
        raise ValueError(
            f"{where}: give both 'if_true' and 'if_false' (the values written for true and "
            f"false) or neither; got only {given[0]!r}"
        )
    return {"if_true": settings["if_true"], "if_false": settings["if_false"], "maps_bool": True}


def _parse_targets(target: Any, where: str) -> tuple[str, ...]:
    if target is None:
        return ()
    targets = [target] if isinstance(target, str) else target
    if not isinstance(targets, Sequence) or not targets:
        raise ValueError(
            f"{where} 'target' must be a dotted path or a list of them; got {target!r}"
        )
    for path in targets:
        if not isinstance(path, str) or not all(path.split(".")):
            raise ValueError(
                f"{where} 'target' must be dotted path(s) like training.optimizer.learning_rate "
                f"(no empty segments); got {path!r}"
            )
    return tuple(targets)


def _parse_when(
    when: Any,
    where: str,
    earlier: Mapping[str, Parameter],
    declared: Sequence[str],
) -> tuple[tuple[str, tuple[Any, ...]], ...]:
    if not isinstance(when, Mapping) or not when:
        raise ValueError(
            f"{where} 'when' must map earlier parameter names to a value or list of values, "
            f"e.g. {{optimizer: sgd}}; got {when!r}"
        )
    conditions = []
    for other, allowed in when.items():
        if other not in earlier:
            reason = "is declared after it" if other in declared else "is not a parameter"
            raise ValueError(
                f"{where} 'when' names {other!r}, which {reason}; 'when' may only name "
                f"parameters declared before it: {', '.join(earlier) or '(none)'}"
            )
        options = tuple(allowed) if isinstance(allowed, list | tuple) else (allowed,)
        if not options:
            raise ValueError(f"{where} 'when' gives no values for {other!r}")
        choices = earlier[other].choices
        impossible = [option for option in options if choices and option not in choices]
        if impossible:
            raise ValueError(
                f"{where} 'when' expects {other!r} to be {impossible[0]!r}, which is not one "
                f"of its choices: {', '.join(map(repr, choices))}"
            )
        conditions.append((other, options))
    return tuple(conditions)


def _parse_grid(grid: Any, parameter: Parameter) -> tuple[Any, ...]:
    where = f"search_space parameter {parameter.name!r} 'grid'"
    if isinstance(grid, str | bytes) or not isinstance(grid, Sequence) or not grid:
        raise ValueError(f"{where} must be a non-empty list of values; got {grid!r}")
    for value in grid:
        if parameter.choices:
            if value not in parameter.choices:
                raise ValueError(
                    f"{where}: {value!r} is not one of the choices "
                    f"{', '.join(map(repr, parameter.choices))}"
                )
            continue
        number = _integer_value if parameter.type == "int" else _number_value
        assert parameter.low is not None and parameter.high is not None
        if not parameter.low <= number(value, where) <= parameter.high:
            raise ValueError(
                f"{where}: {value!r} is outside [{parameter.low!r}, {parameter.high!r}]"
            )
    return tuple(grid)


def _locate(root: Any, path: str) -> tuple[Any, Any]:
    """The container and key/index that ``path`` names inside ``root``.

    Every segment but the last must exist; the last may be a new key of a mapping but
    must be an existing index of a list.
    """
    segments = path.split(".")
    node = root
    for depth, segment in enumerate(segments):
        parent = ".".join(segments[:depth]) or "the config root"
        last = depth == len(segments) - 1
        if isinstance(node, Mapping):
            key: Any = segment
            if segment not in node and segment.isdigit() and int(segment) in node:
                key = int(segment)
            if last:
                return node, key
            if key not in node:
                keys = ", ".join(map(str, node)) or "(none)"
                raise ValueError(
                    f"target {path!r}: no key {segment!r} in {parent}; keys there are: {keys}"
                )
        elif isinstance(node, list):
            if not segment.isdigit():
                raise ValueError(
                    f"target {path!r}: {parent} is a list, so {segment!r} must be an index"
                )
            key = int(segment)
            if key >= len(node):
                raise ValueError(
                    f"target {path!r}: list index {key} is out of range in {parent} "
                    f"(a list of {len(node)})"
                )
            if last:
                return node, key
        else:
            raise ValueError(
                f"target {path!r}: {parent} is a {type(node).__name__} ({node!r}), "
                f"not a mapping or list"
            )
        node = node[key]
    raise AssertionError("unreachable")  # pragma: no cover - the loop always returns


def _suggest_parameter(trial: optuna.trial.BaseTrial, parameter: Parameter) -> Any:
    if parameter.type == "int":
        return trial.suggest_int(
            parameter.name,
            int(parameter.low),
            int(parameter.high),
            step=int(parameter.step or 1),
            log=parameter.log,
        )
    if parameter.type == "float":
        return trial.suggest_float(
            parameter.name,
            float(parameter.low),
            float(parameter.high),
            step=parameter.step,
            log=parameter.log,
        )
    return trial.suggest_categorical(parameter.name, list(parameter.choices))


def _integer_value(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{where} must be an integer; got {value!r}")
    return value


def _number_value(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{where} must be a finite number; got {value!r}")
    return float(value)
