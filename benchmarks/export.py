"""Export: artifact size and CPU latency of the compact model vs the dense one.

For tiny and small, at 0%, 50%, 90% and 99% sparsity of single weights,
whole FFN neurons and whole attention heads (masks set by magnitude on a
freshly built model: sizes and speed do not depend on training), prints in one
run: the encoder's stored bytes and the whole model file, dense vs compact, and
the p50/p95 latency of one forward pass at batch 1 and 64 (SST-2-like
sentences of 24 tokens). Then, end to end, `predict` through the same
tokenization and batching code on the 872 SST-2 dev sentences (best of 3), for
tiny at `structured` 0.75. The machine's matmul GFLOP/s comes first.

Usage: python benchmarks/export.py [--glue-dir ../shared/glue] [--sizes tiny,small]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks.training_loop import matmul_gflops  # noqa: E402
from gated_bert.config import GatedBertConfig  # noqa: E402
from gated_bert.data.prepare import prepare_data  # noqa: E402
from gated_bert.export import compact  # noqa: E402
from gated_bert.export.exporter import dense_encoder_bytes  # noqa: E402
from gated_bert.inference import forward_of, predict_outputs  # noqa: E402
from gated_bert.pruning.pruner import Pruner  # noqa: E402
from gated_bert.tasks import TASKS  # noqa: E402
from gated_bert.training.fit import build_classifier  # noqa: E402

SPARSITIES = (0.0, 0.5, 0.9, 0.99)
GRANULARITIES = ("weight", "neuron", "head")


def timings(call, batch, repeats: int) -> tuple[float, float]:
    """p50 and p95 of `repeats` calls, in ms (after one warm-up call)."""
    call(*batch).numpy()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call(*batch).numpy()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), float(np.percentile(times, 95))


def batch_of(size: int, vocab: int, length: int = 26):
    rng = np.random.default_rng(0)
    ids = rng.integers(5, vocab, size=(size, length)).astype(np.int32)
    ids[:, 0], ids[:, -1] = 2, 3  # [CLS] ... [SEP]
    return tf.constant(ids), tf.zeros_like(tf.constant(ids))


def model_at(config: GatedBertConfig, granularity: str, sparsity: float):
    config = config.replace(pruning_method="magnitude", enable_pruning=True, pruning_granularity=granularity)
    classifier = build_classifier(config, TASKS["sst2"])
    if sparsity:
        Pruner(config, classifier, steps_per_epoch=1).apply(sparsity)
    return classifier


def file_bytes(arrays) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "model.npz"
        compact.save_arrays(arrays, path)
        return path.stat().st_size


def size_table(size: str, vocab: int) -> None:
    config = GatedBertConfig(model_size=size, vocab_size=vocab, task="sst2", pruning_method="magnitude")
    heads = config.architecture().num_heads
    dense = model_at(config, "weight", 0.0)
    dense_encoder = dense_encoder_bytes(dense)
    dense_file = sum(
        int(np.prod(v.shape)) * 4 for v in dense.weights if not v.path.endswith(("/mask", "/scores"))
    )
    batches = {n: batch_of(n, vocab) for n in (1, 64)}
    dense_times = {n: timings(forward_of(dense), batches[n], 30 if n == 1 else 10) for n in (1, 64)}
    print(
        f"\n{size} (vocab {vocab}): dense encoder {dense_encoder / 1e6:.2f} MB, dense weights {dense_file / 1e6:.1f} MB"
    )
    print(
        f"dense forward p50/p95: batch 1 {dense_times[1][0]:.2f}/{dense_times[1][1]:.2f} ms, "
        f"batch 64 {dense_times[64][0]:.1f}/{dense_times[64][1]:.1f} ms"
    )
    print(
        "| granularity | sparsity | encoder MB (x smaller) | file MB | batch 1 p50/p95 ms (x faster) "
        "| batch 64 p50/p95 ms (x faster) |"
    )
    print("|---|---|---|---|---|---|")
    for granularity in GRANULARITIES:
        for sparsity in SPARSITIES:
            arrays = compact.compact_arrays(model_at(config, granularity, sparsity), heads)
            model = compact.CompactModel(arrays)
            encoder = compact.encoder_bytes(arrays)
            cells = []
            for n in (1, 64):
                p50, p95 = timings(forward_of(model), batches[n], 30 if n == 1 else 10)
                cells.append(f"{p50:.2f}/{p95:.2f} ({dense_times[n][0] / p50:.2f}x)")
            print(
                f"| {granularity} | {sparsity:.2f} | {encoder / 1e6:.2f} ({dense_encoder / encoder:.1f}x) "
                f"| {file_bytes(arrays) / 1e6:.1f} | {cells[0]} | {cells[1]} |"
            )


def end_to_end(glue_dir: str) -> None:
    config = GatedBertConfig(model_size="tiny", task="sst2", data_dir=glue_dir, pruning_method="magnitude")
    prepared = prepare_data(config)
    config = config.replace(vocab_size=prepared.tokenizer.get_vocab_size())
    texts = prepared.data.evals["dev"].text_a
    dense = model_at(config, "weight", 0.0)
    structured = model_at(config, "structured", 0.75)
    exported = compact.CompactModel(compact.compact_arrays(structured, config.architecture().num_heads))
    best = {}
    for name, model in (("dense", dense), ("compact structured 0.75", exported)):
        predict_outputs(model, prepared.tokenizer, texts)  # warm-up: traces every batch width
        runs = []
        for _ in range(3):
            started = time.perf_counter()
            predict_outputs(model, prepared.tokenizer, texts)
            runs.append(time.perf_counter() - started)
        best[name] = min(runs)
    same = np.abs(
        predict_outputs(structured, prepared.tokenizer, texts)
        - predict_outputs(exported, prepared.tokenizer, texts)
    ).max()
    print(
        f"\nend to end, predict on the {len(texts)} SST-2 dev sentences (best of 3, same tokenization and batching):"
    )
    for name, seconds in best.items():
        print(f"  {name}: {seconds * 1000:.0f} ms")
    print(
        f"  ratio {best['dense'] / best['compact structured 0.75']:.2f}x; max |output difference| gated vs compact {same:.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--glue-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "glue"))
    parser.add_argument("--sizes", default="tiny,small")
    args = parser.parse_args()
    print(f"matmul: {matmul_gflops():.0f} GFLOP/s (TensorFlow, 2048x2048 float32)")
    for size in args.sizes.split(","):
        size_table(size, vocab=20225)
    if Path(args.glue_dir, "SST-2").is_dir():
        end_to_end(args.glue_dir)


if __name__ == "__main__":
    main()
