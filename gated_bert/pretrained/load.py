"""Write a BERT checkpoint's weights into a freshly built gated classifier.

Every weight is loaded: the three embedding tables (positions up to the model's
max_len), every LayerNorm, all six kernels of every block with their biases (torch's
Linear stores [out, in]: transposed), and the pooler when the checkpoint has one. The head
stays new; masks stay at one; movement scores are made afterwards, from these weights.
"""

from __future__ import annotations

import keras
import numpy as np

from gated_bert.errors import DataError
from gated_bert.model import encoder_blocks
from gated_bert.pretrained.checkpoint import BertCheckpoint
from gated_bert.pretrained.weights import NORMS, ROLES, read_tensors

LAYER_NORM_EPSILON = 1e-12  # the gated encoder's (BERT's)


def load_into(model: keras.Model, checkpoint: BertCheckpoint) -> dict[str, np.ndarray]:
    """Assign the checkpoint's weights to `model` (built from `checkpoint.architecture`).

    Returns the canonical tensors that were read (tests compare against them)."""
    if checkpoint.type_vocab_size != 2 or abs(checkpoint.layer_norm_eps - LAYER_NORM_EPSILON) > 1e-15:
        raise DataError(
            f"--init-from {str(checkpoint.folder)!r}: type_vocab_size {checkpoint.type_vocab_size} and "
            f"layer_norm_eps {checkpoint.layer_norm_eps} differ from BERT's 2 and 1e-12, which the gated "
            "encoder uses; pass a BERT checkpoint"
        )
    tensors = read_tensors(checkpoint)
    embeddings = model.get_layer("embeddings")
    _assign(embeddings.token.embeddings, tensors["embeddings.word_embeddings.weight"])
    rows = embeddings.position.embeddings.shape[0]
    _assign(embeddings.position.embeddings, tensors["embeddings.position_embeddings.weight"][:rows])
    _assign(embeddings.segment.embeddings, tensors["embeddings.token_type_embeddings.weight"])
    _norm(embeddings.norm, tensors, "embeddings.LayerNorm")
    blocks = encoder_blocks(model)
    for index, block in enumerate(blocks):
        prefix = f"encoder.layer.{index}."
        for role, layer in block.gated_layers().items():
            _assign(layer.kernel, tensors[prefix + ROLES[role] + ".weight"].T)
            _assign(layer.bias, tensors[prefix + ROLES[role] + ".bias"])
        _norm(block.attention_norm, tensors, prefix + NORMS["attention_norm"])
        _norm(block.ffn_norm, tensors, prefix + NORMS["ffn_norm"])
    if "pooler.dense.weight" in tensors:
        pooler = model.get_layer("pooler")
        _assign(pooler.kernel, tensors["pooler.dense.weight"].T)
        _assign(pooler.bias, tensors["pooler.dense.bias"])
    return tensors


def _norm(layer, tensors: dict[str, np.ndarray], name: str) -> None:
    _assign(layer.gamma, tensors[name + ".weight"])
    _assign(layer.beta, tensors[name + ".bias"])


def _assign(variable, value: np.ndarray) -> None:
    if tuple(variable.shape) != value.shape:  # the model was built for another shape: a bug, not input
        raise ValueError(f"{variable.path}: model shape {tuple(variable.shape)}, checkpoint {value.shape}")
    variable.assign(value)
