"""Token + position + segment embeddings, LayerNorm and dropout (BERT's input).

On TensorFlow the token rows are read from the table variable by index (a
ResourceGather), not by reading the whole table and gathering from the copy
(Keras' `Embedding.call`): once the lazy AdamW has written rows by scatter, TensorFlow
copies a variable on every whole read, and the token table is most of the model
(`docs/training.md`, "Token rows by index, BiasAdd").
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import ops

from gated_bert.layers.layer_norm import LayerNorm


@keras.saving.register_keras_serializable(package="gated_bert")
class BertEmbeddings(keras.layers.Layer):
    """Sum of token, learned position and segment embeddings.

    Args:
        vocab_size: token embedding rows.
        max_len: position embedding rows.
        d_model: embedding width.
        dropout_rate: dropout after the LayerNorm.
        num_segments: segment (token type) embedding rows.
        embeddings_initializer: initializer of the three tables.
    """

    def __init__(
        self,
        vocab_size: int,
        max_len: int,
        d_model: int,
        dropout_rate: float = 0.0,
        num_segments: int = 2,
        embeddings_initializer="uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.max_len = max_len
        self.d_model = d_model
        self.dropout_rate = dropout_rate
        self.num_segments = num_segments
        self.embeddings_initializer = keras.initializers.get(embeddings_initializer)
        init = self.embeddings_initializer
        self.token = keras.layers.Embedding(vocab_size, d_model, embeddings_initializer=init, name="token")
        self.position = keras.layers.Embedding(max_len, d_model, embeddings_initializer=init, name="position")
        self.segment = keras.layers.Embedding(
            num_segments, d_model, embeddings_initializer=init, name="segment"
        )
        self.norm = LayerNorm(epsilon=1e-12, name="norm")
        self.dropout = keras.layers.Dropout(dropout_rate)

    def build(self, input_shape):
        self.token.build(input_shape)
        self.position.build(input_shape)
        self.segment.build(input_shape)
        self.norm.build((*input_shape, self.d_model))

    def call(self, token_ids, segment_ids, training=None):
        positions = ops.arange(ops.shape(token_ids)[1])[None, :]
        x = self._token_rows(token_ids) + self.position(positions) + self.segment(segment_ids)
        return self.dropout(self.norm(x), training=training)

    def _token_rows(self, token_ids):
        """The token table's rows for `token_ids` (read row by row on TensorFlow)."""
        if keras.backend.backend() != "tensorflow":
            return self.token(token_ids)
        return tf.gather(self.token.embeddings.value, token_ids)

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.d_model)

    def get_config(self):
        config = super().get_config()
        config.update(
            vocab_size=self.vocab_size,
            max_len=self.max_len,
            d_model=self.d_model,
            dropout_rate=self.dropout_rate,
            num_segments=self.num_segments,
            embeddings_initializer=keras.initializers.serialize(self.embeddings_initializer),
        )
        return config
