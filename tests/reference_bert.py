"""An independent numpy BERT forward pass over HuggingFace tensors (BertModel's last hidden state).

Written from the BERT paper and HuggingFace's BertModel, not from gated-bert's layers: the
tests compare the gated encoder (all masks at one) against it.
"""

from __future__ import annotations

import numpy as np
from scipy.special import erf


def _layer_norm(x, weight, bias, eps=1e-12):
    mean = x.mean(-1, keepdims=True)
    var = ((x - mean) ** 2).mean(-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * weight + bias


def _linear(x, tensors, name):
    return x @ tensors[name + ".weight"].T + tensors[name + ".bias"]


def last_hidden_state(tensors, token_ids, segment_ids, attention_mask, num_heads: int) -> np.ndarray:
    """tensors: stored names without a `bert.` prefix, float64 math. Returns (batch, length, hidden)."""
    t = {name.removeprefix("bert."): np.asarray(v, np.float64) for name, v in tensors.items()}
    batch, length = token_ids.shape
    x = (
        t["embeddings.word_embeddings.weight"][token_ids]
        + t["embeddings.position_embeddings.weight"][np.arange(length)][None]
        + t["embeddings.token_type_embeddings.weight"][segment_ids]
    )
    ln = "weight" if "embeddings.LayerNorm.weight" in t else "gamma"
    lb = "bias" if ln == "weight" else "beta"
    x = _layer_norm(x, t[f"embeddings.LayerNorm.{ln}"], t[f"embeddings.LayerNorm.{lb}"])
    hidden = x.shape[-1]
    depth = hidden // num_heads
    penalty = (1.0 - attention_mask[:, None, None, :]) * np.finfo(np.float64).min
    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in t:
        p = f"encoder.layer.{layer}."

        def heads(y):
            return y.reshape(batch, length, num_heads, depth).transpose(0, 2, 1, 3)

        q = heads(_linear(x, t, p + "attention.self.query"))
        k = heads(_linear(x, t, p + "attention.self.key"))
        v = heads(_linear(x, t, p + "attention.self.value"))
        scores = q @ k.transpose(0, 1, 3, 2) / np.sqrt(depth) + penalty
        scores = np.exp(scores - scores.max(-1, keepdims=True))
        weights = scores / scores.sum(-1, keepdims=True)
        context = (weights @ v).transpose(0, 2, 1, 3).reshape(batch, length, hidden)
        attended = _linear(context, t, p + "attention.output.dense")
        x = _layer_norm(
            x + attended, t[p + f"attention.output.LayerNorm.{ln}"], t[p + f"attention.output.LayerNorm.{lb}"]
        )
        inner = _linear(x, t, p + "intermediate.dense")
        inner = 0.5 * inner * (1.0 + erf(inner / np.sqrt(2.0)))
        x = _layer_norm(
            x + _linear(inner, t, p + "output.dense"),
            t[p + f"output.LayerNorm.{ln}"],
            t[p + f"output.LayerNorm.{lb}"],
        )
        layer += 1
    return x
