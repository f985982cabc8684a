"""Epoch time of each pruning method relative to the baseline, in one run.

Trains the tiny model on a slice of SST-2 with the pruning window on every epoch
(to 0.9 at the last), with each method's default mask updates (by step), and
times every epoch after the first from its first batch to its end (training
steps, mask updates, SPT probing, evaluation) in the real loop
(`gated_bert.training.fit.fit`); the time from the epoch's start to its first
batch is printed apart (`epoch_seconds` says why).

The methods' epochs are interleaved: each method trains in its own process and
the processes take turns epoch by epoch (one trains, the others wait), so a
change of the shared machine's speed hits every method's epoch k alike, where
whole runs one after the other differed by up to 1.6x here. A method's ratio is
the median over epochs (and `--rounds`) of its epoch k's time over the
baseline's epoch k; the ratio of the fastest epochs is printed too.

Usage: python benchmarks/pruning_overhead.py [--samples 4800] [--epochs 8] [--rounds 1]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

from gated_bert.pruning.methods import method_names  # noqa: E402  (numpy-only: no TensorFlow here)
from gated_bert.training.threads import configure_intra_op_threads  # noqa: E402

INTRA_OP_THREADS = configure_intra_op_threads()  # as `gated-bert train` does; the children inherit it

METHODS = method_names()  # the baseline and every registered method


def epoch_seconds(
    method: str, glue_dir: str, samples: int, epochs: int, turns: list, index: int
) -> tuple[list[float], list[float]]:
    """Seconds of each epoch after the first (all inside the pruning window), from its first
    batch to its end (training, mask updates, evaluation), and of each epoch's start before its
    first batch; runs in a child process, training only while it holds the turn (`turns[index]`
    set), passing it on after each epoch and, after the last, once its fit has returned.

    The epoch's start is timed apart: while `fit` created a data iterator per epoch, that
    sometimes took 1-20 s here (4-5 of 35 epoch starts per run; 0 of 35 since `fit` keeps one
    iterator for the run, `make_dataset(repeat=True)`).
    """
    import keras

    from gated_bert.config import GatedBertConfig
    from gated_bert.data import prepare as prepare_module
    from gated_bert.training import fit as fit_module

    config = GatedBertConfig(
        model_size="tiny",
        task="sst2",
        data_dir=glue_dir,
        max_train_samples=samples,
        epochs=epochs,
        pruning_method=method,
        pruning_start_epoch=1,
        pruning_end_epoch=epochs,
        end_sparsity=0.9,
        batch_size=96,
        verbose=0,
    )
    prepared = prepare_module.prepare_data(config)
    seconds: dict[int, float] = {}
    begin: dict[int, float] = {}
    stalls: list[float] = []  # from the epoch's start to its first batch (the data iterator's creation)

    def on_epoch_begin(epoch, logs=None):
        turns[index].wait()
        begin[epoch] = time.perf_counter()

    def on_train_batch_begin(batch, logs=None):
        if batch == 0:
            now = time.perf_counter()
            stalls.append(now - begin[len(begin) - 1])
            begin[len(begin) - 1] = now

    def on_epoch_end(epoch, logs=None):
        seconds[epoch] = time.perf_counter() - begin[epoch]
        if epoch + 1 < epochs:
            _pass_turn(turns, index)

    original = fit_module.PruningTrainer.fit

    def fit_with_turns(self, *args, callbacks=None, **kwargs):  # first and last callback
        first = keras.callbacks.LambdaCallback(on_epoch_begin=on_epoch_begin)
        last = keras.callbacks.LambdaCallback(
            on_epoch_end=on_epoch_end, on_train_batch_begin=on_train_batch_begin
        )
        return original(self, *args, callbacks=[first, *callbacks, last], **kwargs)

    fit_module.PruningTrainer.fit = fit_with_turns
    try:
        fit_module.fit(config, prepared)
    finally:
        _pass_turn(turns, index)  # also when it failed: the others go on
    return [seconds[epoch] for epoch in range(1, epochs)], stalls[1:]


def _pass_turn(turns: list, index: int) -> None:
    turns[index].clear()
    turns[(index + 1) % len(turns)].set()


def interleaved_round(glue_dir: str, samples: int, epochs: int) -> dict[str, tuple[list[float], list[float]]]:
    """Every method's timed epochs and epoch starts, the methods taking turns epoch by epoch."""
    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive a fork
    manager = context.Manager()
    turns = [manager.Event() for _ in METHODS]
    turns[0].set()
    with context.Pool(len(METHODS)) as pool:
        jobs = [
            pool.apply_async(epoch_seconds, (method, glue_dir, samples, epochs, turns, i))
            for i, method in enumerate(METHODS)
        ]
        return {method: job.get() for method, job in zip(METHODS, jobs)}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=4800)
    parser.add_argument("--epochs", type=int, default=8, help="per run; every epoch after the first is timed")
    parser.add_argument("--rounds", type=int, default=1, help="interleaved runs of every method")
    parser.add_argument("--glue-dir", default=os.environ.get("GLUE_DIR", "../shared/glue"))
    args = parser.parse_args()
    if not (Path(args.glue_dir) / "SST-2" / "train.tsv").is_file():
        raise SystemExit(f"SST-2 not found under {args.glue_dir}; pass --glue-dir")
    if args.epochs < 2:
        raise SystemExit(f"--epochs {args.epochs}: at least 2 (the first epoch is not timed)")
    epochs: dict[str, list[float]] = {m: [] for m in METHODS}
    starts: dict[str, list[float]] = {m: [] for m in METHODS}
    for _ in range(args.rounds):
        for method, (seconds, stalls) in interleaved_round(args.glue_dir, args.samples, args.epochs).items():
            epochs[method] += seconds
            starts[method] += stalls
    print(
        f"tiny, SST-2 slice of {args.samples}, batch 96, epochs 2-{args.epochs} of {args.epochs} (all inside "
        f"the pruning window, to 0.9 at the last), {args.rounds} round(s); the methods take turns epoch by "
        f"epoch, each in its own process; TensorFlow intra-op threads: {INTRA_OP_THREADS}; "
        "ratio = the median over epochs of the method's epoch k / the baseline's epoch k (quartiles in "
        "brackets); the fastest epochs' ratio (the least disturbed by other load, as timeit's minimum):"
    )
    base = epochs["none"]
    for method in METHODS:
        ratios = [t / b for t, b in zip(epochs[method], base)]
        low, _, high = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (ratios[0],) * 3
        print(
            f"  {method:9s} {statistics.median(epochs[method]):6.2f} s   "
            f"x{statistics.median(ratios):.3f} of baseline  [{low:.3f} {high:.3f}]  "
            f"fastest epochs: {min(epochs[method]):.2f} s, x{min(epochs[method]) / min(base):.3f}"
        )
        print(
            "    epochs (s): "
            + " ".join(f"{t:.2f}" for t in epochs[method])
            + "; epoch starts before the first batch (s, not in the epochs): "
            + " ".join(f"{t:.3f}" for t in starts[method])
        )
    print(
        "  mask updates by step (the default): a ranking every 10 steps (movement: after every step, "
        "inside the train step); SPT also: 1 extra forward pass per training step (a repeat of the "
        "training pass)"
    )


if __name__ == "__main__":
    main()
