"""Training throughput: gated vs plain Dense, and bucketed vs padded batches.

Prints, measured in this one run:
1. training examples/second for tiny and small at max_len 128, the gated model
   versus the same model built with plain Dense layers, and the ratio;
2. tiny's SST-2 epoch time (a 9,600-example slice) with length-bucketed batches
   versus every batch padded to 128.

Usage: python benchmarks/throughput.py [--steps 30] [--glue-dir ../shared/glue]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from contextlib import contextmanager
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gated_bert.training.threads import configure_intra_op_threads  # noqa: E402

INTRA_OP_THREADS = configure_intra_op_threads()  # as `gated-bert train` does, before TensorFlow starts

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from gated_bert.config import GatedBertConfig  # noqa: E402
from gated_bert.layers import attention, encoder_block  # noqa: E402
from gated_bert.model import build_model  # noqa: E402


class PlainDense(keras.layers.Dense):
    """keras Dense accepting GatedDense's extra argument (ignored)."""

    def __init__(self, units, with_scores=False, **kwargs):
        super().__init__(units, **kwargs)


@contextmanager
def plain_dense():
    saved = attention.GatedDense, encoder_block.GatedDense
    attention.GatedDense = encoder_block.GatedDense = PlainDense
    try:
        yield
    finally:
        attention.GatedDense, encoder_block.GatedDense = saved


def compiled(model):
    model.compile(
        optimizer=keras.optimizers.AdamW(2e-5),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def examples_per_second(model, batch: int, length: int, steps: int) -> float:
    rng = np.random.default_rng(0)
    x = {
        "token_ids": rng.integers(1, 30000, size=(batch, length)).astype("int32"),
        "segment_ids": np.zeros((batch, length), "int32"),
    }
    y = rng.integers(0, 2, size=(batch,))
    dataset = tf.data.Dataset.from_tensors((x, y)).repeat(steps).cache()
    model.fit(dataset.take(3), verbose=0)  # trace and warm up
    start = time.perf_counter()
    model.fit(dataset, verbose=0)
    return batch * steps / (time.perf_counter() - start)


def gated_vs_plain(size: str, steps: int, rounds: int) -> None:
    arch = GatedBertConfig(model_size=size).architecture()
    keras.utils.set_random_seed(0)
    gated = compiled(build_model(arch, 2))
    with plain_dense():
        plain = compiled(build_model(arch, 2))
    batch = 32
    results = {"gated": [], "plain": []}
    for _ in range(rounds):  # interleaved, so drift on a shared machine hits both
        results["gated"].append(examples_per_second(gated, batch, 128, steps))
        results["plain"].append(examples_per_second(plain, batch, 128, steps))
    g, p = statistics.median(results["gated"]), statistics.median(results["plain"])
    print(
        f"{size:5s} max_len 128 batch {batch}: gated {g:7.1f} ex/s   plain Dense {p:7.1f} ex/s   "
        f"gated/plain = {g / p:.3f}  (cost {100 * (1 - g / p):+.1f}%)"
    )


def bucketed_vs_padded(glue_dir: Path, samples: int) -> None:
    from gated_bert.data.batching import make_dataset
    from gated_bert.data.prepare import prepare_data
    from gated_bert.training.fit import task_loss

    config = GatedBertConfig(
        model_size="tiny",
        task="sst2",
        data_dir=str(glue_dir),
        max_train_samples=samples,
        pruning_method="none",
        batch_size=96,
        verbose=0,
    )
    prepared = prepare_data(config)
    keras.utils.set_random_seed(0)
    model = build_model(config.architecture(), 2)
    model.compile(optimizer=keras.optimizers.AdamW(2e-5), loss=task_loss(prepared.task))
    times = {}
    for name, pad_to in (("bucketed", None), ("padded to 128", 128)):
        dataset = make_dataset(prepared.train, config.batch_size, seed=0, pad_to=pad_to)
        model.fit(dataset.take(3), verbose=0)
        start = time.perf_counter()
        model.fit(dataset, verbose=0)
        times[name] = time.perf_counter() - start
    lengths = prepared.train.lengths
    print(
        f"tiny SST-2 epoch ({samples} examples, mean length {lengths.mean():.1f} tokens): "
        f"bucketed {times['bucketed']:.1f} s, padded to 128 {times['padded to 128']:.1f} s, "
        f"ratio {times['bucketed'] / times['padded to 128']:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--samples", type=int, default=9600)
    parser.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR", "../shared/glue"))
    args = parser.parse_args()
    for size in ("tiny", "small"):
        gated_vs_plain(size, args.steps, args.rounds)
    if (Path(args.glue_dir) / "SST-2" / "train.tsv").is_file():
        bucketed_vs_padded(Path(args.glue_dir), args.samples)
    else:
        print(f"SST-2 not found under {args.glue_dir}: skipped the bucketing comparison (pass --glue-dir)")


if __name__ == "__main__":
    main()
