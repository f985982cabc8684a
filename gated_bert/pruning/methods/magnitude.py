"""Magnitude pruning: keep the largest |w| (Han et al. 2015; Zhu & Gupta 2017).

Already pruned weights score `PRUNED`, so they stay pruned; pruned weights are
zeroed in the kernel. Default schedule linear (by step, `pruning_updates`), scope per layer.
"""

from __future__ import annotations

import numpy as np

from gated_bert.pruning.methods.base import PRUNED, PruningMethod
from gated_bert.pruning.transfer import VariableReader


def magnitude_importance(kernel: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """|w| for active weights; pruned weights stay pruned."""
    return np.where(mask > 0, np.abs(kernel), PRUNED)


class Magnitude(PruningMethod):
    name = "magnitude"
    group_reduce = "l2"  # a head's or neuron's weights' L2 norm

    def __init__(self, config, kernels):
        super().__init__(config, kernels)
        layers = [kernel.layer for kernel in kernels]  # kernels and masks, read in one call
        self._read = VariableReader([layer.kernel for layer in layers] + [layer.mask for layer in layers])

    def score(self, kernel) -> np.ndarray:
        return magnitude_importance(kernel.layer.kernel.numpy(), kernel.layer.mask.numpy())

    def importances(self, scope: str) -> list[np.ndarray]:
        values = self._read()
        return [magnitude_importance(w, m) for w, m in zip(values, values[len(self.kernels) :])]
