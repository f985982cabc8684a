"""`ScheduleCursor`: where a run stands in its pruning schedule, and whether a mask update is due.

The one owner of the per-step decision. The `PruningCallback` advances it after every
optimizer step and asks it at every epoch's end; when the trainer ranks inside its train
step (a method that re-ranks after every step), the step asks the same cursor, so both
paths follow one schedule. A checkpoint stores `state()`.
"""

from __future__ import annotations

from gated_bert.pruning.schedules import EpochSchedule, StepSchedule


class ScheduleCursor:
    """The optimizer step, the epoch's batch and the latest mask update's target.

    Args:
        step_schedule: the by-step schedule, or None (updates at epoch ends).
        epoch_schedule: the by-epoch schedule, or None (updates by step).
        reselect_frequency: with epoch updates, steps between re-selections of the top-k at
            the latest target inside the window (None: the mask is held between updates).
    """

    def __init__(
        self,
        step_schedule: StepSchedule | None,
        epoch_schedule: EpochSchedule | None,
        reselect_frequency: int | None = None,
    ):
        self.step_schedule = step_schedule
        self.epoch_schedule = epoch_schedule
        self.reselect_frequency = reselect_frequency
        self.step = 0  # optimizer steps done
        self.batch = 0  # the current epoch's batch in training
        self.current_target = 0.0  # target of the latest mask update
        self.reselecting = False  # inside the window, after an update with a nonzero target
        self.ranked_in_step = False  # the trainer's step ranks and writes the masks itself

    def begin_epoch(self, in_window: bool) -> None:
        self.reselecting = self.reselect_frequency is not None and in_window and self.current_target > 0

    def begin_batch(self, batch: int) -> None:
        self.batch = batch

    def due_after_step(self) -> float | None:
        """The target of the mask update due after the current optimizer step, or None.
        Asked once per step, before `advance`, by whichever path ranks."""
        step = self.step + 1
        if self.step_schedule is not None and self.step_schedule.is_update_step(step):
            self.current_target = self.step_schedule.sparsity_at(step)
            return self.current_target
        if self.reselecting and self.batch % self.reselect_frequency == 0:
            return self.current_target
        return None

    def advance(self) -> None:
        """One optimizer step done."""
        self.step += 1

    def due_at_epoch_end(self, epoch: int) -> float | None:
        """The target of the update at the end of (1-based) `epoch`, or None."""
        if self.epoch_schedule is not None and self.epoch_schedule.is_update_step(epoch):
            self.current_target = self.epoch_schedule.sparsity_at(epoch)
            return self.current_target
        return None

    def state(self) -> dict[str, float]:
        return {"pruning_step": self.step, "current_target": self.current_target}

    def load_state(self, pruning_step: int, current_target: float) -> None:
        self.step = int(pruning_step)
        self.current_target = float(current_target)
