"""Movement pruning (Sanh, Wolf & Rush 2020, "Movement Pruning", hard variant).

Every gated kernel carries trainable scores S (the model is built with
`with_scores=True`), trained by their own Adam optimizer at
`movement_scores_learning_rate`; the forward pass uses the latest 0/1 mask
through the straight-through estimator, so dL/dS = W * dL/dW'. Importance is S
itself: a pruned weight comes back if its score rises. Pruned weights are not
zeroed (they may return). Defaults follow the published recipe: the top-k
recomputed from S after every optimizer step (`movement_pruning_frequency_steps`
1), the cubic curve by step (`movement_schedule`), scores starting at 0
(`movement_score_init`), trained by Adam (`movement_scores_optimizer`; sgd keeps S the sum of
-W * dL/dW the paper defines), dense before the window and the final mask held after
it; scope per layer. With `pruning_updates=epoch` the sparsity changes only at
epoch ends, as for every method, while the top-k is still recomputed every
step at the latest target (`reselects`). How this differs from the paper's setting:
docs/pruning.md.
"""

from __future__ import annotations

import keras
import numpy as np

from gated_bert.pruning.methods.base import PruningMethod
from gated_bert.pruning.transfer import VariableReader


def movement_importance(scores: np.ndarray) -> np.ndarray:
    """Movement scores S; a pruned weight returns if S rises."""
    return np.asarray(scores)


class Movement(PruningMethod):
    name = "movement"
    needs_scores = True
    default_frequency = 1  # the published recipe: the top-k before every forward pass
    zeroes_pruned = False
    reselects = True  # with epoch updates: the sparsity steps at epoch ends, the top-k every step

    def __init__(self, config, kernels):
        super().__init__(config, kernels)
        missing = [k.name for k in kernels if k.layer.scores is None]
        if missing:
            raise ValueError(
                f"movement pruning needs a model built with with_scores=True; {missing[0]} has no scores"
            )
        self._optimizer = None
        self._read_scores = VariableReader(self.extra_variables())  # every kernel's scores in one call
        if config.movement_score_init == "magnitude":
            for kernel in kernels:
                kernel.layer.scores.assign(abs(kernel.layer.kernel.numpy()))

    @classmethod
    def default_schedule(cls, config) -> str:
        return config.movement_schedule

    def score(self, kernel) -> np.ndarray:
        return movement_importance(kernel.layer.scores.numpy())

    def importances(self, scope: str) -> list[np.ndarray]:
        return self.importances_of(self._read_scores())

    def ranking_variables(self) -> list:
        return self.extra_variables()  # the scores: ranked inside the train step, after every step

    def importances_of(self, values: list[np.ndarray]) -> list[np.ndarray]:
        return [movement_importance(scores) for scores in values]

    def extra_variables(self) -> list:
        return [kernel.layer.scores for kernel in self.kernels]

    def extra_optimizer(self, make_adam):
        if self._optimizer is None:
            rate = self.config.movement_scores_learning_rate
            if self.config.movement_scores_optimizer == "sgd":
                self._optimizer = keras.optimizers.SGD(rate)
            else:
                self._optimizer = make_adam(rate)
            self._optimizer.build(self.extra_variables())
        return self._optimizer

    def state(self) -> dict:
        return {} if self._optimizer is None else {"scores_optimizer": list(self._optimizer.variables)}
