"""Learning-rate schedules by optimizer step: linear warm-up, then constant, linear or cosine decay.

lr(step) = peak * step / warmup                      for step < warmup
         = peak                                       constant
         = peak * (total - step) / (total - warmup)   linear (to 0 at the last step)
         = peak * (1 + cos(pi * (step - warmup) / (total - warmup))) / 2   cosine

`learning_rate_at` is the closed form (numpy, tested); `WarmupSchedule` is the
same formula in Keras ops, evaluated by the optimizer at its step count, so a
resumed run (optimizer step restored) continues on the same curve.
"""

from __future__ import annotations

import math

import keras
import numpy as np
from keras import ops

from gated_bert.config import LR_SCHEDULES


def learning_rate_at(step, peak: float, kind: str, total: int, warmup: int):
    """The schedule's value at optimizer step(s) `step` (0-based)."""
    step = np.asarray(step, dtype=np.float64)
    decay = np.clip((step - warmup) / max(total - warmup, 1), 0.0, 1.0)
    after = {
        "constant": np.ones_like(decay),
        "linear": 1.0 - decay,
        "cosine": 0.5 * (1.0 + np.cos(math.pi * decay)),
    }[kind]
    ramp = np.minimum(step / warmup, 1.0) if warmup > 0 else np.ones_like(step)
    return peak * np.where(step < warmup, ramp, after)


@keras.saving.register_keras_serializable(package="gated_bert")
class WarmupSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """`learning_rate_at` as a Keras schedule."""

    def __init__(self, peak: float, kind: str, total: int, warmup: int):
        if kind not in LR_SCHEDULES:
            raise ValueError(f"unknown lr_schedule {kind!r}; choose one of: {', '.join(LR_SCHEDULES)}")
        self.peak, self.kind, self.total, self.warmup = float(peak), kind, int(total), int(warmup)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        decay = ops.clip((step - self.warmup) / max(self.total - self.warmup, 1), 0.0, 1.0)
        if self.kind == "constant":
            after = ops.ones_like(decay)
        elif self.kind == "linear":
            after = 1.0 - decay
        else:
            after = 0.5 * (1.0 + ops.cos(math.pi * decay))
        ramp = ops.minimum(step / self.warmup, 1.0) if self.warmup > 0 else ops.ones_like(step)
        return self.peak * ops.where(step < self.warmup, ramp, after)

    def get_config(self):
        return {"peak": self.peak, "kind": self.kind, "total": self.total, "warmup": self.warmup}


def make_learning_rate(config, steps_per_epoch: int):
    """The optimizer's learning rate: a float (constant, no warm-up: the seed's behaviour) or a schedule."""
    if config.lr_schedule == "constant" and config.warmup_ratio == 0:
        return config.learning_rate
    total = config.epochs * steps_per_epoch
    warmup = int(round(config.warmup_ratio * total))
    return WarmupSchedule(config.learning_rate, config.lr_schedule, total, warmup)
