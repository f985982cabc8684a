"""Lazy AdamW for an embedding table: only the rows a batch touches are updated.

Dense AdamW updates every row of the token embedding at every step (a tiny
model's 30,522 x 256 table is 87% of its parameters), although a batch of 96
SST-2 sentences touches about a thousand rows. This update does the same
arithmetic as Keras' AdamW (same formulas, same order of operations, the main
optimizer's step count, learning rate, betas, epsilon and weight decay), but
only on the touched rows.

Semantics (as TensorFlow Addons' LazyAdam, with decoupled weight decay): a row
that a batch does not touch is left exactly as it is: its moments do not
decay, its momentum does not move it, and weight decay does not shrink it. A
row touched at every step follows dense AdamW exactly. A row touched at step
t after a gap keeps the moments of its last update instead of decayed ones.
"""

from __future__ import annotations

import keras
import tensorflow as tf


class LazyAdamW:
    """The sparse AdamW step of one embedding variable, driven by a Keras AdamW.

    Args:
        optimizer: the run's `keras.optimizers.AdamW` (hyperparameters, step count).
        variable: the embedding table (rows x width).
    """

    def __init__(self, optimizer, variable):
        self.optimizer = optimizer
        self.variable = (
            variable.value if isinstance(variable, keras.Variable) else variable
        )  # the tf.Variable
        shape, dtype = self.variable.shape, self.variable.dtype
        self.m = tf.Variable(tf.zeros(shape, dtype), trainable=False, name="lazy_adamw_m")
        self.v = tf.Variable(tf.zeros(shape, dtype), trainable=False, name="lazy_adamw_v")

    def apply(self, gradient: tf.IndexedSlices) -> None:
        """Update the touched rows; call before the main optimizer's `apply` of the same step."""
        opt = self.optimizer
        dtype = self.variable.dtype
        rows, position = tf.unique(gradient.indices)
        grad = tf.math.unsorted_segment_sum(tf.cast(gradient.values, dtype), position, tf.shape(rows)[0])
        lr = tf.cast(opt.learning_rate, dtype)
        step = tf.cast(opt.iterations + 1, dtype)
        beta_1_power = tf.pow(tf.cast(opt.beta_1, dtype), step)
        beta_2_power = tf.pow(tf.cast(opt.beta_2, dtype), step)
        alpha = lr * tf.sqrt(1 - beta_2_power) / (1 - beta_1_power)
        value = tf.gather(self.variable, rows)
        if opt.weight_decay:
            value = value - value * tf.cast(opt.weight_decay, dtype) * lr
        m = tf.gather(self.m, rows)
        v = tf.gather(self.v, rows)
        m = m + (grad - m) * (1 - opt.beta_1)
        v = v + (tf.square(grad) - v) * (1 - opt.beta_2)
        value = value - (m * alpha) / (tf.sqrt(v) + opt.epsilon)
        self.m.scatter_update(tf.IndexedSlices(m, rows))
        self.v.scatter_update(tf.IndexedSlices(v, rows))
        self.variable.scatter_update(tf.IndexedSlices(value, rows))

    @property
    def variables(self) -> list:
        """The moments (what a checkpoint must hold besides the main optimizer's state)."""
        return [self.m, self.v]
