"""Deferred imports, so that building the pipelines (and every command that needs no model:
``ingest``, ``split``, ``kedro viz``, ``kedro catalog``) never loads TensorFlow, Keras or
Optuna: those load when a node that needs them first runs.

- :func:`lazy_module`: ``keras = lazy_module("keras")`` at the top of a module, in place of
  ``import keras``; the import happens on the first ``keras.<name>``.
- :func:`lazy_exports`: a package's names imported from their submodules on first access
  (``from imgclf.imaging import make_dataset`` imports only what it needs).

Two rules keep it so (``tests/test_imports.py`` runs each such command and checks):

- a module that uses Keras or Optuna when it is imported (subclasses or module-level
  constants: ``imgclf.models.boxes``, ``imgclf.models.backbones``,
  ``imgclf.training.callbacks``, ``.checkpoint``, ``.study``, ``.tuning``, ``.objective``,
  ``imgclf.evaluation.explain``), or imports one that does (``imgclf.training.fit``), is
  itself reached through :func:`lazy_module`;
- a node function's signature names no lazily imported type (``Any`` for a Keras model):
  Kedro's parameter validation evaluates every node's annotations
  (``typing.get_type_hints``) whenever a command reads the parameters.
"""

from __future__ import annotations

import importlib
import sys
import types
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__`` and ``__dir__`` for ``package``, whose names ``exports`` maps to the
    submodule that defines each: the submodule is imported on first access to a name."""

    def __getattr__(name: str) -> Any:
        module_name = exports.get(name)
        if module_name is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{module_name}"), name)
        setattr(sys.modules[package], name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(sys.modules[package])) | set(exports))

    return __getattr__, __dir__


class _LazyModule(types.ModuleType):
    """Stands in for the module of the same name until an attribute is read."""

    def __getattr__(self, attribute: str) -> Any:
        module = importlib.import_module(self.__name__)
        return getattr(module, attribute)


def lazy_module(name: str) -> Any:
    """A stand-in for the module ``name`` (``"keras"``, ``"imgclf.training.fit"``) that
    imports it on first attribute access and hands every attribute on: ``fit.train_model``
    is the real function. Annotations that name it (``keras.Model``) import nothing under
    ``from __future__ import annotations``."""
    return _LazyModule(name)
