"""Exact GELU with its closed-form gradient, for the feed-forward layers.

gelu(x) = x * Phi(x), Phi the standard normal CDF (Keras' `gelu`, approximate=False);
d/dx = Phi(x) + x * phi(x), phi the normal density. Autodiff through Keras' gelu
builds about twice as many TensorFlow ops for the backward pass (docs/training.md).
Same values and gradients to float32 rounding (tests/test_model.py).
"""

from __future__ import annotations

import math

import tensorflow as tf


@tf.custom_gradient
def gelu(x):
    """x * Phi(x) with the gradient Phi(x) + x * phi(x)."""
    cdf = 0.5 * tf.math.erfc(x * -math.sqrt(0.5))

    def gradient(upstream):
        return upstream * (cdf + x * (tf.exp(-0.5 * tf.square(x)) / math.sqrt(2.0 * math.pi)))

    return x * cdf, gradient
