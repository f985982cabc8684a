"""Multi-head self-attention whose four projections are `GatedDense` layers."""

from __future__ import annotations

import math

import keras
from keras import ops

from gated_bert.layers.gated_dense import GatedDense

# Added once to the logits of padded key positions: exp(-1e9) is exactly 0.
MASK_PENALTY = -1e9


@keras.saving.register_keras_serializable(package="gated_bert")
class GatedMultiHeadAttention(keras.layers.Layer):
    """Scaled dot-product self-attention over `num_heads` heads.

    Args:
        d_model: hidden size (divisible by num_heads).
        num_heads: number of heads.
        dropout_rate: dropout on the attention weights.
        with_scores: give the projections movement scores.
        kernel_initializer: initializer of the projection kernels.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dropout_rate: float = 0.0,
        with_scores: bool = False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if d_model % num_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by num_heads ({num_heads})")
        self.d_model = d_model
        self.num_heads = num_heads
        self.dropout_rate = dropout_rate
        self.with_scores = with_scores
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        dense = dict(with_scores=with_scores, kernel_initializer=self.kernel_initializer)
        self.query = GatedDense(d_model, name="query", **dense)
        self.key = GatedDense(d_model, name="key", **dense)
        self.value = GatedDense(d_model, name="value", **dense)
        self.attention_output = GatedDense(d_model, name="attention_output", **dense)
        self.dropout = keras.layers.Dropout(dropout_rate)

    def build(self, input_shape):
        for layer in (self.query, self.key, self.value, self.attention_output):
            layer.build(input_shape)

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        x = ops.reshape(x, (batch, length, self.num_heads, self.d_model // self.num_heads))
        return ops.transpose(x, (0, 2, 1, 3))  # (batch, heads, length, depth)

    def call(self, inputs, padding_mask=None, training=None, return_attention_weights=False):
        """`padding_mask`: (batch, length), 1 for real tokens and 0 for padding."""
        q = self._split_heads(self.query(inputs))
        k = self._split_heads(self.key(inputs))
        v = self._split_heads(self.value(inputs))
        logits = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2))) / math.sqrt(self.d_model // self.num_heads)
        if padding_mask is not None:
            keep = ops.cast(padding_mask, logits.dtype)[:, None, None, :]
            logits = logits + (1.0 - keep) * MASK_PENALTY
        weights = ops.softmax(logits, axis=-1)
        context = ops.matmul(self.dropout(weights, training=training), v)
        context = ops.transpose(context, (0, 2, 1, 3))
        batch, length = ops.shape(inputs)[0], ops.shape(inputs)[1]
        output = self.attention_output(ops.reshape(context, (batch, length, self.d_model)))
        return (output, weights) if return_attention_weights else output

    def get_config(self):
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            num_heads=self.num_heads,
            dropout_rate=self.dropout_rate,
            with_scores=self.with_scores,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
