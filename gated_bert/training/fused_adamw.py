"""AdamW whose per-variable step is TensorFlow's fused Adam kernel.

Keras 3's AdamW builds each variable's update from about ten small ops (two
moment updates, a square root, a division, ...), each a separate kernel with
its own dispatch and its own pass over memory. On a 2-core CPU a tiny model's
step spends about a seventh of its op time there. TensorFlow's
`ResourceApplyAdam` does the same update in one kernel per variable.

The arithmetic is Keras' Adam (`keras.optimizers.Adam.update_step`):

    m <- m + (g - m) * (1 - beta_1)
    v <- v + (g^2 - v) * (1 - beta_2)
    w <- w - lr * sqrt(1 - beta_2^t) / (1 - beta_1^t) * m / (sqrt(v) + epsilon)

with t the step count plus one, and the decoupled weight decay
w <- w - w * weight_decay * lr applied before it, by Keras, unchanged. The
fused kernel computes the same formulas in another order of floating-point
operations, so results match Keras' AdamW to float32 rounding, not bit for
bit (`tests/test_training.py` compares them). Optimizer variables, their
names and order are Keras' own, so checkpoints written by either resume with
the other.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def _handle(variable):
    return (variable.value if isinstance(variable, keras.Variable) else variable).handle


class _FusedAdamStep:
    """The fused per-variable step, for Keras' Adam and AdamW (amsgrad not supported)."""

    def _check_fused(self):
        if self.amsgrad:
            raise ValueError(f"{type(self).__name__} has no amsgrad; use Keras' optimizer with amsgrad=True")

    def update_step(self, gradient, variable, learning_rate):
        dtype = variable.dtype
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1 = tf.cast(self.beta_1, dtype)
        beta_2 = tf.cast(self.beta_2, dtype)
        index = self._get_variable_index(variable)
        tf.raw_ops.ResourceApplyAdam(
            var=_handle(variable),
            m=_handle(self._momentums[index]),
            v=_handle(self._velocities[index]),
            beta1_power=tf.pow(beta_1, local_step),
            beta2_power=tf.pow(beta_2, local_step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(gradient, dtype),
            use_locking=False,
        )


@keras.saving.register_keras_serializable(package="gated_bert")
class FusedAdamW(_FusedAdamStep, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with TensorFlow's fused Adam kernel for each variable's step."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._check_fused()


@keras.saving.register_keras_serializable(package="gated_bert")
class FusedAdam(_FusedAdamStep, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with TensorFlow's fused Adam kernel (movement's scores)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._check_fused()
