"""Knowledge distillation: the student learns from the task's labels and a frozen teacher's outputs.

    loss = alpha * task_loss + (1 - alpha) * T^2 * KL(softmax(teacher / T) || softmax(student / T))

(Hinton et al., 2015: the T^2 keeps the soft term's gradient on the scale of
the task term's as T changes). For a regression task (STS-B) the soft term
is the squared error to the teacher's score. The teacher runs without
dropout, so its outputs for a training example never change: they are
computed once before training and fed with the labels (`teacher_outputs`).
"""

from __future__ import annotations

import keras
from keras import ops


class DistillationLoss:
    """`loss((labels, teacher_outputs), student_outputs)`; with alpha 1 exactly the task loss."""

    def __init__(self, task_loss, is_regression: bool, alpha: float, temperature: float):
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"distill_alpha must be in [0, 1], got {alpha!r}")
        if not temperature > 0:
            raise ValueError(f"distill_temperature must be > 0, got {temperature!r}")
        self.task_loss, self.is_regression = task_loss, is_regression
        self.alpha, self.temperature = float(alpha), float(temperature)

    def soft_loss(self, teacher, student):
        """The teacher term alone (batch mean)."""
        teacher, student = ops.cast(teacher, "float32"), ops.cast(student, "float32")
        if self.is_regression:
            return ops.mean(ops.square(ops.reshape(student, (-1,)) - ops.reshape(teacher, (-1,))))
        t = self.temperature
        log_p = ops.log_softmax(teacher / t, axis=-1)
        log_q = ops.log_softmax(student / t, axis=-1)
        return t * t * ops.mean(ops.sum(ops.exp(log_p) * (log_p - log_q), axis=-1))

    def __call__(self, targets, student):
        """`targets` = (labels, the teacher's outputs for the batch)."""
        labels, teacher = targets
        task = self.task_loss(labels, student)
        if self.alpha == 1.0:  # plain training, bit for bit
            return task
        return self.alpha * task + (1.0 - self.alpha) * self.soft_loss(teacher, student)


def teacher_outputs(teacher: keras.Model, dataset, order, count: int):
    """The teacher's outputs (float32, shape [count, outputs]) for every example of a split, in the
    split's order; `dataset` yields (inputs, labels) batches of the examples `order` lists."""
    import numpy as np

    parts = [np.asarray(teacher(x, training=False), dtype=np.float32) for x, _ in dataset]
    stacked = np.concatenate(parts).reshape(len(order), -1)
    out = np.empty((count, stacked.shape[1]), dtype=np.float32)
    out[np.asarray(order)] = stacked
    return out
