"""`Pruner`: one pruning method applied to a model's gated kernels.

It joins a scoring rule, a scope (per layer or global) and `mask_for`, writes
the masks, and knows the method's schedule. It holds no training loop: the
`PruningCallback` decides when to call it.
"""

from __future__ import annotations

import numpy as np

from gated_bert.config import GatedBertConfig
from gated_bert.model import PrunableKernel, prunable_kernels
from gated_bert.pruning import scoring
from gated_bert.pruning.masks import global_masks, mask_for, split_like
from gated_bert.pruning.schedules import EpochSchedule, StepSchedule
from gated_bert.pruning.spt import SptExplorer

# Methods whose pruned weights are zeroed in the kernel and stay pruned.
ZEROING_METHODS = ("magnitude", "spt")


class Pruner:
    """Scores, ranks and masks the prunable kernels of one model.

    Args:
        config: the run's configuration.
        model: the gated classifier (built with scores for movement).
        steps_per_epoch: optimizer steps per epoch (movement's step window).
    """

    def __init__(self, config: GatedBertConfig, model, steps_per_epoch: int):
        if config.pruning_method == "none":
            raise ValueError("Pruner needs a pruning method; the baseline has none")
        self.method = config.pruning_method
        self.scope = config.effective_scope
        self.kernels: list[PrunableKernel] = prunable_kernels(model)
        if self.method == "movement" and any(k.layer.scores is None for k in self.kernels):
            raise ValueError("movement pruning needs a model built with with_scores=True")
        self.steps_per_epoch = steps_per_epoch
        kind = config.effective_schedule
        if self.method == "movement" and kind != "steps":
            self.step_schedule: StepSchedule | None = StepSchedule(
                kind=kind,
                begin_step=(config.pruning_start_epoch - 1) * steps_per_epoch,
                end_step=config.pruning_end_epoch * steps_per_epoch,
                frequency=config.effective_movement_frequency,
                start_sparsity=config.start_sparsity,
                end_sparsity=config.end_sparsity,
            )
            self.epoch_schedule: EpochSchedule | None = None
        else:
            self.step_schedule = None
            self.epoch_schedule = EpochSchedule(
                kind=kind,
                start_epoch=config.pruning_start_epoch,
                end_epoch=config.pruning_end_epoch,
                start_sparsity=config.start_sparsity,
                end_sparsity=config.end_sparsity,
                steps_percent=config.effective_sparsity_steps,
            )
        self.explorer = (
            SptExplorer(
                self.kernels,
                epsilon=config.effective_spt_epsilon,
                alpha=config.spt_reward_alpha,
                per_layer=config.spt_explore_per_layer,
                seed=config.seed + 1,
            )
            if self.method == "spt"
            else None
        )
        self.config = config

    def in_window(self, epoch: int) -> bool:
        return self.config.pruning_start_epoch <= epoch <= self.config.pruning_end_epoch

    def importances(self) -> list[np.ndarray]:
        if self.method == "magnitude":
            return [scoring.magnitude(k.layer.kernel.numpy(), k.layer.mask.numpy()) for k in self.kernels]
        if self.method == "movement":
            return [scoring.movement(k.layer.scores.numpy()) for k in self.kernels]
        keys = [
            scoring.spt_sort_keys(k.layer.kernel.numpy(), k.layer.mask.numpy(), *self.explorer.state(i))
            for i, k in enumerate(self.kernels)
        ]
        if self.scope == "global":
            joined = tuple(np.concatenate([key[j] for key in keys]) for j in range(3))
            return split_like(scoring.spt_importance(joined), [k.layer.mask for k in self.kernels])
        return [scoring.spt_importance(key).reshape(k.layer.mask.shape) for key, k in zip(keys, self.kernels)]

    def apply(self, target_sparsity: float) -> None:
        """Set every mask so that `target_sparsity` of the prunable weights are 0."""
        importances = self.importances()
        if self.scope == "global":
            masks = global_masks(importances, target_sparsity)
        else:
            masks = [mask_for(imp, target_sparsity) for imp in importances]
        for kernel, mask in zip(self.kernels, masks):
            kernel.layer.mask.assign(mask)
        self.zero_pruned_kernels()

    def zero_pruned_kernels(self) -> None:
        """Write exact zeros into pruned kernel entries (before saving a model)."""
        if self.method in ZEROING_METHODS:
            for kernel in self.kernels:
                kernel.layer.kernel.assign(kernel.layer.kernel.numpy() * kernel.layer.mask.numpy())
