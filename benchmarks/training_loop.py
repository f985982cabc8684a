"""The real training loop's speed: examples/s and model FLOP utilisation, in one run.

Prints, all measured in this one run on this machine:
1. the machine's float32 matmul GFLOP/s (TensorFlow, 2048 x 2048), measured
   right before every run (the host's speed can change between runs);
2. for each model size and pruning method, the examples/s of epoch 2 of
   `gated_bert.training.fit.fit` (the loop `gated-bert train` runs: callbacks,
   pruning inside the window, evaluation) on an SST-2 slice, and its model FLOP
   utilisation: the encoder's forward+backward FLOPs of the real (non-padding)
   tokens per second, as a share of the matmul peak measured just before it
   (float32, and the peak of the precision the run's matmuls used);
3. the switchable speed settings before/after (dense vs lazy embedding
   updates, BERT's 30,522-row vocabulary vs the tokenizer's, XLA on/off,
   float32 vs the default matmul precision, which is bfloat16 on CPUs with
   native bfloat16 arithmetic; the bfloat16 matmul peak is printed too).
Configurations are interleaved over `--rounds` rounds; medians are printed.

Usage: python benchmarks/training_loop.py [--samples 4800] [--rounds 3] [--sizes tiny,small]
       [--only "small none;small magnitude"] [--glue-dir ../shared/glue]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
import warnings
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gated_bert.training.threads import available_cpus, configure_intra_op_threads  # noqa: E402

INTRA_OP_THREADS = configure_intra_op_threads()  # as `gated-bert train` does, before TensorFlow starts

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gated_bert.config import GatedBertConfig  # noqa: E402
from gated_bert.data.prepare import prepare_data  # noqa: E402
from gated_bert.pruning.methods import method_names  # noqa: E402
from gated_bert.training import precision  # noqa: E402
from gated_bert.training.fit import fit  # noqa: E402
from gated_bert.training.settings import with_machine_settings  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def matmul_gflops(n: int = 2048, seconds: float = 3.0, dtype=tf.float32) -> float:
    """The machine's matmul GFLOP/s: one n x n matmul at a time on all CPUs, or, when each op runs
    on one thread (INTRA_OP_THREADS "1", as `gated-bert train` sets on 2 CPUs), one per CPU side by
    side, so the peak counts every CPU either way."""
    copies = available_cpus() if INTRA_OP_THREADS == "1" else 1
    pairs = [(tf.cast(tf.random.normal((n, n)), dtype), tf.cast(tf.random.normal((n, n)), dtype))] * copies
    step = tf.function(lambda pairs: [tf.matmul(a, b) for a, b in pairs])
    step(pairs)[0].numpy()
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        result = step(pairs)
        count += 1
    result[0].numpy()
    return 2 * n**3 * count * copies / (time.perf_counter() - start) / 1e9


def encoder_flops(config: GatedBertConfig, lengths: np.ndarray) -> float:
    """Forward+backward (3x forward) FLOPs of the encoder on examples of these real lengths."""
    arch = config.architecture()
    d, dff, layers = arch.d_model, arch.dff, arch.num_layers
    dense = lengths.sum() * (8 * d * d + 4 * d * dff)  # q, k, v, output; ffn in and out
    attention = (lengths.astype(np.float64) ** 2).sum() * 4 * d  # scores and weighted sum
    return 3.0 * layers * (dense + attention)


def epoch2_speed(config: GatedBertConfig, prepared) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = fit(config, prepared).rows
    return rows[-1]["examples_per_second"]


def configurations(sizes: list[str], samples: int, glue_dir: str) -> dict[str, GatedBertConfig]:
    base = dict(task="sst2", data_dir=glue_dir, max_train_samples=samples, epochs=2, batch_size=96, verbose=0)
    window = dict(pruning_start_epoch=2, pruning_end_epoch=2, end_sparsity=0.9)
    out = {}
    for size in sizes:
        for method in method_names():
            extra = window if method != "none" else {}
            out[f"{size} {method}"] = GatedBertConfig(model_size=size, pruning_method=method, **base, **extra)
        baseline = out[f"{size} none"]
        out[f"{size} none, dense embedding updates"] = baseline.replace(embedding_updates="dense")
        out[f"{size} none, vocab 30522"] = baseline.replace(vocab_size=30522)
        out[f"{size} none, dense + vocab 30522 (before)"] = baseline.replace(
            embedding_updates="dense", vocab_size=30522
        )
        out[f"{size} none, XLA"] = baseline.replace(jit_compile="true")
        out[f"{size} none, float32 matmuls"] = baseline.replace(matmul_precision="float32")
        out[f"{size} magnitude, float32 matmuls"] = out[f"{size} magnitude"].replace(
            matmul_precision="float32"
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=4800)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--sizes", default="tiny,small")
    parser.add_argument(
        "--only",
        default=None,
        help="semicolon-separated configuration names to run (e.g. 'small none;small spt')",
    )
    parser.add_argument(
        "--glue-dir", default=os.environ.get("GLUE_DIR", str(REPO.parent / "shared" / "glue"))
    )
    args = parser.parse_args()
    configs = configurations(args.sizes.split(","), args.samples, args.glue_dir)
    if args.only:
        wanted = set(args.only.split(";")) | {f"{size} none" for size in args.sizes.split(",")}
        configs = {name: config for name, config in configs.items() if name in wanted}
    prepared = {name: prepare_data(config) for name, config in configs.items()}
    # The machine's speed can change between runs (a shared host), so the matmul peak is
    # measured right before every run and each run's MFU uses its own peak.
    flops_per_example = {
        name: encoder_flops(config, prepared[name].train.lengths) / len(prepared[name].train.lengths)
        for name, config in configs.items()
    }
    speeds: dict[str, list[float]] = {name: [] for name in configs}
    peaks_by_run: dict[str, list[float]] = {name: [] for name in configs}
    low_peaks_by_run: dict[str, list[float]] = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, config in configs.items():
            peaks_by_run[name].append(matmul_gflops(seconds=1.0))
            low_peaks_by_run[name].append(matmul_gflops(seconds=1.0, dtype=tf.bfloat16))
            speeds[name].append(epoch2_speed(config, prepared[name]))
    report(configs, speeds, peaks_by_run, low_peaks_by_run, flops_per_example)


def report(configs, speeds, peaks_by_run, low_peaks_by_run, flops_per_example) -> None:
    for label, by_run in (("float32", peaks_by_run), ("bfloat16", low_peaks_by_run)):
        peaks = [peak for run_peaks in by_run.values() for peak in run_peaks]
        print(
            f"{label} matmul: median {statistics.median(peaks):.1f} GFLOP/s, {min(peaks):.1f}-{max(peaks):.1f} "
            f"over {len(peaks)} measurements, one before each run (2048 x 2048, TensorFlow, "
            f"{os.cpu_count()} cores; bfloat16 {'native' if precision.native_bfloat16() else 'emulated'} here; "
            f"TensorFlow intra-op threads: {INTRA_OP_THREADS})",
            flush=True,
        )
    print(
        f"{'configuration':45s} {'matmuls':>8s} {'examples/s':>10s} {'vs baseline':>11s} {'MFU f32':>8s} "
        f"{'MFU own':>8s}  per round (ex/s @ float32 GFLOP/s)"
    )
    for name, config in configs.items():
        speed = statistics.median(speeds[name])
        baseline = statistics.median(speeds[f"{config.model_size} none"])
        low = with_machine_settings(config).matmul_precision
        own = low_peaks_by_run[name] if low == "bfloat16" else peaks_by_run[name]
        mfu = statistics.median(
            v * flops_per_example[name] / (p * 1e9) for v, p in zip(speeds[name], peaks_by_run[name])
        )
        mfu_own = statistics.median(
            v * flops_per_example[name] / (p * 1e9) for v, p in zip(speeds[name], own)
        )
        rounds = " ".join(f"{v:.0f}@{p:.0f}" for v, p in zip(speeds[name], peaks_by_run[name]))
        print(
            f"{name:45s} {low:>8s} {speed:10.1f} {baseline / speed:10.2f}x {mfu:8.1%} {mfu_own:8.1%}  {rounds}",
            flush=True,
        )
    print(
        "('vs baseline' is the epoch-time ratio to the same size's default baseline; MFU counts real tokens "
        "only, each run against the matmul peak measured just before it: 'f32' the float32 peak, 'own' the "
        "peak of the precision its matmuls ran in; medians over rounds)"
    )


if __name__ == "__main__":
    main()
