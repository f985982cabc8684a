"""The encoder's shape: `Architecture`, the preset sizes and BERT's limits.

Pure Python at the bottom of the package: the config validates against it and
the model is built from it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Layers, hidden size, attention heads, FFN size.
MODEL_PRESETS: dict[str, tuple[int, int, int, int]] = {
    "tiny": (2, 256, 4, 512),
    "small": (6, 512, 8, 1024),
    "base": (12, 768, 12, 3072),
    "large": (24, 1024, 16, 4096),
}
BERT_VOCAB_SIZE = 30522  # BERT's vocabulary: the cap of a trained tokenizer, and the presets' size
MAX_LEN_LIMIT = 4096  # position embeddings and attention grow with it; BERT stops at 512


@dataclass(frozen=True)
class Architecture:
    """Resolved encoder shape (preset, with any explicit overrides applied)."""

    num_layers: int
    d_model: int
    num_heads: int
    dff: int
    vocab_size: int
    max_len: int


def prunable_weights(arch: Architecture) -> int:
    """Weights of the six gated kernels of every block."""
    return arch.num_layers * (4 * arch.d_model * arch.d_model + 2 * arch.d_model * arch.dff)


def parameter_count(arch: Architecture) -> int:
    """Trainable weights of the encoder: embeddings (token, position, segment, LayerNorm), every
    block's kernels, biases and LayerNorms, and the pooler (a task head adds a few more)."""
    d = arch.d_model
    embeddings = (arch.vocab_size + arch.max_len + 2) * d + 2 * d
    block_extras = 4 * d + arch.dff + d + 4 * d  # biases of the six kernels, two LayerNorms
    return embeddings + prunable_weights(arch) + arch.num_layers * block_extras + d * d + d


def nearest_preset(arch: Architecture) -> str:
    """The preset whose prunable-weight count is nearest `arch`'s (on a log scale): size-scaled
    defaults (SPT's exploration rate) for a custom or pretrained shape."""
    own = math.log(prunable_weights(arch))

    def distance(name: str) -> float:
        preset = preset_architecture(name, arch.max_len)
        return abs(math.log(prunable_weights(preset)) - own)

    return min(MODEL_PRESETS, key=distance)


def preset_architecture(
    model_size: str,
    max_len: int,
    num_layers: int | None = None,
    d_model: int | None = None,
    num_heads: int | None = None,
    dff: int | None = None,
    vocab_size: int | None = None,
) -> Architecture:
    """Preset `model_size` with each given value overriding its own; vocab_size defaults to BERT's."""
    layers, hidden, heads, inner = MODEL_PRESETS[model_size]
    return Architecture(
        num_layers=num_layers or layers,
        d_model=d_model or hidden,
        num_heads=num_heads or heads,
        dff=dff or inner,
        vocab_size=vocab_size or BERT_VOCAB_SIZE,
        max_len=max_len,
    )
