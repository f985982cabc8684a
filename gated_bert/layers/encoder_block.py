"""One post-LayerNorm transformer encoder block (BERT's layout), fully gated."""

from __future__ import annotations

import keras

from gated_bert.layers.attention import GatedMultiHeadAttention
from gated_bert.layers.gated_dense import GatedDense
from gated_bert.layers.layer_norm import LayerNorm

# The six gated kernels of a block, in the order reports and SPT cycling use.
PRUNABLE_ROLES = ("query", "key", "value", "attention_output", "ffn_in", "ffn_out")


@keras.saving.register_keras_serializable(package="gated_bert")
class EncoderBlock(keras.layers.Layer):
    """Self-attention and a GELU feed-forward network, each with residual + LayerNorm.

    Args:
        d_model: hidden size.
        num_heads: attention heads.
        dff: feed-forward inner size.
        dropout_rate: dropout after attention and FFN.
        with_scores: give every gated kernel movement scores.
        kernel_initializer: initializer of every kernel.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int,
        dff: int,
        dropout_rate: float = 0.0,
        with_scores: bool = False,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.d_model = d_model
        self.num_heads = num_heads
        self.dff = dff
        self.dropout_rate = dropout_rate
        self.with_scores = with_scores
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        dense = dict(with_scores=with_scores, kernel_initializer=self.kernel_initializer)
        self.attention = GatedMultiHeadAttention(d_model, num_heads, dropout_rate, name="attention", **dense)
        self.attention_norm = LayerNorm(epsilon=1e-12, name="attention_norm")
        self.ffn_in = GatedDense(dff, activation="gelu", name="ffn_in", **dense)
        self.ffn_out = GatedDense(d_model, name="ffn_out", **dense)
        self.ffn_norm = LayerNorm(epsilon=1e-12, name="ffn_norm")
        self.dropout = keras.layers.Dropout(dropout_rate)

    def build(self, input_shape):
        self.attention.build(input_shape)
        self.attention_norm.build(input_shape)
        self.ffn_in.build(input_shape)
        self.ffn_out.build((*input_shape[:-1], self.dff))
        self.ffn_norm.build(input_shape)

    def gated_layers(self) -> dict[str, GatedDense]:
        """The block's prunable kernels by role (see PRUNABLE_ROLES)."""
        a = self.attention
        return {
            "query": a.query,
            "key": a.key,
            "value": a.value,
            "attention_output": a.attention_output,
            "ffn_in": self.ffn_in,
            "ffn_out": self.ffn_out,
        }

    def call(self, inputs, padding_mask=None, training=None):
        attended = self.attention(inputs, padding_mask=padding_mask, training=training)
        x = self.attention_norm(inputs + self.dropout(attended, training=training))
        hidden = self.ffn_out(self.ffn_in(x))
        return self.ffn_norm(x + self.dropout(hidden, training=training))

    def get_config(self):
        config = super().get_config()
        config.update(
            d_model=self.d_model,
            num_heads=self.num_heads,
            dff=self.dff,
            dropout_rate=self.dropout_rate,
            with_scores=self.with_scores,
            kernel_initializer=keras.initializers.serialize(self.kernel_initializer),
        )
        return config
