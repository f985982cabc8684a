"""`Pruner`: one pruning method applied to a model's gated kernels.

It joins the method's importances, a scope (per layer or global) and
`cut_mask`, writes the masks (`MaskWriter`, one call), and knows the schedule. It holds no training
loop: its `ScheduleCursor` says when an update is due, the `PruningCallback` advances the cursor
and calls `apply` (for a method that re-ranks after every step, the train step calls `flat_masks_of`).
"""

from __future__ import annotations

import numpy as np

from gated_bert.config import GatedBertConfig
from gated_bert.model import PrunableKernel, prunable_kernels
from gated_bert.pruning import groups
from gated_bert.pruning.cursor import ScheduleCursor
from gated_bert.pruning.masks import Cut, cut_mask, global_masks
from gated_bert.pruning.methods import PruningMethod, get_method, is_baseline
from gated_bert.pruning.resolve import resolve
from gated_bert.pruning.schedules import EpochSchedule, StepSchedule
from gated_bert.pruning.transfer import MaskWriter


class Pruner:
    """Scores, ranks and masks the prunable kernels of one model.

    Args:
        config: the run's configuration.
        model: the gated classifier (built with scores if the method needs them).
        steps_per_epoch: optimizer steps per epoch (for step schedules).
    """

    def __init__(self, config: GatedBertConfig, model, steps_per_epoch: int):
        if is_baseline(config.pruning_method):
            raise ValueError("Pruner needs a pruning method; the baseline has none")
        config = resolve(config)  # the run's config is resolved already: then this changes nothing
        self.config = config
        self.scope = config.pruning_scope
        self.granularity = config.pruning_granularity
        self.num_heads = config.architecture().num_heads
        self.kernels: list[PrunableKernel] = prunable_kernels(model)
        self.method: PruningMethod = get_method(config.pruning_method)(config, self.kernels)
        self.writer = MaskWriter(self.kernels, zero_pruned=self.method.zeroes_pruned)
        # where the previous ranking cut (per kernel, or one for the global scope): a hint that
        # brackets the next threshold, so a re-ranking after every step skips the sample
        self.cuts: list[Cut | None] = [None] * (1 if self.scope == "global" else len(self.kernels))
        self.step_schedule: StepSchedule | None = None
        self.epoch_schedule: EpochSchedule | None = None
        # epoch updates: steps between re-selections at the held target (None: the mask is held)
        self.reselect_frequency: int | None = None
        kind = config.sparsity_schedule
        if config.pruning_updates == "step":
            self.step_schedule = StepSchedule(
                kind=kind,
                begin_step=(config.pruning_start_epoch - 1) * steps_per_epoch,
                end_step=config.pruning_end_epoch * steps_per_epoch,
                frequency=config.movement_pruning_frequency_steps,
                start_sparsity=config.start_sparsity,
                end_sparsity=config.end_sparsity,
                steps_percent=config.sparsity_steps,
            )
        else:
            if self.method.reselects:
                self.reselect_frequency = config.movement_pruning_frequency_steps
            self.epoch_schedule = EpochSchedule(
                kind=kind,
                start_epoch=config.pruning_start_epoch,
                end_epoch=config.pruning_end_epoch,
                start_sparsity=config.start_sparsity,
                end_sparsity=config.end_sparsity,
                steps_percent=config.sparsity_steps,
            )
        self.cursor = ScheduleCursor(self.step_schedule, self.epoch_schedule, self.reselect_frequency)

    def in_window(self, epoch: int) -> bool:
        return self.config.pruning_start_epoch <= epoch <= self.config.pruning_end_epoch

    @property
    def ranks_every_step(self) -> bool:
        """The method ranks in the graph (`ranks_in_graph`) and re-ranks after every optimizer
        step (movement's default), so the trainer can rank inside the train step."""
        return self.method.ranks_in_graph and self.config.movement_pruning_frequency_steps == 1

    def apply(self, target_sparsity: float) -> None:
        """Set every mask so that `target_sparsity` of the prunable weights are 0 (of the groups
        of each kind, with a structured granularity)."""
        self.writer.write(self.masks(self.method.importances(self.scope), target_sparsity))

    def flat_masks_of(self, values: list[np.ndarray], target_sparsity: float) -> np.ndarray:
        """`apply`'s masks from the values of the method's `ranking_values`, as one flat
        boolean array (what `MaskWriter.assign` takes), for the ranking inside the train step."""
        masks = self.masks(self.method.importances_of(values), target_sparsity)
        return np.concatenate([mask.reshape(-1) for mask in masks]).astype(bool, copy=False)

    def masks(self, importances: list[np.ndarray], target_sparsity: float) -> list[np.ndarray]:
        """The masks (one per kernel) that keep the most important weights at `target_sparsity`."""
        if self.granularity != "weight":
            return groups.structured_masks(
                self.kernels,
                importances,
                target_sparsity,
                self.granularity,
                self.scope,
                self.num_heads,
                self.method.group_reduce,
            )
        if self.scope == "global":
            masks, self.cuts[0] = global_masks(importances, target_sparsity, near=self.cuts[0])
            return masks
        masks = []
        for index, importance in enumerate(importances):
            mask, self.cuts[index] = cut_mask(importance, target_sparsity, near=self.cuts[index])
            masks.append(mask)
        return masks

    def group_sparsity(self) -> dict[str, float]:
        """Share of whole heads / neurons removed (empty with the weight granularity)."""
        return groups.group_sparsity(self.kernels, self.granularity, self.num_heads)

    def zero_pruned_kernels(self) -> None:
        """Write exact zeros into pruned kernel entries (methods whose pruned weights stay pruned)."""
        self.writer.zero_pruned_kernels()
