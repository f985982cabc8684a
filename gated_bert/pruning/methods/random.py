"""Random pruning: the control every ranking method has to beat.

Active weights get uniform random importances from the method's own seeded
generator (seed + 2), so the weights removed at each update are a random
subset of those still active; pruned weights stay pruned and are zeroed.
Default schedule linear (by step, like magnitude), scope per layer.
"""

from __future__ import annotations

import numpy as np

from gated_bert.pruning.methods.base import PRUNED, PruningMethod


def random_importance(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform [0, 1) importances for active weights, `PRUNED` for pruned ones."""
    return np.where(mask > 0, rng.random(np.shape(mask)), PRUNED)


class RandomControl(PruningMethod):
    name = "random"

    def __init__(self, config, kernels):
        super().__init__(config, kernels)
        self.rng = np.random.default_rng(config.seed + 2)

    def score(self, kernel) -> np.ndarray:
        return random_importance(kernel.layer.mask.numpy(), self.rng)

    def state(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state(self, plain: dict) -> None:
        self.rng.bit_generator.state = plain["rng"]
