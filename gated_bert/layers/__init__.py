"""Keras layers of the gated encoder."""

from gated_bert.layers.attention import GatedMultiHeadAttention
from gated_bert.layers.embeddings import BertEmbeddings
from gated_bert.layers.encoder_block import PRUNABLE_ROLES, EncoderBlock
from gated_bert.layers.gated_dense import GatedDense, straight_through
from gated_bert.layers.layer_norm import LayerNorm

__all__ = [
    "PRUNABLE_ROLES",
    "BertEmbeddings",
    "EncoderBlock",
    "GatedDense",
    "GatedMultiHeadAttention",
    "LayerNorm",
    "straight_through",
]
