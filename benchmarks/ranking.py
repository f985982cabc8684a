"""Mask ranking speed: `mask_for` against a partition of the whole array, in one run.

Movement recomputes every kernel's mask after every optimizer step, so the
ranking's host time is part of its epoch. Prints, for the kernels of a model
size (per-layer scope) and for one global ranking over all of them, the time of
`gated_bert.pruning.masks.mask_for` (a partition of only the values near the
threshold, bracketed by a sample) and of the same mask from a partition of the
whole array, the speed-up, and checks that both give the same masks; and the
per-layer re-ranking after one step (values moved a little, the target too)
from the previous ranking's `Cut`, as movement runs it ("new ms": `mask_for`,
"before ms": the whole partition). With `--directions N`
(movement's `movement_remove_directions`), also the scores without their top N
directions for every kernel: computed in one TensorFlow function, as the train
step does, against numpy on the host (the code before), and checks they agree.

A size is a preset or LAYERSxD_MODELxDFF (6x384x1536 is all-MiniLM-L6-v2).

Usage: python benchmarks/ranking.py [--sizes tiny,small] [--sparsity 0.7] [--repeats 20]
                                    [--directions 4]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from gated_bert.config import MODEL_PRESETS  # noqa: E402
from gated_bert.pruning import masks  # noqa: E402
from gated_bert.pruning.masks import cut_mask, mask_for  # noqa: E402


def whole_partition_mask(importance: np.ndarray, sparsity: float) -> np.ndarray:
    """`mask_for` with the k-th value from a partition of the whole array (the code before the bracket)."""
    bracketed = masks._select
    masks._select = lambda flat, k, lowest=None: (np.partition(flat, k)[k], None)
    try:
        return mask_for(importance, sparsity)
    finally:
        masks._select = bracketed


def host_without_top_directions(scores: np.ndarray, kernel: np.ndarray, count: int) -> np.ndarray:
    """`movement.without_top_directions` in numpy, on the host (the code before the graph)."""
    sign = np.sign(kernel).astype(scores.dtype, copy=False)
    signed = scores * sign
    wide = signed.shape[0] <= signed.shape[1]
    matrix = signed if wide else signed.T
    probe = np.random.default_rng(0).standard_normal((matrix.shape[1], count + 4)).astype(matrix.dtype)
    basis, _ = np.linalg.qr(matrix @ probe)
    for _ in range(3):
        basis, _ = np.linalg.qr(matrix @ (matrix.T @ basis))
    left, _, _ = np.linalg.svd(basis.T @ matrix, full_matrices=False)
    top = basis @ left[:, :count]
    rest = matrix - top @ (top.T @ matrix)
    return (rest if wide else rest.T) * sign


def directions_cases(shapes, count: int, rng):
    """(graph, host) callables giving every kernel's cleaned scores, for `best_ms`."""
    import tensorflow as tf

    from gated_bert.pruning.methods.movement import without_top_directions

    scores = [rng.normal(size=shape).astype(np.float32) for shape in shapes]
    kernels = [rng.normal(size=shape).astype(np.float32) for shape in shapes]
    variables = [tf.Variable(a) for a in scores + kernels]
    n = len(shapes)
    graph = tf.function(
        lambda: [without_top_directions(s, k, count) for s, k in zip(variables[:n], variables[n:])]
    ).get_concrete_function()
    return (
        lambda: [np.asarray(t) for t in graph()],
        lambda: [host_without_top_directions(s, k, count) for s, k in zip(scores, kernels)],
    )


def kernel_shapes(size: str) -> list[tuple[int, int]]:
    """A model's encoder kernel shapes from a preset name or LAYERSxD_MODELxDFF (ValueError else)."""
    if size in MODEL_PRESETS:
        layers, d, _, dff = MODEL_PRESETS[size]
    else:
        try:
            layers, d, dff = (int(part) for part in size.split("x"))
        except ValueError:
            raise ValueError(
                f"{size!r} is neither a preset ({', '.join(MODEL_PRESETS)}) nor LAYERSxD_MODELxDFF, e.g. 6x384x1536"
            ) from None
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
    parser.add_argument("--directions", type=int, default=0, help="also time movement_remove_directions N")
    args = parser.parse_args()
    try:
        shapes = {size: kernel_shapes(size) for size in args.sizes.split(",")}
    except ValueError as error:
        parser.error(f"--sizes: {error}")  # one line, exit code 2
    rng = np.random.default_rng(0)
    if args.directions:
        from benchmarks.training_loop import matmul_gflops

        print(f"matmul {matmul_gflops():.0f} GFLOP/s (TensorFlow, 2048x2048 float32)")
    print(f"sparsity {args.sparsity}; best of {args.repeats}; normal random importances")
    print(
        f"{'size':10s} {'ranking':30s} {'weights':>10s} {'new ms':>12s} {'before ms':>10s} {'speed-up':>9s}"
    )
    for size, kernel_shapes_of_size in shapes.items():
        arrays = [rng.normal(size=shape).astype(np.float32) for shape in kernel_shapes_of_size]
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
                f"{size:10s} {name:30s} {flat.size:10d} {new_ms:12.2f} {old_ms:10.2f} {old_ms / new_ms:8.2f}x"
            )
        if args.directions:
            graph, host = directions_cases(kernel_shapes(size), args.directions, rng)
            for a, b in zip(graph(), host()):
                if not np.allclose(a, b, rtol=0, atol=1e-4 * np.abs(b).max()):
                    raise SystemExit(f"{size}: the graph's and the host's cleaned scores disagree")
            graph_ms, host_ms = best_ms(graph, args.repeats), best_ms(host, args.repeats)
            name = f"without {args.directions} directions"
            print(
                f"{size:10s} {name:30s} {flat.size:10d} {graph_ms:12.2f} {host_ms:10.2f} {host_ms / graph_ms:8.2f}x"
            )


if __name__ == "__main__":
    main()
