"""Matmul precision of the train step (`matmul_precision`: auto, float32, bfloat16).

With bfloat16, the gated kernels' matmuls in the train step (forward and
backward) take bfloat16 inputs: each GatedDense casts its input and its masked
kernel to bfloat16 for the matmul and casts the product back to float32.
Everything else stays float32: the weights, masks, gradients and optimizer
states, LayerNorm, softmax, the loss, evaluation and the saved model (the
setting is a property of the train step, not of the model).

`auto` picks bfloat16 only where it is native and measured faster: on CPUs
with bfloat16 dot-product instructions (AVX512_BF16 or AMX-BF16, which
oneDNN uses; docs/training.md has the figures, for every method, SPT's
reward noise included). Elsewhere (AVX2-only CPUs, where bfloat16 would be
emulated; GPUs, not measured) it picks float32.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from gated_bert.layers.gated_dense import GatedDense

NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The CPU's feature flags (Linux `/proc/cpuinfo`); empty where that file is absent."""
    try:
        text = cpuinfo.read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def native_bfloat16(flags: set[str] | None = None) -> bool:
    """True on CPUs with bfloat16 dot-product instructions."""
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def resolve(precision: str, native: bool, gpu: bool) -> str:
    """The concrete precision ("float32" or "bfloat16") that `precision` means on this machine.

    Args:
        precision: the config's matmul_precision (auto, float32 or bfloat16).
        native: whether the CPU has native bfloat16 arithmetic.
        gpu: whether TensorFlow sees a GPU.
    """
    if precision != "auto":
        return precision
    return "bfloat16" if native and not gpu else "float32"


@contextlib.contextmanager
def matmul_dtype(model, dtype: str | None):
    """Within the block, the GatedDense layers of `model` multiply in `dtype` (None: their own).

    A compiled step reads the setting when it is traced, so trace inside the block.
    """
    layers = [layer for layer in model._flatten_layers(include_self=False) if isinstance(layer, GatedDense)]
    for layer in layers:
        layer.matmul_dtype = dtype
    try:
        yield
    finally:
        for layer in layers:
            layer.matmul_dtype = None
