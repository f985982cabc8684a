"""Keras' Adam and AdamW with each variable's update as one fused TensorFlow kernel.

Keras' Adam updates a variable with about ten TensorFlow ops (two moment
updates, a square root, a division, ... each a pass over the variable and a
dispatch of its own), and a train step updates some forty variables: on a
2-core CPU the optimizer was about a sixth of tiny's step. TensorFlow's
`ResourceApplyAdam` kernel does the same arithmetic in one op per variable,
with Keras' formulas and order of operations:

    m += (g - m) * (1 - beta_1)
    v += (g^2 - v) * (1 - beta_2)
    var -= m * alpha / (sqrt(v) + epsilon),  alpha = lr * sqrt(1 - beta_2^t) / (1 - beta_1^t)

so the results equal Keras' up to float32 rounding (tests/test_training.py).
The moments are Keras' own slot variables (checkpoints and `LazyAdamW` read
them as before); AdamW's decoupled weight decay stays Keras' (applied to the
variables before their update). With amsgrad, or a variable that is not a
TensorFlow variable, Keras' ops run.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class _FusedUpdate:
    """`update_step` of Keras' Adam as TensorFlow's ResourceApplyAdam."""

    def update_step(self, gradient, variable, learning_rate):
        if self.amsgrad or not isinstance(variable, tf.Variable):
            return super().update_step(gradient, variable, learning_rate)
        dtype = variable.dtype
        index = self._get_variable_index(variable)
        step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        tf.raw_ops.ResourceApplyAdam(
            var=variable.handle,
            m=self._momentums[index].value.handle,
            v=self._velocities[index].value.handle,
            beta1_power=tf.pow(beta_1, step),
            beta2_power=tf.pow(beta_2, step),
            lr=tf.cast(learning_rate, dtype),
            beta1=beta_1,
            beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype),
            grad=tf.cast(tf.convert_to_tensor(gradient), dtype),  # an IndexedSlices becomes dense
            use_locking=False,
        )


class FusedAdam(_FusedUpdate, keras.optimizers.Adam):
    """`keras.optimizers.Adam` with one fused kernel per variable update."""


class FusedAdamW(_FusedUpdate, keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` with one fused kernel per variable update."""
