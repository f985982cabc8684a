"""Epoch time of each pruning method relative to the baseline, in one run.

Trains the tiny model on a slice of SST-2 for `--epochs` epochs (default 4) with
the pruning window on all of them (to 0.9 at the last), and times every epoch
after the first end to end (training steps, mask updates, SPT probing,
evaluation), with each method's default mask updates (by step). Methods run
interleaved over several rounds; a round's ratio is the median of the method's
timed epochs over the baseline's median in the same round, and the median of
the per-round ratios is reported (a drift of the shared machine's speed hits
both sides of a ratio; several epochs per run damp a single disturbed one).

Usage: python benchmarks/pruning_overhead.py [--samples 9600] [--rounds 3] [--epochs 4]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gated_bert.training.threads import configure_intra_op_threads  # noqa: E402

INTRA_OP_THREADS = configure_intra_op_threads()  # as `gated-bert train` does, before TensorFlow starts

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


def epoch_seconds(method: str, prepared, samples: int, epochs: int = 4) -> list[float]:
    """Seconds of each of the run's epochs after the first (all inside the pruning window)."""
    config = GatedBertConfig(
        model_size="tiny",
        task="sst2",
        data_dir="unused",
        max_train_samples=samples,
        epochs=epochs,
        pruning_method=method,
        pruning_start_epoch=1,
        pruning_end_epoch=epochs,
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
    return [timer.seconds[epoch] for epoch in range(1, epochs)]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=9600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=4, help="per run; every epoch after the first is timed")
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
    runs: dict[str, list[list[float]]] = {m: [] for m in METHODS}  # per round: the timed epochs
    for _ in range(args.rounds):
        for method in METHODS:
            runs[method].append(epoch_seconds(method, prepared, args.samples, args.epochs))
    print(
        f"tiny, SST-2 slice of {args.samples}, batch 96, epochs 2-{args.epochs} of {args.epochs} (all inside "
        f"the pruning window, to 0.9 at the last), {args.rounds} interleaved rounds; TensorFlow intra-op "
        f"threads: {INTRA_OP_THREADS}; ratio = the median of the method's epochs / the baseline's in the "
        "same round (median over rounds; per round in brackets); the fastest epochs' ratio (the least "
        "disturbed by other load, as timeit's minimum):"
    )
    for method in METHODS:
        medians = [statistics.median(epochs) for epochs in runs[method]]
        ratios = [t / statistics.median(b) for t, b in zip(medians, runs["none"])]
        per_round = " ".join(f"{r:.2f}" for r in ratios)
        fastest, fastest_base = min(map(min, runs[method])), min(map(min, runs["none"]))
        print(
            f"  {method:9s} {statistics.median(medians):6.2f} s   "
            f"x{statistics.median(ratios):.2f} of baseline  [{per_round}]  "
            f"fastest epochs: {fastest:.2f} s, x{fastest / fastest_base:.2f}"
        )
    print(
        "  mask updates by step (the default): a ranking every 10 steps (movement: every step); "
        "SPT also: 1 extra forward pass per training step (a repeat of the training pass)"
    )


if __name__ == "__main__":
    main()
