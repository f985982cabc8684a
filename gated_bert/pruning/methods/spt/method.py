"""`Spt`: the SPT pruning method (the explorer's estimates ranked by the Pruner)."""

from __future__ import annotations

import numpy as np

from gated_bert.pruning.masks import split_like
from gated_bert.pruning.methods.base import PruningMethod
from gated_bert.pruning.methods.spt.explorer import SptExplorer
from gated_bert.pruning.methods.spt.ranking import obd_prior, rank_importance, sort_keys, spt_estimate
from gated_bert.pruning.transfer import VariableReader


class Spt(PruningMethod):
    name = "spt"
    default_scope = "global"
    compiles_with_xla = False  # the probe draws a varying number of weights (tf.unique) and gathers by index

    def __init__(self, config, kernels):
        super().__init__(config, kernels)
        self.explorer = SptExplorer(
            kernels,
            epsilon=config.effective_spt_epsilon,
            alpha=config.spt_reward_alpha,
            per_layer=config.spt_explore_per_layer,
            seed=config.seed + 1,
            granularity=config.pruning_granularity,
            num_heads=config.architecture().num_heads,
            credit=config.spt_credit,
            # OBD: the loss rises by H w^2 / 2; a batch's g^2 is about the per-example Fisher / batch
            curvature_prior=config.batch_size / 2,
        )
        self.min_probes = config.spt_min_probes
        layers = [kernel.layer for kernel in kernels]  # what the estimates need, in one call
        self._read = VariableReader(
            [layer.mask for layer in layers]
            + [layer.kernel for layer in layers]
            + list(self.explorer.reward_ema)
            + list(self.explorer.visits)
            + list(self.explorer.fisher)
        )

    @classmethod
    def default_schedule(cls, config) -> str:
        return "steps"

    def estimates(self, index: int) -> np.ndarray:
        """Estimated loss increase of removing each weight of kernel `index` (credit EMA once
        trusted, else the prior); pruned weights get -inf, so they stay pruned. One kernel, read
        on its own; a ranking reads every kernel at once (`_estimates_of_all`)."""
        mask = self.kernels[index].layer.mask.numpy()
        ema, visits = self.explorer.state(index)
        return spt_estimate(mask, ema, visits, self.explorer.prior(index), self.min_probes)

    def importances(self, scope: str) -> list[np.ndarray]:
        if self.explorer.credit != "shared":  # one key, the estimate: fast enough for by-step updates
            return self._estimates_of_all()
        keys = [
            sort_keys(k.layer.kernel.numpy(), k.layer.mask.numpy(), *self.explorer.state(i))
            for i, k in enumerate(self.kernels)
        ]
        if scope == "global":
            joined = tuple(np.concatenate([key[j] for key in keys]) for j in range(3))
            return split_like(rank_importance(joined), [k.layer.mask for k in self.kernels])
        return [rank_importance(key).reshape(k.layer.mask.shape) for key, k in zip(keys, self.kernels)]

    def _estimates_of_all(self) -> list[np.ndarray]:
        """`estimates` of every kernel from one read of the variables (60 reads one by one on tiny)."""
        n, rho = len(self.kernels), self.explorer.rho()
        values = self._read()
        masks, kernels, emas, visits, fisher = (values[i * n : (i + 1) * n] for i in range(5))
        out = []
        for i, kernel in enumerate(self.kernels):
            role_rho = float(rho[self.explorer.roles.index(kernel.role)])
            prior = obd_prior(role_rho, kernels[i], masks[i], fisher[i])
            out.append(spt_estimate(masks[i], emas[i], visits[i], prior, self.min_probes))
        return out

    def train_step_hook(self, repeat_loss, training_loss, kernel_gradients=None) -> None:
        # L_full is the training pass's loss; L_probe repeats that pass (same dropout draws) with E
        # masked: a paired difference, one extra forward pass whatever the dropout
        self.explorer.probe(repeat_loss, training_loss, kernel_gradients)

    def on_epoch_begin(self, epoch: int, in_window: bool) -> None:
        self.explorer.exploring.assign(in_window)

    def on_train_end(self) -> None:
        self.explorer.exploring.assign(False)

    def state(self) -> dict:
        explorer = self.explorer
        return {
            "reward_ema": list(explorer.reward_ema),
            "visits": list(explorer.visits),
            "probe_count": explorer.probe_count,
            "fisher": list(explorer.fisher),
            "reward_mean": explorer.reward_mean,
            "role_reward": explorer.role_reward,
            "saliency_mean": explorer.saliency_mean,
            "rho_seen": explorer.rho_seen,
            "seed_generator": explorer.seed_generator.state,
        }
