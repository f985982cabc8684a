"""`GatedDense`: a dense layer whose kernel is multiplied by a mask.

The mask is a non-trainable variable of ones in the kernel's dtype; a pruning
method writes zeros into it. With `with_scores=True` the layer also owns
trainable scores S (movement pruning): the forward pass still uses the stored
0/1 mask, but its gradient flows to S through the straight-through estimator,
so dL/dS = W * dL/dW' where W' = W * mask.

`matmul_dtype` (not part of the config, not saved) makes the matmul take
inputs of that dtype, e.g. bfloat16, with the product cast back; the train
step sets it while it is traced (`training/precision.py`).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from gated_bert.layers.gelu import gelu


def straight_through(scores, mask):
    """Forward value `mask`, gradient passed unchanged to `scores`."""
    return scores + ops.stop_gradient(mask - scores)


@tf.custom_gradient
def scored_kernel(kernel, mask, scores):
    """`kernel * straight_through(scores, mask)` in one product: the forward value W * mask, the
    gradients dL/dW = mask * g and dL/dS = W * g (g = dL/dW'), without the two passes over each
    kernel that materialise the straight-through mask (movement's step, every step)."""

    def grad(upstream):
        return upstream * mask, None, upstream * kernel

    return kernel * mask, grad


@keras.saving.register_keras_serializable(package="gated_bert")
class GatedDense(keras.layers.Layer):
    """Dense layer computing `activation(x @ (kernel * mask) + bias)`.

    Args:
        units: output size.
        activation: Keras activation name or None.
        use_bias: whether to add a bias (biases are never pruned).
        with_scores: create trainable movement scores (initialized to 0).
        kernel_initializer: initializer of the kernel.
    """

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        use_bias: bool = True,
        with_scores: bool = False,
        kernel_initializer: str | dict | keras.initializers.Initializer = "glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = units
        self.activation = keras.activations.get(activation)
        # what call applies: Keras' exact GELU with its closed-form gradient on TensorFlow, else the activation
        tf_gelu = self.activation is keras.activations.gelu and keras.backend.backend() == "tensorflow"
        self._apply_activation = gelu if tf_gelu else self.activation
        # TensorFlow's BiasAdd: its gradient is one BiasAddGrad, where `+` broadcasts and sums back
        self._add_bias = tf.nn.bias_add if keras.backend.backend() == "tensorflow" else ops.add
        self.use_bias = use_bias
        self.with_scores = with_scores
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.matmul_dtype: str | None = None

    def build(self, input_shape):
        shape = (input_shape[-1], self.units)
        self.kernel = self.add_weight(name="kernel", shape=shape, initializer=self.kernel_initializer)
        self.bias = (
            self.add_weight(name="bias", shape=(self.units,), initializer="zeros") if self.use_bias else None
        )
        self.mask = self.add_weight(
            name="mask", shape=shape, initializer="ones", trainable=False, dtype=self.kernel.dtype
        )
        self.scores = (
            self.add_weight(name="scores", shape=shape, initializer="zeros") if self.with_scores else None
        )

    def effective_mask(self):
        if self.scores is None:
            return self.mask
        return straight_through(self.scores, self.mask)

    def effective_kernel(self):
        """W' = W * mask, with the straight-through gradient to the scores when the layer has them."""
        if self.scores is not None and keras.backend.backend() == "tensorflow":
            return scored_kernel(self.kernel.value, self.mask.value, self.scores.value)
        return self.kernel * self.effective_mask()

    def call(self, inputs):
        kernel = self.effective_kernel()
        if self.matmul_dtype is None:
            outputs = ops.matmul(inputs, kernel)
        else:
            low = ops.matmul(ops.cast(inputs, self.matmul_dtype), ops.cast(kernel, self.matmul_dtype))
            outputs = ops.cast(low, inputs.dtype)
        if self.bias is not None:
            outputs = self._add_bias(outputs, self.bias)
        return self._apply_activation(outputs) if self._apply_activation is not None else outputs

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.units)

    def get_config(self):
        config = super().get_config()
        config.update(
            units=self.units,
            activation=keras.activations.serialize(self.activation) if self.activation else None,
            use_bias=self.use_bias,
            with_scores=self.with_scores,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
