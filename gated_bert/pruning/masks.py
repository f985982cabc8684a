"""Masks from importances: the one place where top-k lives.

Ranking is `np.argpartition` over whole arrays (O(n)), never Python lists,
so it stays fast at base and large sizes.
"""

from __future__ import annotations

import numpy as np


def keep_count(size: int, sparsity: float) -> int:
    """Weights kept at `sparsity`: size - round(sparsity * size), half rounding up."""
    return size - int(np.floor(sparsity * size + 0.5))


def mask_for(importance: np.ndarray, sparsity: float) -> np.ndarray:
    """0/1 mask (float32, importance's shape) keeping the most important weights.

    Exactly round(sparsity * size) entries are 0. Ties at the threshold are
    broken by position (argpartition is deterministic for the same input).
    """
    flat = np.asarray(importance).reshape(-1)
    keep = keep_count(flat.size, sparsity)
    mask = np.zeros(flat.size, dtype=np.float32)
    if keep >= flat.size:
        mask[:] = 1.0
    elif keep > 0:
        mask[np.argpartition(-flat, keep - 1)[:keep]] = 1.0
    return mask.reshape(np.shape(importance))


def global_masks(importances: list[np.ndarray], sparsity: float) -> list[np.ndarray]:
    """One threshold across all arrays: round(sparsity * total) zeros overall."""
    flat = np.concatenate([np.asarray(i, dtype=np.float64).reshape(-1) for i in importances])
    return split_like(mask_for(flat, sparsity), importances)


def split_like(flat: np.ndarray, arrays: list) -> list[np.ndarray]:
    """Cut a flat array into pieces shaped like `arrays` (the inverse of concatenating them)."""
    out, start = [], 0
    for array in arrays:
        size = int(np.prod(np.shape(array)))
        out.append(flat[start : start + size].reshape(np.shape(array)))
        start += size
    return out
