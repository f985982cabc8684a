"""Every metric key a run logs, in one place (MLflow metrics, results CSV columns).

Per-epoch keys are logged at step = the 1-based epoch; `final_*` keys once per run.
"""

from __future__ import annotations

EPOCH = "epoch"
TRAIN_LOSS = "train_loss"
EVAL_LOSS = "eval_loss"
SPARSITY = "sparsity"  # zero mask entries over all prunable (encoder kernel) weights
SPARSITY_ALL_PARAMS = "sparsity_all_params"  # the same zeros over all model parameters
TARGET_SPARSITY = "target_sparsity"
GROUP_SPARSITY = "group_sparsity"  # group_sparsity/head, group_sparsity/neuron: share of whole groups removed
LEARNING_RATE = "learning_rate"
EPOCH_SECONDS = "epoch_seconds"
EXAMPLES_PER_SECOND = "examples_per_second"
FIT_SECONDS = "fit_seconds"
TRAIN_PADDING_SHARE = "train_padding_share"  # padding positions / all positions of the training batches
EVAL_PREFIX = "eval_"
FINAL_PREFIX = "final_"
# Keras' own names for training metrics, and what the results use instead.
KERAS_TRAIN_NAMES = {
    "loss": TRAIN_LOSS,
    "accuracy": "train_accuracy",
    "mean_squared_error": "train_mean_squared_error",
}


def eval_metric(metric: str, split_suffix: str = "") -> str:
    """`eval_<metric>` for the first eval split, `eval_<metric>_<split>` for others."""
    return f"{EVAL_PREFIX}{metric}{split_suffix}"


def eval_loss(split_suffix: str = "") -> str:
    return f"{EVAL_LOSS}{split_suffix}"


def final(key: str) -> str:
    """The run-level copy of a per-epoch key, e.g. final_eval_accuracy."""
    return f"{FINAL_PREFIX}{key}"


def layer_sparsity(kernel_name: str) -> str:
    """Per-kernel sparsity key, e.g. sparsity/layer_0/query."""
    return f"{SPARSITY}/{kernel_name}"


def is_eval_metric(key: str) -> bool:
    """An eval metric other than the loss (eval_accuracy, eval_f1_dev_mismatched, ...)."""
    return key.startswith(EVAL_PREFIX) and not key.startswith(EVAL_LOSS)
