"""The gated BERT-style classifier and what it can say about its gates."""

from __future__ import annotations

from dataclasses import dataclass

import keras
import numpy as np
from keras import ops

from gated_bert import metric_names as names
from gated_bert.architecture import Architecture
from gated_bert.data.tokenizer import PAD_ID
from gated_bert.layers import PRUNABLE_ROLES, BertEmbeddings, EncoderBlock, GatedDense

INITIALIZER_STDDEV = 0.02  # BERT's truncated-normal initializer
CUSTOM_OBJECTS = {cls.__name__: cls for cls in (BertEmbeddings, EncoderBlock, GatedDense)}


def build_model(
    arch: Architecture,
    num_outputs: int,
    dropout_rate: float = 0.0,
    with_scores: bool = False,
    name: str = "gated_bert",
) -> keras.Model:
    """A functional Keras model: {token_ids, segment_ids} -> logits (or a score).

    Args:
        arch: resolved encoder shape.
        num_outputs: classes, or 1 for regression.
        dropout_rate: dropout everywhere dropout applies.
        with_scores: give every gated kernel movement scores.
        name: model name.
    """
    init = keras.initializers.TruncatedNormal(stddev=INITIALIZER_STDDEV)
    token_ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
    segment_ids = keras.Input(shape=(None,), dtype="int32", name="segment_ids")
    padding_mask = ops.cast(ops.not_equal(token_ids, PAD_ID), "int32")
    x = BertEmbeddings(
        arch.vocab_size,
        arch.max_len,
        arch.d_model,
        dropout_rate,
        embeddings_initializer=init,
        name="embeddings",
    )(token_ids, segment_ids)
    for i in range(arch.num_layers):
        x = EncoderBlock(
            arch.d_model,
            arch.num_heads,
            arch.dff,
            dropout_rate,
            with_scores=with_scores,
            kernel_initializer=init,
            name=f"encoder_block_{i}",
        )(x, padding_mask=padding_mask)
    cls = x[:, 0, :]
    pooled = keras.layers.Dense(arch.d_model, activation="tanh", kernel_initializer=init, name="pooler")(cls)
    pooled = keras.layers.Dropout(dropout_rate)(pooled)
    logits = keras.layers.Dense(num_outputs, kernel_initializer=init, name="head")(pooled)
    return keras.Model({"token_ids": token_ids, "segment_ids": segment_ids}, logits, name=name)


@dataclass(frozen=True)
class PrunableKernel:
    """One gated kernel: its block index, role and layer."""

    layer_index: int
    role: str
    layer: GatedDense

    @property
    def name(self) -> str:
        return f"layer_{self.layer_index}/{self.role}"


def encoder_blocks(model: keras.Model) -> list[EncoderBlock]:
    return [layer for layer in model.layers if isinstance(layer, EncoderBlock)]


def prunable_kernels(model: keras.Model) -> list[PrunableKernel]:
    """Every prunable kernel, block by block, in PRUNABLE_ROLES order."""
    out = []
    for index, block in enumerate(encoder_blocks(model)):
        gated = block.gated_layers()
        out.extend(PrunableKernel(index, role, gated[role]) for role in PRUNABLE_ROLES)
    return out


def sparse_row_variables(model: keras.Model) -> list:
    """Tables whose rows a batch touches sparsely (the token embedding): updated lazily."""
    return [model.get_layer("embeddings").token.embeddings]


def _is_gate(variable) -> bool:
    return variable.path.endswith("/mask") or variable.path.endswith("/scores")


def count_parameters(model: keras.Model) -> int:
    """Model parameters (weights, biases, embeddings), not counting masks and scores."""
    return int(sum(np.prod(v.shape) for v in model.weights if not _is_gate(v)))


def sparsity_report(model: keras.Model) -> dict[str, float]:
    """Fractions of zero mask entries.

    Keys: `sparsity` (over all prunable weights), `sparsity_all_params` (pruned
    weights over all model parameters) and `sparsity/layer_i/role` for every
    kernel.
    """
    report: dict[str, float] = {}
    zeros = total = 0
    for kernel in prunable_kernels(model):
        mask = np.asarray(kernel.layer.mask.numpy())
        n_zero = int(mask.size - np.count_nonzero(mask))
        report[names.layer_sparsity(kernel.name)] = n_zero / mask.size
        zeros += n_zero
        total += mask.size
    report[names.SPARSITY] = zeros / total if total else 0.0
    report[names.SPARSITY_ALL_PARAMS] = zeros / count_parameters(model)
    return report
