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

`movement_remove_directions` N > 0 ranks `without_top_directions(S, W, N)`
instead of S: the signed scores S * sign(W) (which way each weight has been
pushed) with their top N singular directions taken out. On a two-class head
the gradient of every kernel is close to rank one, so the top of S keeps the
weights whose signs agree with one rank-one pattern and the kept kernel maps
every token the same way (measured in docs/pruning.md).
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gated_bert.config import check_remove_directions
from gated_bert.pruning.methods.base import PruningMethod
from gated_bert.pruning.transfer import TensorReader


def movement_importance(scores: np.ndarray) -> np.ndarray:
    """Movement scores S; a pruned weight returns if S rises."""
    return np.asarray(scores)


def without_top_directions(scores, kernel, count: int) -> tf.Tensor:
    """S with the top `count` singular directions of T = S * sign(W) removed, signed back:
    (T - T_count) * sign(W), where T_count is T's best rank-`count` approximation.

    TensorFlow ops, so the train step computes it in the graph. T_count comes from a randomized
    range finder (Halko, Martinsson & Tropp 2011) with a fixed starting draw and three power
    iterations: deterministic, and a few thin products per kernel instead of a full SVD. A
    weight that is exactly 0 gets importance 0.
    """
    scores = tf.convert_to_tensor(scores)
    sign = tf.sign(tf.cast(tf.convert_to_tensor(kernel), scores.dtype))
    signed = scores * sign
    wide = signed.shape[0] <= signed.shape[1]
    matrix = signed if wide else tf.transpose(signed)  # the short side first: the basis has few rows
    probe = np.random.default_rng(0).standard_normal((matrix.shape[1], count + 4))
    basis, _ = tf.linalg.qr(matrix @ tf.constant(probe, matrix.dtype))
    for _ in range(3):
        basis, _ = tf.linalg.qr(matrix @ tf.matmul(matrix, basis, transpose_a=True))
    _, left, _ = tf.linalg.svd(tf.matmul(basis, matrix, transpose_a=True), full_matrices=False)
    top = basis @ left[:, :count]  # the top `count` left singular vectors
    rest = matrix - top @ tf.matmul(top, matrix, transpose_a=True)
    return (rest if wide else tf.transpose(rest)) * sign


class Movement(PruningMethod):
    name = "movement"
    ranks_in_graph = True  # the scores (or the cleaned scores), ranked inside the train step
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
        self._directions = config.movement_remove_directions
        check_remove_directions(self._directions, min(min(k.layer.kernel.shape) for k in kernels))
        # one call for every value: the scores, or the cleaned scores computed from scores and kernels
        self._read_scores = TensorReader(self.ranking_values)
        if config.movement_score_init == "magnitude":
            for kernel in kernels:
                kernel.layer.scores.assign(abs(kernel.layer.kernel.numpy()))

    @classmethod
    def default_schedule(cls, config) -> str:
        return config.movement_schedule

    def _ranked(self, kernel):
        """What one kernel is ranked by: its scores, or the cleaned scores (graph ops)."""
        scores = kernel.layer.scores
        if self._directions:
            return without_top_directions(scores, kernel.layer.kernel, self._directions)
        return tf.convert_to_tensor(scores)

    def score(self, kernel) -> np.ndarray:
        return movement_importance(np.asarray(self._ranked(kernel)))

    def importances(self, scope: str) -> list[np.ndarray]:
        return self.importances_of(self._read_scores())

    def ranking_values(self) -> list:
        """The scores, or with `movement_remove_directions` the cleaned scores, computed in the graph."""
        return [self._ranked(kernel) for kernel in self.kernels]

    def importances_of(self, values: list[np.ndarray]) -> list[np.ndarray]:
        return [movement_importance(value) for value in values]

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
