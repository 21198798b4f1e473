import numpy as np
import pytest
from sklearn import metrics as sk

from imgclf.evaluation.metrics import classification_scores, normalise_rows

CLASSES = ["cat", "dog", "fox", "owl"]


@pytest.fixture
def known_predictions():
    """40 predictions over 4 classes: `owl` is never the true class and `fox` is never
    predicted, the cases where precision and recall divide by zero."""
    random = np.random.default_rng(3)
    labels = random.choice([0, 1, 2], size=40)
    logits = random.normal(size=(40, 4))
    logits[np.arange(40), labels] += random.uniform(-0.5, 2.5, size=40)
    logits[:, 2] -= 10  # fox: never the most probable
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return probabilities, labels


def test_scores_match_scikit_learn(known_predictions):
    probabilities, labels = known_predictions
    predicted = probabilities.argmax(axis=1)
    assert 2 not in predicted and 3 in predicted  # the zero-division cases are exercised

    scores = classification_scores(probabilities, labels, CLASSES, top_k=[2, 3])

    ids = list(range(len(CLASSES)))
    assert scores["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    assert scores["loss"] == pytest.approx(sk.log_loss(labels, probabilities, labels=ids))
    for average in ("macro", "weighted"):
        precision, recall, f1, _ = sk.precision_recall_fscore_support(
            labels, predicted, labels=ids, average=average, zero_division=0
        )
        assert scores[average] == pytest.approx(
            {"precision": precision, "recall": recall, "f1": f1}
        )
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        labels, predicted, labels=ids, zero_division=0
    )
    assert [row["class"] for row in scores["per_class"]] == CLASSES
    assert [row["precision"] for row in scores["per_class"]] == pytest.approx(precision)
    assert [row["recall"] for row in scores["per_class"]] == pytest.approx(recall)
    assert [row["f1"] for row in scores["per_class"]] == pytest.approx(f1)
    assert [row["support"] for row in scores["per_class"]] == support.tolist()
    for k in (2, 3):
        assert scores["top_k_accuracy"][str(k)] == pytest.approx(
            sk.top_k_accuracy_score(labels, probabilities, k=k, labels=ids)
        )
    assert scores["confusion_matrix"] == sk.confusion_matrix(labels, predicted, labels=ids).tolist()
    assert scores["examples"] == 40


def test_top_k_of_all_classes_is_left_out(known_predictions):
    probabilities, labels = known_predictions
    scores = classification_scores(probabilities, labels, CLASSES, top_k=[3, 4, 9])
    assert list(scores["top_k_accuracy"]) == ["3"]


def test_row_normalised_confusion_matrix_keeps_empty_rows_at_zero():
    matrix = np.array([[3, 1], [0, 0]])
    assert normalise_rows(matrix).tolist() == [[0.75, 0.25], [0.0, 0.0]]


@pytest.mark.parametrize(
    ("probabilities", "labels", "message"),
    [
        (np.full((3, 3), 1 / 3), [0, 1, 2], r"shape \(n, 4\)"),
        (np.full((3, 4), 0.25), [0, 1], "2 labels for 3 rows"),
        (np.full((2, 4), 0.25), [0, 4], r"label ids must lie in \[0, 4\)"),
        (np.zeros((0, 4)), [], "empty"),
    ],
)
def test_bad_predictions_are_refused(probabilities, labels, message):
    with pytest.raises(ValueError, match=message):
        classification_scores(np.asarray(probabilities), np.asarray(labels), CLASSES)
