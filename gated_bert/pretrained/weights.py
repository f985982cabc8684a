"""A checkpoint's tensors as numpy arrays under canonical BERT names.

Canonical names are HuggingFace BertModel's without a `bert.` prefix, LayerNorm
parameters as `weight`/`bias` (older checkpoints say `gamma`/`beta`); buffers such as
`embeddings.position_ids` and heads of other tasks (`cls.*`) are dropped.
`model.safetensors` is read with `safetensors` (no PyTorch needed); `pytorch_model.bin`
only when PyTorch is importable.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gated_bert.errors import DataError
from gated_bert.pretrained.checkpoint import PYTORCH_BIN, BertCheckpoint

ROLES = {  # gated kernel role -> its module in a HuggingFace BERT layer
    "query": "attention.self.query",
    "key": "attention.self.key",
    "value": "attention.self.value",
    "attention_output": "attention.output.dense",
    "ffn_in": "intermediate.dense",
    "ffn_out": "output.dense",
}
NORMS = {"attention_norm": "attention.output.LayerNorm", "ffn_norm": "output.LayerNorm"}


def canonical_name(name: str) -> str | None:
    """The canonical name of a stored tensor, or None for what is not an encoder weight."""
    if name.startswith("bert."):
        name = name[len("bert.") :]
    if not name.startswith(("embeddings.", "encoder.", "pooler.")) or name.endswith("position_ids"):
        return None
    if ".LayerNorm." in name:
        name = name.replace(".gamma", ".weight").replace(".beta", ".bias")
    return name


def read_tensors(checkpoint: BertCheckpoint) -> dict[str, np.ndarray]:
    """Every encoder tensor of the checkpoint (float32), by canonical name; shapes are checked
    against its config.json."""
    path = checkpoint.weights_file
    raw = _read_pytorch(path) if path.name == PYTORCH_BIN else _read_safetensors(path)
    tensors = {}
    for name, value in raw.items():
        canonical = canonical_name(name)
        if canonical is not None:
            tensors[canonical] = np.asarray(value, dtype=np.float32)
    check_shapes({name: value.shape for name, value in tensors.items()}, checkpoint)
    return tensors


def check_file(checkpoint: BertCheckpoint) -> None:
    """Every expected tensor is in the weights file with its config's shape, read from the file's
    header only (safetensors), so a bad checkpoint is refused before anything is built."""
    path = checkpoint.weights_file
    if path.name == PYTORCH_BIN:
        read_tensors(checkpoint)  # PyTorch files have no cheap header: read them once
        return
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as handle:
            shapes = {}
            for name in handle.keys():
                canonical = canonical_name(name)
                if canonical is not None:
                    shapes[canonical] = tuple(handle.get_slice(name).get_shape())
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(f"cannot read {str(path)!r} ({err}); pass an intact model.safetensors") from None
    check_shapes(shapes, checkpoint)


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError) as err:
        raise DataError(f"cannot read {str(path)!r} ({err}); pass an intact model.safetensors") from None


def _read_pytorch(path: Path) -> dict[str, np.ndarray]:
    try:
        import torch
    except ImportError:
        raise DataError(
            f"{str(path)!r} is a PyTorch file and PyTorch is not installed; pip install torch, or "
            "convert the checkpoint to model.safetensors"
        ) from None
    try:
        state = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise DataError(f"cannot read {str(path)!r} ({err}); pass an intact pytorch_model.bin") from None
    return {name: value.float().numpy() for name, value in state.items() if hasattr(value, "numpy")}


def expected_shapes(checkpoint: BertCheckpoint) -> dict[str, tuple[int, ...]]:
    """Canonical name -> shape, from config.json (the pooler is optional)."""
    h, f = checkpoint.d_model, checkpoint.dff
    shapes = {
        "embeddings.word_embeddings.weight": (checkpoint.vocab_size, h),
        "embeddings.position_embeddings.weight": (checkpoint.max_position_embeddings, h),
        "embeddings.token_type_embeddings.weight": (checkpoint.type_vocab_size, h),
        "embeddings.LayerNorm.weight": (h,),
        "embeddings.LayerNorm.bias": (h,),
    }
    for i in range(checkpoint.num_layers):
        prefix = f"encoder.layer.{i}."
        for role, module in ROLES.items():
            out, into = {"ffn_in": (f, h), "ffn_out": (h, f)}.get(role, (h, h))
            shapes[prefix + module + ".weight"] = (out, into)
            shapes[prefix + module + ".bias"] = (out,)
        for module in NORMS.values():
            shapes[prefix + module + ".weight"] = (h,)
            shapes[prefix + module + ".bias"] = (h,)
    return shapes


def check_shapes(shapes: dict[str, tuple[int, ...]], checkpoint: BertCheckpoint) -> None:
    """Every expected tensor is there with its config's shape (else one DataError naming it)."""
    where = str(checkpoint.weights_file)
    expected = expected_shapes(checkpoint)
    if "pooler.dense.weight" in shapes:
        expected["pooler.dense.weight"] = (checkpoint.d_model, checkpoint.d_model)
        expected["pooler.dense.bias"] = (checkpoint.d_model,)
    for name, shape in expected.items():
        if name not in shapes:
            raise DataError(f"{where!r} has no tensor {name}; pass a complete BERT checkpoint")
        if tuple(shapes[name]) != shape:
            raise DataError(
                f"{where!r}: {name} has shape {tuple(shapes[name])} but config.json implies "
                f"{shape}; the weights and config.json belong to different models"
            )
