"""Keras layers of the gated encoder."""

from gated_bert.layers.attention import GatedMultiHeadAttention
from gated_bert.layers.embeddings import BertEmbeddings
from gated_bert.layers.encoder_block import PRUNABLE_ROLES, EncoderBlock
from gated_bert.layers.gated_dense import GatedDense, straight_through

__all__ = [
    "PRUNABLE_ROLES",
    "BertEmbeddings",
    "EncoderBlock",
    "GatedDense",
    "GatedMultiHeadAttention",
    "straight_through",
]
