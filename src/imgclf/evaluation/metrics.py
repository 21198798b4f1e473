"""Test-set scores from predicted class probabilities: accuracy, loss, precision, recall
and F1 (per class, macro and weighted), top-k accuracy and the confusion matrix.

Everything is computed from the confusion matrix with NumPy, so the same function scores
a Keras model and the scikit-learn baseline alike. A class that is never predicted has
precision 0, a class absent from the labels has recall 0 (scikit-learn's
``zero_division=0``); macro averages include every class of ``classes``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

LOSS_EPSILON = 1e-7
"""Probabilities are clipped to [epsilon, 1 - epsilon] before the log, as Keras does."""


def check_probabilities(probabilities: np.ndarray, labels: np.ndarray, num_classes: int) -> None:
    """Raise ``ValueError`` unless ``probabilities`` is ``(n, num_classes)`` and ``labels``
    holds ``n`` class ids in ``[0, num_classes)``."""
    if probabilities.ndim != 2 or probabilities.shape[1] != num_classes:
        raise ValueError(
            f"expected probabilities of shape (n, {num_classes}) for {num_classes} classes; "
            f"got {probabilities.shape}"
        )
    if labels.shape != (probabilities.shape[0],):
        raise ValueError(
            f"{labels.shape[0] if labels.ndim else 0} labels for {probabilities.shape[0]} "
            "rows of probabilities"
        )
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"label ids must lie in [0, {num_classes}); got {labels.min()}..{labels.max()}"
        )


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``(num_classes, num_classes)``: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def normalise_rows(matrix: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the share of a true class given each prediction); rows
    of a class with no examples stay 0."""
    totals = matrix.sum(axis=1, keepdims=True)
    return np.divide(matrix, totals, out=np.zeros(matrix.shape, float), where=totals > 0)


def top_k_accuracy(probabilities: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Share of rows whose true class is among the ``k`` most probable ones."""
    if not 1 <= k <= probabilities.shape[1]:
        raise ValueError(f"k must lie in [1, {probabilities.shape[1]}]; got {k}")
    top = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(top == labels[:, None], axis=1)))


def cross_entropy(probabilities: np.ndarray, labels: np.ndarray) -> float:
    """Mean categorical cross-entropy of the true classes (Keras's clipping)."""
    true_class = probabilities[np.arange(len(labels)), labels]
    return float(-np.mean(np.log(np.clip(true_class, LOSS_EPSILON, 1 - LOSS_EPSILON))))


def classification_scores(
    probabilities: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    *,
    top_k: Iterable[int] = (),
) -> dict[str, Any]:
    """Score predicted probabilities against true class ids.

    Args:
        probabilities: ``(n, len(classes))``, each row a distribution over ``classes``.
        labels: ``(n,)`` true class ids (positions in ``classes``).
        classes: the class names, in the model's output order.
        top_k: the k of each top-k accuracy; values of at least ``len(classes)`` (always
            1.0) are left out.

    Returns:
        ``accuracy``, ``loss``, ``macro`` and ``weighted`` (precision, recall, f1),
        ``top_k_accuracy`` (``{"3": ...}``), ``per_class`` (a row per class: class,
        precision, recall, f1, support), ``confusion_matrix`` (lists of counts) and
        ``examples``.

    Raises:
        ValueError: for mismatched shapes, label ids out of range or no examples.
    """
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    num_classes = len(classes)
    check_probabilities(probabilities, labels, num_classes)
    if not len(labels):
        raise ValueError("cannot score an empty set of predictions")
    predicted = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predicted, num_classes)
    correct = np.diag(matrix).astype(float)
    support = matrix.sum(axis=1)
    predicted_counts = matrix.sum(axis=0)
    precision = np.divide(
        correct, predicted_counts, out=np.zeros(num_classes), where=predicted_counts > 0
    )
    recall = np.divide(correct, support, out=np.zeros(num_classes), where=support > 0)
    both = precision + recall
    f1 = np.divide(2 * precision * recall, both, out=np.zeros(num_classes), where=both > 0)
    per_class = {"precision": precision, "recall": recall, "f1": f1}
    weights = support / support.sum()
    return {
        "examples": len(labels),
        "accuracy": float(correct.sum() / len(labels)),
        "loss": cross_entropy(probabilities, labels),
        "macro": {name: float(values.mean()) for name, values in per_class.items()},
        "weighted": {name: float(values @ weights) for name, values in per_class.items()},
        "top_k_accuracy": {
            str(k): top_k_accuracy(probabilities, labels, k)
            for k in sorted(set(top_k))
            if k < num_classes
        },
        "per_class": [
            {
                "class": str(name),
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(classes)
        ],
        "confusion_matrix": matrix.tolist(),
    }
