"""Epoch time of each pruning method relative to the baseline, in one run.

Trains the tiny model on a slice of SST-2 for 2 epochs with the pruning window
on both epochs, and times epoch 2 end to end (training steps, mask updates,
SPT probing, evaluation), with each method's default mask updates (by step).
Methods run interleaved over several rounds; the median of the per-round ratios to the
baseline is reported (a drift of the shared machine's speed hits both sides of a ratio).

Usage: python benchmarks/pruning_overhead.py [--samples 9600] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from gated_bert.config import GatedBertConfig  # noqa: E402
from gated_bert.pruning.methods import method_names  # noqa: E402
from gated_bert.training import fit as fit_module  # noqa: E402

METHODS = method_names()  # the baseline and every registered method


class WholeEpochTimer(keras.callbacks.Callback):
    """Wall time from the first callback at epoch begin to the last at epoch end."""

    def __init__(self):
        super().__init__()
        self.begin: dict[int, float] = {}
        self.seconds: dict[int, float] = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.begin[epoch] = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds[epoch] = time.perf_counter() - self.begin[epoch]


def epoch_seconds(method: str, prepared, samples: int) -> float:
    config = GatedBertConfig(
        model_size="tiny",
        task="sst2",
        data_dir="unused",
        max_train_samples=samples,
        epochs=2,
        pruning_method=method,
        pruning_start_epoch=1,
        pruning_end_epoch=2,
        end_sparsity=0.9,
        batch_size=96,
        verbose=0,
    )
    timer = WholeEpochTimer()
    original = fit_module.PruningTrainer.fit

    def fit_with_timer(self, *args, callbacks=None, **kwargs):  # timer first and last
        first = keras.callbacks.LambdaCallback(on_epoch_begin=timer.on_epoch_begin)
        last = keras.callbacks.LambdaCallback(on_epoch_end=timer.on_epoch_end)
        return original(self, *args, callbacks=[first, *callbacks, last], **kwargs)

    fit_module.PruningTrainer.fit = fit_with_timer
    try:
        fit_module.fit(config, prepared)
    finally:
        fit_module.PruningTrainer.fit = original
    return timer.seconds[1]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=9600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR", "../shared/glue"))
    args = parser.parse_args()
    if not (Path(args.glue_dir) / "SST-2" / "train.tsv").is_file():
        raise SystemExit(f"SST-2 not found under {args.glue_dir}; pass --glue-dir")
    base = GatedBertConfig(
        model_size="tiny",
        task="sst2",
        data_dir=args.glue_dir,
        max_train_samples=args.samples,
        pruning_method="none",
        verbose=0,
    )
    prepared = fit_module.prepare_data(base)
    times: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(args.rounds):
        for method in METHODS:
            times[method].append(epoch_seconds(method, prepared, args.samples))
    print(
        f"tiny, SST-2 slice of {args.samples}, batch 96, epoch 2 (inside the pruning window), "
        f"{args.rounds} interleaved rounds; ratio = the method's epoch / the baseline's epoch of the "
        "same round (median over rounds; per round in brackets); the fastest epochs' ratio (the least "
        "disturbed by other load, as timeit's minimum):"
    )
    for method in METHODS:
        ratios = [t / b for t, b in zip(times[method], times["none"])]
        per_round = " ".join(f"{r:.2f}" for r in ratios)
        print(
            f"  {method:9s} {statistics.median(times[method]):6.2f} s   "
            f"x{statistics.median(ratios):.2f} of baseline  [{per_round}]  "
            f"fastest epochs: {min(times[method]):.2f} s, x{min(times[method]) / min(times['none']):.2f}"
        )
    print(
        "  mask updates by step (the default): a ranking every 10 steps (movement: every step); "
        "SPT also: 1 extra forward pass per training step (a repeat of the training pass)"
    )


if __name__ == "__main__":
    main()
