"""`LayerNorm`: Keras' LayerNormalization over the last axis with a hand-written gradient.

Same parameters, weights (gamma, beta), epsilon and outputs as
`keras.layers.LayerNormalization(axis=-1)` (to float32 rounding): y = xhat *
gamma + beta, xhat = (x - mean) / sqrt(var + epsilon), var the biased variance
of the last axis. Autodiff through Keras' moments builds about fifteen
TensorFlow ops for the backward pass; the closed form

    dL/dx = (g - mean(g) - xhat * mean(g * xhat)) / sqrt(var + epsilon),  g = dL/dxhat

is five (docs/training.md).
"""

from __future__ import annotations

import keras
import tensorflow as tf


@tf.custom_gradient
def normalize(x, epsilon: float):
    """(x - mean) / sqrt(var + epsilon) over the last axis; the closed-form gradient."""
    centered = x - tf.reduce_mean(x, axis=-1, keepdims=True)
    inverse = tf.math.rsqrt(tf.reduce_mean(tf.square(centered), axis=-1, keepdims=True) + epsilon)
    normalized = centered * inverse

    def gradient(upstream):
        mean_upstream = tf.reduce_mean(upstream, axis=-1, keepdims=True)
        projection = tf.reduce_mean(upstream * normalized, axis=-1, keepdims=True)
        return inverse * (upstream - mean_upstream - normalized * projection), None

    return normalized, gradient


@keras.saving.register_keras_serializable(package="gated_bert")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` over the last axis with `normalize`'s gradient (TensorFlow
    backend; other settings fall back to Keras' own computation)."""

    def call(self, inputs):
        if (
            keras.backend.backend() != "tensorflow"
            or self.axis not in (-1, [-1], len(inputs.shape) - 1, [len(inputs.shape) - 1])
            or self.rms_scaling
            or not (self.center and self.scale)
        ):
            return super().call(inputs)
        x = tf.cast(inputs, "float32")
        outputs = normalize(x, self.epsilon) * tf.cast(self.gamma, x.dtype) + tf.cast(self.beta, x.dtype)
        return tf.cast(outputs, self.compute_dtype)
