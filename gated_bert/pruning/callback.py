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

    When the trainer ranks inside its train step (`ranks_in_step`: a method that re-ranks
    after every step from its `ranking_variables`, movement's default), the step asks
    `in_step_target` after its optimizer update and writes the masks itself; the callback
    then only counts steps. Same schedule, same masks, without a host round trip per step.
    """

    def __init__(self, pruner: Pruner):
        super().__init__()
        self.pruner = pruner
        self.step = 0
        self.batch = 0  # the epoch's batch in training (for the ranking inside the train step)
        self.current_target = 0.0  # target of the latest mask update
        self.reselecting = False  # inside the window, after an update with a nonzero target
        self.in_step = False  # the train step ranks (set at train begin from the trainer)

    def on_train_begin(self, logs=None):
        self.in_step = bool(getattr(self.model, "ranks_in_step", False))

    def on_epoch_begin(self, epoch, logs=None):
        in_window = self.pruner.in_window(epoch + 1)
        self.pruner.method.on_epoch_begin(epoch + 1, in_window)
        self.reselecting = (
            self.pruner.reselect_frequency is not None and in_window and self.current_target > 0
        )

    def on_train_batch_begin(self, batch, logs=None):
        self.batch = batch

    def on_train_batch_end(self, batch, logs=None):
        self.step += 1
        if self.in_step:
            return  # the train step ranked already (`in_step_target`)
        target = self._due(self.step, batch)
        if target is not None:
            self.pruner.apply(target)

    def in_step_target(self) -> float | None:
        """From inside the train step, after its optimizer update: the target of the mask update
        due after this step, or None (the same decision `on_train_batch_end` makes otherwise)."""
        return self._due(self.step + 1, self.batch)

    def _due(self, step: int, batch: int) -> float | None:
        """The target of the mask update after optimizer step `step` (the epoch's batch `batch`),
        or None when no update is due."""
        schedule = self.pruner.step_schedule
        if schedule is not None and schedule.is_update_step(step):
            self.current_target = schedule.sparsity_at(step)
            return self.current_target
        if self.reselecting and batch % self.pruner.reselect_frequency == 0:
            return self.current_target
        return None

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
