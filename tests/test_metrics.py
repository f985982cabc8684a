import numpy as np
import pytest

from gated_bert.metrics import compute_metrics, loss_from_outputs
from gated_bert.tasks import TASKS


def logits_for(predicted, classes=2):
    out = np.zeros((len(predicted), classes))
    out[np.arange(len(predicted)), predicted] = 1.0
    return out


def test_accuracy_and_f1_mrpc():
    labels = np.array([1, 1, 0, 0, 1])
    predicted = [1, 0, 0, 1, 1]  # tp=2 fp=1 fn=1 -> f1 = 2/3; accuracy 3/5
    m = compute_metrics(TASKS["mrpc"], logits_for(predicted), labels)
    assert m["accuracy"] == pytest.approx(0.6) and m["f1"] == pytest.approx(2 / 3)


def test_matthews_cola():
    labels = np.array([1, 1, 0, 0])
    predicted = [1, 0, 0, 0]  # tp=1 tn=2 fp=0 fn=1 -> (2-0)/sqrt(1*2*3*2)
    m = compute_metrics(TASKS["cola"], logits_for(predicted), labels)
    assert m["matthews_corrcoef"] == pytest.approx(2 / np.sqrt(12))


def test_pearson_spearman_stsb():
    labels = np.array([0.0, 1.0, 2.0, 3.0])
    scores = np.array([[0.0], [1.0], [4.0], [9.0]])
    m = compute_metrics(TASKS["stsb"], scores, labels)
    assert m["spearman"] == pytest.approx(1.0)
    assert m["pearson"] == pytest.approx(np.corrcoef([0, 1, 4, 9], [0, 1, 2, 3])[0, 1])


def test_mnli_accuracy_three_classes():
    m = compute_metrics(TASKS["mnli"], logits_for([0, 1, 2, 2], 3), np.array([0, 1, 2, 0]))
    assert m == {"accuracy": 0.75}


def test_losses():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]])
    assert loss_from_outputs(TASKS["sst2"], logits, np.array([0, 0])) == pytest.approx(
        -(np.log(0.5) + np.log(0.75)) / 2
    )
    assert loss_from_outputs(TASKS["stsb"], np.array([[1.0], [3.0]]), np.array([0.0, 1.0])) == pytest.approx(
        2.5
    )
