"""`PruningCallback`: the one component that advances the pruning schedule."""

from __future__ import annotations

import keras

from gated_bert import metric_names as names
from gated_bert.pruning.pruner import Pruner


class PruningCallback(keras.callbacks.Callback):
    """Runs mask updates outside the compiled train step, on schedule.

    Epoch schedules update at the end of each epoch of the window; step
    schedules (movement's default) every `frequency` optimizer steps. With
    epoch schedules a method that `reselects` (movement) also recomputes its
    top-k at the latest update's target every `reselect_frequency` steps of
    the window's later epochs; the mask is held after the window. The
    method hears of every epoch's start (SPT probes only inside the window).
    Put it before any callback that evaluates at epoch end.
    """

    def __init__(self, pruner: Pruner):
        super().__init__()
        self.pruner = pruner
        self.step = 0
        self.current_target = 0.0  # target of the latest mask update
        self.reselecting = False  # inside the window, after an update with a nonzero target

    def on_epoch_begin(self, epoch, logs=None):
        in_window = self.pruner.in_window(epoch + 1)
        self.pruner.method.on_epoch_begin(epoch + 1, in_window)
        self.reselecting = (
            self.pruner.reselect_frequency is not None and in_window and self.current_target > 0
        )

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        schedule = self.pruner.step_schedule
        if schedule is not None and schedule.is_update_step(self.step):
            self._apply(schedule.sparsity_at(self.step))
        elif self.reselecting and batch % self.pruner.reselect_frequency == 0:
            self.pruner.apply(self.current_target)

    def on_epoch_end(self, epoch, logs=None):
        schedule = self.pruner.epoch_schedule
        if schedule is not None and schedule.is_update_step(epoch + 1):
            self._apply(schedule.sparsity_at(epoch + 1))
        if logs is not None:
            logs[names.TARGET_SPARSITY] = self.current_target
            for kind, share in self.pruner.group_sparsity().items():
                logs[f"{names.GROUP_SPARSITY}/{kind}"] = share

    def _apply(self, target: float) -> None:
        self.pruner.apply(target)
        self.current_target = target

    def on_train_end(self, logs=None):
        self.pruner.method.on_train_end()
        self.pruner.zero_pruned_kernels()
