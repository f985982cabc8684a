"""Masks from importances: the one place where top-k lives.

Ranking is a partition over numpy arrays (O(n), of only the values near the
threshold when a sample, or the previous ranking's `Cut`, can bracket it),
never Python lists or a full sort, so it stays fast at base and large sizes
and when movement re-ranks after every step.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import lru_cache

import numpy as np

SAMPLE_SIZE = 4096  # values in the random sample that brackets the k-th value (see `_select`)
NEAR_VALUES = 2048  # values a `Cut` width aims to bracket around the previous threshold


def keep_count(size: int, sparsity: float) -> int:
    """Weights kept at `sparsity`: size - round(sparsity * size), half rounding up."""
    return size - int(np.floor(sparsity * size + 0.5))


@dataclass(frozen=True)
class Cut:
    """Where a mask was cut: its threshold, a half-width around it expected to hold about
    `NEAR_VALUES` values, and its position (how many values lay below it). Given back to the
    next ranking of the same, slightly moved, values (movement re-ranks after every optimizer
    step, at a target that moves too) it brackets the new threshold without a sample, centred
    where the change of position puts it at the measured density; the mask never depends on it,
    only the speed."""

    threshold: float
    width: float
    position: int = -1  # -1: unknown (then the bracket is centred on the threshold)


def mask_for(importance: np.ndarray, sparsity: float) -> np.ndarray:
    """0/1 mask (float32, importance's shape) keeping the most important weights.

    Exactly round(sparsity * size) entries are 0. Among weights tied at the
    threshold the first in row-major order are kept. NaN counts as least
    important. The threshold comes from a partition of the values near it
    (`_select`) and the mask from one comparison (no argpartition).
    """
    return cut_mask(importance, sparsity)[0].astype(np.float32)


def cut_mask(
    importance: np.ndarray, sparsity: float, near: Cut | None = None
) -> tuple[np.ndarray, Cut | None]:
    """`mask_for` as a boolean mask, and where it cut (None when nothing or everything is kept).

    `near`: the cut of the previous ranking of these weights; when the new threshold lies within
    its width only the values around it are partitioned (no sample, no sort). Same mask either way.
    """
    shape = np.shape(importance)
    flat = np.asarray(importance).reshape(-1)
    keep = keep_count(flat.size, sparsity)
    if keep >= flat.size:
        return np.ones(shape, dtype=bool), None
    if keep <= 0:
        return np.zeros(shape, dtype=bool), None
    if near is not None:
        found = _near_mask(flat, keep, near)
        if found is not None:
            return found[0].reshape(shape), found[1]
    if np.isnan(flat).any():
        flat = np.where(np.isnan(flat), -np.inf, flat)
    threshold, cut = _kth_smallest(flat, flat.size - keep)  # the smallest value that is kept
    mask = flat >= threshold
    extra = int(np.count_nonzero(mask)) - keep
    if extra:  # ties at the threshold: only the first ones in row-major order are kept
        tied = np.flatnonzero(flat == threshold)
        mask[tied[tied.size - extra :]] = False
    return mask.reshape(shape), None if cut is None else replace(cut, position=flat.size - keep)


def _near_mask(flat: np.ndarray, keep: int, near: Cut) -> tuple[np.ndarray, Cut] | None:
    """The mask keeping `keep` values when the threshold lies within `near`'s width of its old
    place and at most an eighth of the values do; else None.

    Fewer passes than the general path: NaN fails `flat >= low`, so it counts below the bracket
    as the -inf it stands for elsewhere (no NaN pass); how many values exceed or equal the
    threshold follows from the counts and the partitioned bracket (no count of the mask), so
    without ties crossing the cut the mask is one comparison (no pass to find tied values).
    """
    centre = near.threshold
    if near.position >= 0:  # the target moved: so does the threshold, by 1/density per position
        centre += (flat.size - keep - near.position) * 2.0 * near.width / NEAR_VALUES
    low, high = centre - near.width, centre + near.width
    if not (np.isfinite(low) and np.isfinite(high)):
        return None
    at_least = flat >= low
    n_at_least = int(np.count_nonzero(at_least))
    inside = np.logical_and(at_least, flat <= high, out=at_least)
    n_inside = int(np.count_nonzero(inside))
    j = flat.size - keep - (flat.size - n_at_least)  # the threshold's place among the bracket's values
    if not 0 <= j < n_inside or n_inside > flat.size // 8:
        return None
    values = np.partition(np.compress(inside, flat), j)
    threshold = values[j]
    upper = values[j + 1 :]
    n_above = n_at_least - n_inside + int(np.count_nonzero(upper > threshold))
    n_tied = 1 + int(np.count_nonzero(values[:j] == threshold)) + int(np.count_nonzero(upper == threshold))
    if n_above + n_tied == keep:  # every value tied at the threshold is kept: one comparison
        return flat >= threshold, _cut(threshold, low, high, n_inside, flat.size - keep)
    mask = flat > threshold  # ties at the threshold: the first ones in row-major order are kept
    mask[np.flatnonzero(flat == threshold)[: keep - n_above]] = True
    return mask, _cut(threshold, low, high, n_inside, flat.size - keep)


def _kth_smallest(flat: np.ndarray, k: int) -> tuple[float, Cut | None]:
    """The value at position k of the sorted array, as `np.partition(flat, k)[k]`, and its `Cut`.

    When more than half the entries share the lowest value (weights already pruned, scored
    -inf or PRUNED), np.partition's introselect slows down by an order of magnitude; then only
    the other entries are searched.
    """
    lowest = flat.min()
    floor = flat == lowest
    n_floor = int(np.count_nonzero(floor))
    if n_floor > k:
        return lowest, None
    if 2 * n_floor > flat.size:
        return _select(np.compress(~floor, flat), k - n_floor)
    return _select(flat, k, lowest if n_floor else None)


@lru_cache(maxsize=64)
def sample_positions(size: int) -> np.ndarray:
    """The positions `_select` samples in an array of `size` values: SAMPLE_SIZE random ones,
    with replacement, from a fixed seed (the masks never depend on them, only the speed)."""
    positions = np.random.default_rng(0).integers(0, size, SAMPLE_SIZE)
    positions.flags.writeable = False  # shared by every call (cached)
    return positions


def _select(flat: np.ndarray, k: int, lowest=None) -> tuple[float, Cut | None]:
    """`np.partition(flat, k)[k]`, partitioning only the values near it (exact), and its `Cut`.

    A sorted random sample of `SAMPLE_SIZE` values (fixed seed; drawn with replacement, so
    the binomial margin holds) gives two values that bracket the k-th with high probability
    (4 binomial standard deviations either side; a strided sample would alias with the
    kernels' rows); three counting passes confirm that they do, and only the values between
    them are partitioned (`benchmarks/ranking.py`). If the sample misled, the whole
    array is partitioned, so the result never depends on the sample.

    `lowest`: the array's minimum when more than k values are above it (the k-th is above it):
    a bracket starting at it would hold every tied lowest value (SPT's pruned weights, -inf, a
    third of them at 30% sparsity) and partition them all, at introselect's slow pace with ties,
    so the bracket starts just above it.
    """
    n = flat.size
    if n < 4 * SAMPLE_SIZE:
        return np.partition(flat, k)[k], None
    sample = np.sort(flat[sample_positions(n)])
    m, share = sample.size, k / n
    margin = 4.0 * np.sqrt(m * share * (1.0 - share)) + 2.0
    low_at, high_at = int(np.floor(share * m - margin)), int(np.ceil(share * m + margin))
    low = sample[low_at] if low_at >= 0 else -np.inf
    high = sample[high_at] if high_at < m else np.inf
    if lowest is not None and low <= lowest:
        low = np.nextafter(lowest, np.inf)
    value, inside = _between(flat, k, low, high, limit=n)
    if value is None:
        return np.partition(flat, k)[k], None  # the sample's bracket missed the k-th value
    return value, _cut(value, low, high, inside)


def _between(flat: np.ndarray, k: int, low, high, limit: int) -> tuple[float | None, int]:
    """The k-th smallest value when it lies in [low, high] and at most `limit` values do, found
    by partitioning only those; else None. Also how many values lie in [low, high]."""
    below = int(np.count_nonzero(flat < low))
    inside = (flat >= low) & (flat <= high)
    count = int(np.count_nonzero(inside))
    if not below <= k < below + count or count > limit:
        return None, count
    if low == high:
        return low, count
    return np.partition(np.compress(inside, flat), k - below)[k - below], count


def _cut(value, low, high, inside: int, position: int = -1) -> Cut:
    """A `Cut` at `value` (at `position`) whose width holds about NEAR_VALUES values, at the
    density that `inside` values between `low` and `high` show."""
    span = float(high) - float(low)
    width = span * NEAR_VALUES / (2 * inside) if np.isfinite(span) and inside else 0.0
    return Cut(float(value), width, position)


def global_masks(
    importances: list[np.ndarray], sparsity: float, near: Cut | None = None
) -> tuple[list[np.ndarray], Cut | None]:
    """One threshold across all arrays: round(sparsity * total) zeros overall (boolean masks);
    and its `Cut`."""
    flat = np.concatenate([np.asarray(i).reshape(-1) for i in importances])  # the arrays' common dtype
    mask, cut = cut_mask(flat, sparsity, near)
    return split_like(mask, importances), cut


def split_like(flat: np.ndarray, arrays: list) -> list[np.ndarray]:
    """Cut a flat array into pieces shaped like `arrays` (the inverse of concatenating them)."""
    out, start = [], 0
    for array in arrays:
        size = int(np.prod(np.shape(array)))
        out.append(flat[start : start + size].reshape(np.shape(array)))
        start += size
    return out
