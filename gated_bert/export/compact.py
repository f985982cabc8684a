"""A pruned classifier without its pruned parts: the `compact` export format.

From a trained gated classifier, `compact_arrays` keeps, per encoder block,
only the attention heads and FFN neurons that still have an active weight
(smaller matrices, no masks, no scores: removing a whole head or neuron is
exact, see `pruning/groups.py`), and stores each remaining kernel in CSR form
(float32 values, int16/int32 column indices) where that takes fewer bytes
than the dense array, densely otherwise. Unstructured sparsity left inside a
kernel saves bytes only: `CompactModel` densifies kernels when it loads, so
its speed comes from the removed heads and neurons alone.

`CompactModel` runs the same forward pass as `gated_bert.model.build_model`
(post-norm BERT encoder, exact GELU, [CLS] pooler) in TensorFlow ops and
answers `predict(dataset)` like a Keras model, so the same tokenization and
batching code serves both.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from gated_bert.data.tokenizer import PAD_ID

ATTENTION_ROLES = ("query", "key", "value", "attention_output")
KERNEL_ROLES = (*ATTENTION_ROLES, "ffn_in", "ffn_out")
MASK_PENALTY = -1e9  # as in layers/attention.py


# ------------------------------------------------------------------ storage
def encode_kernel(name: str, kernel: np.ndarray) -> dict[str, np.ndarray]:
    """`kernel` stored densely or as CSR, whichever takes fewer bytes."""
    kernel = np.asarray(kernel, dtype=np.float32)
    rows, columns = kernel.shape
    index_type = np.int16 if columns < 2**15 else np.int32
    nonzero = np.count_nonzero(kernel)
    csr_bytes = nonzero * (4 + np.dtype(index_type).itemsize) + (rows + 1) * 4
    if csr_bytes >= kernel.nbytes:
        return {f"{name}/dense": kernel}
    row_index, column_index = np.nonzero(kernel)
    indptr = np.zeros(rows + 1, dtype=np.int32)
    np.cumsum(np.bincount(row_index, minlength=rows), out=indptr[1:])
    return {
        f"{name}/data": kernel[row_index, column_index],
        f"{name}/indices": column_index.astype(index_type),
        f"{name}/indptr": indptr,
        f"{name}/shape": np.array(kernel.shape, dtype=np.int32),
    }


def decode_kernel(arrays, name: str) -> np.ndarray:
    if f"{name}/dense" in arrays:
        return np.asarray(arrays[f"{name}/dense"], dtype=np.float32)
    rows, columns = (int(v) for v in arrays[f"{name}/shape"])
    indptr = np.asarray(arrays[f"{name}/indptr"])
    kernel = np.zeros((rows, columns), dtype=np.float32)
    row_index = np.repeat(np.arange(rows), np.diff(indptr))
    kernel[row_index, np.asarray(arrays[f"{name}/indices"], dtype=np.int64)] = arrays[f"{name}/data"]
    return kernel


def encoder_bytes(arrays: dict[str, np.ndarray]) -> int:
    """Bytes of all encoder-block tensors as stored (embeddings and head excluded)."""
    return int(sum(a.nbytes for k, a in arrays.items() if k.startswith("block_")))


# --------------------------------------------------------------- extraction
def _kept(mask_rows: list[np.ndarray]) -> np.ndarray:
    """Indices of the groups (rows of the views) with an active weight in any kernel."""
    return np.flatnonzero(np.any([m.any(axis=1) for m in mask_rows], axis=0))


def compact_arrays(classifier, num_heads: int, float16_embeddings: bool = False) -> dict[str, np.ndarray]:
    """Every array of the compact model, by name (see the module docstring)."""
    from gated_bert.model import encoder_blocks
    from gated_bert.pruning.groups import HEADS, NEURONS, group_view

    arrays: dict[str, np.ndarray] = {"num_heads": np.array(num_heads, dtype=np.int32)}
    embeddings = classifier.get_layer("embeddings")
    token = embeddings.token.embeddings.numpy()
    arrays["embeddings/token"] = token.astype(np.float16) if float16_embeddings else token
    arrays["embeddings/position"] = embeddings.position.embeddings.numpy()
    arrays["embeddings/segment"] = embeddings.segment.embeddings.numpy()
    arrays["embeddings/gamma"], arrays["embeddings/beta"] = (w.numpy() for w in embeddings.norm.weights)
    for b, block in enumerate(encoder_blocks(classifier)):
        layers = block.gated_layers()
        kernels = {role: layers[role].kernel.numpy() * layers[role].mask.numpy() for role in KERNEL_ROLES}
        masks = {role: layers[role].mask.numpy() for role in KERNEL_ROLES}
        depth = kernels["query"].shape[1] // num_heads
        heads = _kept([group_view(masks[r], HEADS.axes[r], depth) for r in ATTENTION_ROLES])
        neurons = _kept([group_view(masks[r], NEURONS.axes[r], 1) for r in ("ffn_in", "ffn_out")])
        columns = (heads[:, None] * depth + np.arange(depth)[None, :]).reshape(-1)
        prefix = f"block_{b}"
        for role in ("query", "key", "value"):
            arrays.update(encode_kernel(f"{prefix}/{role}", kernels[role][:, columns]))
            arrays[f"{prefix}/{role}_bias"] = layers[role].bias.numpy()[columns]
        arrays.update(encode_kernel(f"{prefix}/attention_output", kernels["attention_output"][columns, :]))
        arrays[f"{prefix}/attention_output_bias"] = layers["attention_output"].bias.numpy()
        arrays.update(encode_kernel(f"{prefix}/ffn_in", kernels["ffn_in"][:, neurons]))
        arrays[f"{prefix}/ffn_in_bias"] = layers["ffn_in"].bias.numpy()[neurons]
        arrays.update(encode_kernel(f"{prefix}/ffn_out", kernels["ffn_out"][neurons, :]))
        arrays[f"{prefix}/ffn_out_bias"] = layers["ffn_out"].bias.numpy()
        arrays[f"{prefix}/heads_kept"] = heads.astype(np.int32)
        for norm in ("attention_norm", "ffn_norm"):
            gamma, beta = (w.numpy() for w in getattr(block, norm).weights)
            arrays[f"{prefix}/{norm}_gamma"], arrays[f"{prefix}/{norm}_beta"] = gamma, beta
    for name in ("pooler", "head"):
        kernel, bias = (w.numpy() for w in classifier.get_layer(name).weights)
        arrays[f"{name}/kernel"], arrays[f"{name}/bias"] = kernel, bias
    return arrays


def save_arrays(arrays: dict[str, np.ndarray], path: Path) -> None:
    np.savez(path, **arrays)  # uncompressed: the stored bytes are the arrays' bytes


# ------------------------------------------------------------------ the model
class CompactModel:
    """Inference-only classifier over the compact arrays; `predict(dataset)` like Keras."""

    def __init__(self, arrays):
        import tensorflow as tf

        arrays = {k: arrays[k] for k in arrays}
        self.num_heads_original = int(arrays["num_heads"])
        self.blocks = []
        b = 0
        while f"block_{b}/ffn_out_bias" in arrays:
            self.blocks.append(self._block(arrays, f"block_{b}"))
            b += 1
        self.embeddings = {
            k.split("/")[1]: tf.constant(np.asarray(v, dtype=np.float32))
            for k, v in arrays.items()
            if k.startswith("embeddings/")
        }
        self.pooler = (tf.constant(arrays["pooler/kernel"]), tf.constant(arrays["pooler/bias"]))
        self.head = (tf.constant(arrays["head/kernel"]), tf.constant(arrays["head/bias"]))
        self.output_shape = (None, int(arrays["head/bias"].shape[0]))
        self.depth = int(arrays["embeddings/gamma"].shape[0]) // self.num_heads_original
        self._forward = tf.function(self.call, reduce_retracing=True)

    @classmethod
    def load(cls, path: str | Path) -> CompactModel:
        with np.load(path) as arrays:
            return cls({k: arrays[k] for k in arrays.files})

    @staticmethod
    def _block(arrays, prefix: str) -> dict:
        import tensorflow as tf

        block = {role: tf.constant(decode_kernel(arrays, f"{prefix}/{role}")) for role in KERNEL_ROLES}
        for key in arrays:
            if key.startswith(prefix + "/") and key.rsplit("/", 1)[1].endswith(("_bias", "_gamma", "_beta")):
                block[key.rsplit("/", 1)[1]] = tf.constant(arrays[key])
        block["heads"] = int(len(arrays[f"{prefix}/heads_kept"]))
        return block

    def call(self, token_ids, segment_ids):
        import tensorflow as tf

        e = self.embeddings
        positions = tf.range(tf.shape(token_ids)[1])
        x = (
            tf.gather(e["token"], token_ids)
            + tf.gather(e["position"], positions)[None]
            + tf.gather(e["segment"], segment_ids)
        )
        x = _layer_norm(x, e["gamma"], e["beta"])
        keep = tf.cast(tf.not_equal(token_ids, PAD_ID), tf.float32)[:, None, None, :]
        for block in self.blocks:
            x = self._encoder_block(x, keep, block)
        pooled = tf.tanh(x[:, 0, :] @ self.pooler[0] + self.pooler[1])
        return pooled @ self.head[0] + self.head[1]

    def _encoder_block(self, x, keep, block):
        import tensorflow as tf

        batch, length = tf.shape(x)[0], tf.shape(x)[1]
        heads = block["heads"]
        if heads:

            def split(t):
                return tf.transpose(tf.reshape(t, (batch, length, heads, self.depth)), (0, 2, 1, 3))

            q = split(x @ block["query"] + block["query_bias"])
            k = split(x @ block["key"] + block["key_bias"])
            v = split(x @ block["value"] + block["value_bias"])
            logits = tf.matmul(q, k, transpose_b=True) / math.sqrt(self.depth)
            weights = tf.nn.softmax(logits + (1.0 - keep) * MASK_PENALTY, axis=-1)
            context = tf.reshape(tf.transpose(weights @ v, (0, 2, 1, 3)), (batch, length, heads * self.depth))
            attended = context @ block["attention_output"] + block["attention_output_bias"]
        else:  # every head removed: the projection adds its bias only
            attended = tf.zeros_like(x) + block["attention_output_bias"]
        x = _layer_norm(x + attended, block["attention_norm_gamma"], block["attention_norm_beta"])
        hidden = tf.nn.gelu(x @ block["ffn_in"] + block["ffn_in_bias"], approximate=False)
        hidden = hidden @ block["ffn_out"] + block["ffn_out_bias"]
        return _layer_norm(x + hidden, block["ffn_norm_gamma"], block["ffn_norm_beta"])

    def __call__(self, inputs, training=False):
        return self._forward(inputs["token_ids"], inputs["segment_ids"])

    def predict(self, dataset, verbose=0) -> np.ndarray:
        outputs = [self(batch[0] if isinstance(batch, tuple) else batch).numpy() for batch in dataset]
        return np.concatenate(outputs) if outputs else np.zeros((0, self.output_shape[-1]), np.float32)

    def count_params(self) -> int:
        tensors = [*self.embeddings.values(), *self.pooler, *self.head]
        tensors += [t for block in self.blocks for t in block.values() if not isinstance(t, int)]
        return int(sum(int(np.prod(t.shape)) for t in tensors))


def _layer_norm(x, gamma, beta, epsilon: float = 1e-12):
    import tensorflow as tf

    mean, variance = tf.nn.moments(x, axes=[-1], keepdims=True)
    return (x - mean) * tf.math.rsqrt(variance + epsilon) * gamma + beta
