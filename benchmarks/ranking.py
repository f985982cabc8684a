"""Mask ranking speed: `mask_for` against a partition of the whole array, in one run.

Movement recomputes every kernel's mask after every optimizer step, so the
ranking's host time is part of its epoch. Prints, for the kernels of a model
size (per-layer scope) and for one global ranking over all of them, the time of
`gated_bert.pruning.masks.mask_for` (a partition of only the values near the
threshold, bracketed by a sample) and of the same mask from a partition of the
whole array, the speed-up, and checks that both give the same masks; and the
per-layer re-ranking after one step (values moved a little, the target too)
from the previous ranking's `Cut`, as movement runs it.

Usage: python benchmarks/ranking.py [--sizes tiny,small] [--sparsity 0.7] [--repeats 20]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from gated_bert.config import MODEL_PRESETS
from gated_bert.pruning import masks
from gated_bert.pruning.masks import cut_mask, mask_for


def whole_partition_mask(importance: np.ndarray, sparsity: float) -> np.ndarray:
    """`mask_for` with the k-th value from a partition of the whole array (the code before the bracket)."""
    bracketed = masks._select
    masks._select = lambda flat, k, lowest=None: (np.partition(flat, k)[k], None)
    try:
        return mask_for(importance, sparsity)
    finally:
        masks._select = bracketed


def kernel_shapes(size: str) -> list[tuple[int, int]]:
    layers, d, _, dff = MODEL_PRESETS[size]
    return ([(d, d)] * 4 + [(d, dff), (dff, d)]) * layers


def best_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", default="tiny,small")
    parser.add_argument("--sparsity", type=float, default=0.7)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"sparsity {args.sparsity}; best of {args.repeats}; normal random importances")
    print(
        f"{'size':6s} {'ranking':30s} {'weights':>10s} {'mask_for ms':>12s} {'whole ms':>10s} {'speed-up':>9s}"
    )
    for size in args.sizes.split(","):
        arrays = [rng.normal(size=shape).astype(np.float32) for shape in kernel_shapes(size)]
        flat = np.concatenate([a.reshape(-1) for a in arrays])
        # movement's re-ranking: scores moved a little, the target by one step, the last cut known
        cuts = [cut_mask(a, args.sparsity)[1] for a in arrays]
        moved = [a + rng.normal(scale=1e-3, size=a.shape).astype(np.float32) for a in arrays]
        cases = {
            f"per layer ({len(arrays)} kernels)": (
                lambda: [mask_for(a, args.sparsity) for a in arrays],
                lambda: [whole_partition_mask(a, args.sparsity) for a in arrays],
            ),
            "global (one ranking)": (
                lambda: [mask_for(flat, args.sparsity)],
                lambda: [whole_partition_mask(flat, args.sparsity)],
            ),
            "per layer, after one step (Cut)": (
                lambda: [cut_mask(a, args.sparsity + 0.001, near=c)[0] for a, c in zip(moved, cuts)],
                lambda: [whole_partition_mask(a, args.sparsity + 0.001) > 0 for a in moved],
            ),
        }
        for name, (new, old) in cases.items():
            if not all(np.array_equal(a, b) for a, b in zip(new(), old())):
                raise SystemExit(f"{size} {name}: mask_for and the whole partition disagree")
            new_ms, old_ms = best_ms(new, args.repeats), best_ms(old, args.repeats)
            print(
                f"{size:6s} {name:30s} {flat.size:10d} {new_ms:12.2f} {old_ms:10.2f} {old_ms / new_ms:8.2f}x"
            )


if __name__ == "__main__":
    main()
