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

    The decision of when an update is due belongs to the Pruner's `ScheduleCursor`; when
    the trainer ranks inside its train step (movement's default), the step asks the same
    cursor and writes the masks, and this callback only advances it.
    """

    def __init__(self, pruner: Pruner):
        super().__init__()
        self.pruner = pruner
        self.cursor = pruner.cursor

    def on_epoch_begin(self, epoch, logs=None):
        in_window = self.pruner.in_window(epoch + 1)
        self.pruner.method.on_epoch_begin(epoch + 1, in_window)
        self.cursor.begin_epoch(in_window)

    def on_train_batch_begin(self, batch, logs=None):
        self.cursor.begin_batch(batch)

    def on_train_batch_end(self, batch, logs=None):
        target = None if self.cursor.ranked_in_step else self.cursor.due_after_step()
        self.cursor.advance()
        if target is not None:
            self.pruner.apply(target)

    def on_epoch_end(self, epoch, logs=None):
        target = self.cursor.due_at_epoch_end(epoch + 1)
        if target is not None:
            self.pruner.apply(target)
        if logs is not None:
            logs[names.TARGET_SPARSITY] = self.cursor.current_target
            for kind, share in self.pruner.group_sparsity().items():
                logs[f"{names.GROUP_SPARSITY}/{kind}"] = share

    def on_train_end(self, logs=None):
        self.pruner.method.on_train_end()
        self.pruner.zero_pruned_kernels()

    def state(self) -> dict:
        """The schedule's position, for a checkpoint (`TrainingState`'s pruning fields)."""
        return self.cursor.state()

    def load_state(self, pruning_step: int, current_target: float, method_state: dict) -> None:
        """Continue from a checkpoint: the schedule's position and the method's plain state."""
        self.cursor.load_state(pruning_step, current_target)
        self.pruner.method.load_state(method_state)
