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

    Exactly round(sparsity * size) entries are 0. Among weights tied at the
    threshold the first in row-major order are kept. NaN counts as least
    important. One `np.partition` of the values and a comparison (2-3x faster
    than an argpartition: movement recomputes its masks at every step).
    """
    flat = np.asarray(importance).reshape(-1)
    if np.isnan(flat).any():
        flat = np.where(np.isnan(flat), -np.inf, flat)
    keep = keep_count(flat.size, sparsity)
    if keep >= flat.size:
        return np.ones(np.shape(importance), dtype=np.float32)
    if keep <= 0:
        return np.zeros(np.shape(importance), dtype=np.float32)
    cut = flat.size - keep
    threshold = _kth_smallest(flat, cut)  # the smallest value that is kept
    mask = flat > threshold
    missing = keep - int(np.count_nonzero(mask))
    if missing:
        mask[np.flatnonzero(flat == threshold)[:missing]] = True
    return mask.astype(np.float32).reshape(np.shape(importance))


def _kth_smallest(flat: np.ndarray, k: int):
    """The value at position k of the sorted array, as `np.partition(flat, k)[k]`.

    When more than half the entries share the lowest value (weights already pruned, scored
    -inf or PRUNED), np.partition's introselect slows down 10-30x (1M entries: 20-45 ms instead
    of 1.5 ms); then only the other entries are partitioned.
    """
    lowest = flat.min()
    floor = flat == lowest
    n_floor = int(np.count_nonzero(floor))
    if n_floor > k:
        return lowest
    if 2 * n_floor > flat.size:
        return np.partition(flat[~floor], k - n_floor)[k - n_floor]
    return np.partition(flat, k)[k]


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
