"""`PruningCallback`: the one component that advances the pruning schedule."""

from __future__ import annotations

import keras

from gated_bert.pruning.pruner import Pruner


class PruningCallback(keras.callbacks.Callback):
    """Runs mask updates outside the compiled train step, on schedule.

    Epoch schedules (magnitude, spt, step lists) update at the end of each
    epoch of the window; movement's step schedule updates every `frequency`
    optimizer steps. SPT's probing is switched on for the window's epochs.
    Put it before any callback that evaluates at epoch end.
    """

    def __init__(self, pruner: Pruner):
        super().__init__()
        self.pruner = pruner
        self.step = 0
        self.updates = 0
        self.current_target = 0.0  # target of the latest mask update

    def on_epoch_begin(self, epoch, logs=None):
        if self.pruner.explorer is not None:
            self.pruner.explorer.exploring.assign(self.pruner.in_window(epoch + 1))

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        schedule = self.pruner.step_schedule
        if schedule is not None and schedule.is_update_step(self.step):
            self._apply(schedule.sparsity_at(self.step))

    def on_epoch_end(self, epoch, logs=None):
        schedule = self.pruner.epoch_schedule
        if schedule is not None and schedule.is_update_step(epoch + 1):
            self._apply(schedule.sparsity_at(epoch + 1))
        if logs is not None:
            logs["target_sparsity"] = self.current_target

    def _apply(self, target: float) -> None:
        self.pruner.apply(target)
        self.current_target = target
        self.updates += 1

    def on_train_end(self, logs=None):
        if self.pruner.explorer is not None:
            self.pruner.explorer.exploring.assign(False)
        self.pruner.zero_pruned_kernels()
