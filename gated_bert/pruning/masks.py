"""Masks from importances: the one place where top-k lives.

Ranking is a partition over numpy arrays (O(n), of only the values near the
threshold when a sample can bracket it), never Python lists or a full sort,
so it stays fast at base and large sizes and when movement re-ranks after
every step.
"""

from __future__ import annotations

import numpy as np

SAMPLE_SIZE = 4096  # values in the random sample that brackets the k-th value (see `_select`)


def keep_count(size: int, sparsity: float) -> int:
    """Weights kept at `sparsity`: size - round(sparsity * size), half rounding up."""
    return size - int(np.floor(sparsity * size + 0.5))


def mask_for(importance: np.ndarray, sparsity: float) -> np.ndarray:
    """0/1 mask (float32, importance's shape) keeping the most important weights.

    Exactly round(sparsity * size) entries are 0. Among weights tied at the
    threshold the first in row-major order are kept. NaN counts as least
    important. The threshold comes from a partition of the values near it
    (`_select`) and the mask from one comparison (no argpartition).
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
    of 1.5 ms); then only the other entries are searched.
    """
    lowest = flat.min()
    floor = flat == lowest
    n_floor = int(np.count_nonzero(floor))
    if n_floor > k:
        return lowest
    if 2 * n_floor > flat.size:
        return _select(np.compress(~floor, flat), k - n_floor)
    return _select(flat, k)


def sample_positions(size: int) -> np.ndarray:
    """The positions `_select` samples in an array of `size` values: SAMPLE_SIZE random ones,
    with replacement, from a fixed seed (the masks never depend on them, only the speed)."""
    return np.random.default_rng(0).integers(0, size, SAMPLE_SIZE)


def _select(flat: np.ndarray, k: int):
    """`np.partition(flat, k)[k]`, partitioning only the values near it (exact).

    A sorted random sample of `SAMPLE_SIZE` values (fixed seed; drawn with replacement, so
    the binomial margin holds) gives two values that bracket the k-th with high probability
    (4 binomial standard deviations either side); a strided sample aliased with the kernels'
    rows (tiny's 2^20 weights sampled every 256th: one column per kernel) and missed the
    bracket, which cost a whole partition (100-117 instead of 4-9 ms per SPT update);
    three counting passes confirm that they do, and only the values between them
    are partitioned (`mask_for` on 131,072 values 3.5x faster here, on all of
    tiny's kernels 2.2x: `benchmarks/ranking.py`; movement recomputes its masks
    after every step). If the sample misled, the whole array is partitioned, so
    the result never depends on the sample.
    """
    n = flat.size
    if n < 4 * SAMPLE_SIZE:
        return np.partition(flat, k)[k]
    sample = np.sort(flat[sample_positions(n)])
    m, share = sample.size, k / n
    margin = 4.0 * np.sqrt(m * share * (1.0 - share)) + 2.0
    low_at, high_at = int(np.floor(share * m - margin)), int(np.ceil(share * m + margin))
    low = sample[low_at] if low_at >= 0 else -np.inf
    high = sample[high_at] if high_at < m else np.inf
    below = int(np.count_nonzero(flat < low))
    inside = (flat >= low) & (flat <= high)
    if not below <= k < below + int(np.count_nonzero(inside)):
        return np.partition(flat, k)[k]  # the sample's bracket missed the k-th value
    if low == high:
        return low
    return np.partition(np.compress(inside, flat), k - below)[k - below]


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
