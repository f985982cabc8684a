"""Sparsity schedules: pure functions and frozen objects, no training state.

Epoch schedules give the target of the mask update at the END of epoch e
(1-based), so the evaluation after epoch e sees sparsity_at(e). Step schedules
(movement) give the target after optimizer step t (1-based count of steps done).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def linear(t: float, t0: float, t1: float, s_i: float, s_f: float) -> float:
    """s_i at t0 rising linearly to s_f at t1, clamped outside [t0, t1]."""
    if t1 <= t0:
        return s_f if t >= t0 else s_i
    frac = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
    return s_i + (s_f - s_i) * frac


def cubic(t: float, t0: float, t1: float, s_i: float, s_f: float) -> float:
    """Zhu & Gupta (2017), "To prune, or not to prune":

    s(t) = s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0))^3, clamped outside [t0, t1].
    """
    if t1 <= t0:
        return s_f if t >= t0 else s_i
    frac = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
    return s_f + (s_i - s_f) * (1.0 - frac) ** 3


def geometric(t: float, t0: float, t1: float, s_i: float, s_f: float) -> float:
    """Every equal stretch of [t0, t1] removes the same share of the weights still in place, as
    iterative magnitude pruning does per round (Frankle & Carbin 2019):

    1 - s(t) = (1 - s_i) * ((1 - s_f) / (1 - s_i)) ** ((t - t0) / (t1 - t0)), clamped outside [t0, t1].

    Four updates to 0.9 each remove 44% of what remains (sparsity 0.438, 0.684, 0.822, 0.9); to
    0.99, 68% (0.684, 0.9, 0.968, 0.99). With s_f = 1 every weight goes at the first update.
    """
    if t1 <= t0:
        return s_f if t >= t0 else s_i
    frac = min(max((t - t0) / (t1 - t0), 0.0), 1.0)
    if frac <= 0.0:
        return s_i
    if frac >= 1.0:
        return s_f
    return 1.0 - (1.0 - s_i) * ((1.0 - s_f) / (1.0 - s_i)) ** frac


CURVES = {"linear": linear, "cubic": cubic, "geometric": geometric}
EPOCH_SCHEDULE_KINDS = (*CURVES, "steps")


def _check_kind(kind: str, valid) -> None:
    if kind not in valid:
        raise ValueError(f"unknown schedule kind {kind!r}; choose one of: {', '.join(valid)}")


def step_path(steps_percent: tuple[float, ...], end_sparsity: float) -> list[float]:
    """The step list as fractions, ending exactly at end_sparsity.

    Values at or above end_sparsity are dropped and end_sparsity is appended:
    the list is the path to the final target, never past it.
    """
    path = [v / 100.0 for v in steps_percent if v / 100.0 < end_sparsity]
    return path + [end_sparsity]


def resample(path: list[float], n: int) -> list[float]:
    """Stretch or squeeze a path of P values onto n epochs.

    Rule: epoch i (0-based, of n) takes the path linearly interpolated at
    position i * (P - 1) / (n - 1), so the first value lands on the first epoch
    and the last on the last. With n == P the path is unchanged; with n == 1 the
    single epoch takes the last value.
    """
    if n < 1:
        raise ValueError(f"resample needs n >= 1, got {n}")
    if n == 1:
        return [path[-1]]
    if len(path) == n:
        return list(path)
    positions = np.linspace(0.0, len(path) - 1, n)
    return [float(v) for v in np.interp(positions, np.arange(len(path)), path)]


@dataclass(frozen=True)
class EpochSchedule:
    """Targets for updates at the end of epochs start_epoch..end_epoch (inclusive)."""

    kind: str  # linear | cubic | geometric | steps
    start_epoch: int
    end_epoch: int
    start_sparsity: float
    end_sparsity: float
    steps_percent: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        _check_kind(self.kind, EPOCH_SCHEDULE_KINDS)

    def is_update_step(self, epoch: int) -> bool:
        return self.start_epoch <= epoch <= self.end_epoch

    def sparsity_at(self, epoch: int) -> float:
        if epoch < self.start_epoch:
            return 0.0
        if self.kind == "steps":
            targets = resample(
                step_path(self.steps_percent, self.end_sparsity),
                self.end_epoch - self.start_epoch + 1,
            )
            return targets[min(epoch, self.end_epoch) - self.start_epoch]
        return CURVES[self.kind](
            epoch, self.start_epoch, self.end_epoch, self.start_sparsity, self.end_sparsity
        )


def path_at(path: list[float], fraction: float) -> float:
    """The path read at `fraction` (0..1) of the window, linearly between its values."""
    if len(path) == 1:
        return path[0]
    return float(np.interp(fraction * (len(path) - 1), np.arange(len(path)), path))


@dataclass(frozen=True)
class StepSchedule:
    """By-step schedules: an update every `frequency` steps inside the window.

    The window runs from begin_step (exclusive: the steps done before the first
    epoch of pruning) to end_step (the last step of the last pruning epoch);
    the final step of the window always updates, so end_sparsity is reached.
    """

    kind: str  # linear | cubic | geometric | steps
    begin_step: int
    end_step: int
    frequency: int
    start_sparsity: float
    end_sparsity: float
    steps_percent: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        _check_kind(self.kind, EPOCH_SCHEDULE_KINDS)
        if self.frequency < 1:
            raise ValueError(f"frequency must be a positive number of steps, got {self.frequency}")

    def is_update_step(self, step: int) -> bool:
        if not (self.begin_step < step <= self.end_step):
            return False
        return (step - self.begin_step) % self.frequency == 0 or step == self.end_step

    def sparsity_at(self, step: int) -> float:
        if step <= self.begin_step:
            return 0.0
        if self.kind == "steps":
            span = max(self.end_step - self.begin_step, 1)
            fraction = min((step - self.begin_step) / span, 1.0)
            return path_at(step_path(self.steps_percent, self.end_sparsity), fraction)
        return CURVES[self.kind](step, self.begin_step, self.end_step, self.start_sparsity, self.end_sparsity)
