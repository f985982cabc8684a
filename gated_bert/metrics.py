"""GLUE metrics (scikit-learn / scipy) and the eval loss, from model outputs."""

from __future__ import annotations

import numpy as np
from scipy.special import log_softmax
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import accuracy_score, f1_score, matthews_corrcoef

from gated_bert.tasks import Task


def predictions_from_outputs(task: Task, outputs: np.ndarray) -> np.ndarray:
    """Class ids (argmax of logits) or regression scores."""
    outputs = np.asarray(outputs)
    return outputs[:, 0] if task.is_regression else outputs.argmax(axis=-1)


def compute_metrics(task: Task, outputs: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """The task's standard metrics (`task.metrics`) for one eval split."""
    predicted = predictions_from_outputs(task, outputs)
    labels = np.asarray(labels)
    result = {}
    for name in task.metrics:
        if name == "accuracy":
            result[name] = float(accuracy_score(labels, predicted))
        elif name == "f1":
            result[name] = float(f1_score(labels, predicted, zero_division=0.0))
        elif name == "matthews_corrcoef":
            result[name] = float(matthews_corrcoef(labels, predicted))
        elif name in ("pearson", "spearman"):
            if np.std(predicted) == 0 or np.std(labels) == 0:
                result[name] = 0.0  # undefined for a constant prediction; report no correlation
            else:
                corr = pearsonr if name == "pearson" else spearmanr
                result[name] = float(corr(predicted, labels)[0])
        else:
            raise ValueError(f"unknown metric {name!r}")
    return result


def loss_from_outputs(task: Task, outputs: np.ndarray, labels: np.ndarray) -> float:
    """Mean cross-entropy of logits, or mean squared error for regression."""
    outputs = np.asarray(outputs, dtype=np.float64)
    if task.is_regression:
        return float(np.mean((outputs[:, 0] - np.asarray(labels, dtype=np.float64)) ** 2))
    log_probs = log_softmax(outputs, axis=-1)
    return float(-np.mean(log_probs[np.arange(len(labels)), np.asarray(labels)]))
