"""How well SPT's per-weight estimate ranks, for each `spt_credit`, against exhaustive ablation.

A 1-block micro model (d 16, 32 FFN neurons) is trained 3 epochs on the tests' synthetic SST-2
(`tests/conftest.py`), then frozen; half of its FFN neurons are made misleading for magnitude
(ffn_in columns x8, ffn_out rows x0.02). Truth: the loss increase on all 320 training examples
when one weight of ffn_in (512 weights) alone is removed. SPT probes as in training (epsilon 0.01
of every kernel, ~10 of ffn_in's weights per probe, a new mini-batch of 32 each step). Printed
per credit: Spearman with the truth after N probes, the split-half reliability (Spearman between
two runs with different probe seeds and batch orders), the noise of a weight's score (its variance
between the two runs over the variance of scores across weights: 0 = repeatable, ~1 = noise), and
magnitude's Spearman. Also probing
one role per step (`spt_explore_per_layer`: fewer weights behind each reward).

With `--matmul-precisions float32,bfloat16` every variant also runs with the probe's two passes
(the loss and the probed loss) in bfloat16 matmuls, as a train step with `matmul_precision
bfloat16` runs them: the difference of the two losses is the reward, so this shows how much
bfloat16 rounding adds to it.

Usage: python benchmarks/spt_estimator.py [--steps 100,400,1600] [--matmul-precisions float32]
Run from the repository root (it borrows the tests' synthetic data writer).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from scipy.stats import spearmanr  # noqa: E402

from gated_bert.config import SPT_CREDITS  # noqa: E402
from gated_bert.data.batching import pad_batch  # noqa: E402
from gated_bert.data.prepare import prepare_data  # noqa: E402
from gated_bert.pruning.pruner import Pruner  # noqa: E402
from gated_bert.training import precision  # noqa: E402
from gated_bert.training.fit import fit, task_loss  # noqa: E402
from tests.conftest import micro_config, write_sst2  # noqa: E402

NEURONS = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", default="100,400,1600", help="probe counts, comma-separated")
    parser.add_argument(
        "--matmul-precisions", default="float32", help="float32 and/or bfloat16, comma-separated"
    )
    parser.add_argument("--credits", default=",".join(SPT_CREDITS), help="credits to run, comma-separated")
    args = parser.parse_args()
    steps_list = [int(s) for s in args.steps.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        root = write_sst2(Path(folder))
        config = micro_config(
            data_dir=str(root), epochs=3, num_layers=1, num_heads=2, dff=NEURONS, learning_rate=3e-3
        )
        prepared = prepare_data(config)
        model = fit(config, prepared).classifier
    trained = [v.numpy().copy() for v in model.weights]
    split = prepared.train
    loss_fn = task_loss(prepared.task)
    every = pad_batch(split, np.arange(len(split)))

    def setup(credit: str, seed: int, per_layer: bool = False):
        for variable, value in zip(model.weights, trained):
            variable.assign(value)
        spt = config.replace(
            pruning_method="spt",
            enable_pruning=True,
            spt_epsilon=0.01,
            spt_credit=credit,
            spt_explore_per_layer=per_layer,
            seed=seed,
        )
        pruner = Pruner(spt, model, steps_per_epoch=1)
        roles = {k.role: k for k in pruner.kernels}
        misleading = np.random.default_rng(0).choice(NEURONS, NEURONS // 2, replace=False)
        w_in, w_out = roles["ffn_in"].layer.kernel.numpy(), roles["ffn_out"].layer.kernel.numpy()
        w_in[:, misleading] *= 8.0
        w_out[misleading, :] *= 0.02
        roles["ffn_in"].layer.kernel.assign(w_in)
        roles["ffn_out"].layer.kernel.assign(w_out)
        return pruner, roles["ffn_in"]

    pruner, ffn_in = setup("shared", 0)
    full = float(loss_fn(every[1], model(every[0], training=False)))
    kept = ffn_in.layer.mask.numpy()
    truth = []
    for cell in np.ndindex(*kept.shape):
        cut = kept.copy()
        cut[cell] = 0.0
        ffn_in.layer.mask.assign(cut)
        truth.append(float(loss_fn(every[1], model(every[0], training=False))) - full)
    ffn_in.layer.mask.assign(kept)
    magnitude_rho = spearmanr(np.abs(ffn_in.layer.kernel.numpy()).reshape(-1), truth)[0]

    def estimate(credit: str, per_layer: bool, steps: int, seed: int, low: str) -> np.ndarray:
        pruner, ffn_in = setup(credit, seed, per_layer)
        explorer = pruner.method.explorer
        explorer.exploring.assign(True)
        kernels = [k.layer.kernel for k in pruner.kernels]

        @tf.function
        def train_like_step(features, labels):
            batch_loss = lambda: loss_fn(labels, model(features, training=False))  # noqa: E731
            with precision.matmul_dtype(model, None if low == "float32" else low):  # read while traced
                with tf.GradientTape() as tape:
                    loss = batch_loss()
                return explorer.probe(batch_loss, loss, tape.gradient(loss, kernels))

        rng = np.random.default_rng(seed)
        for _ in range(steps):
            train_like_step(*pad_batch(split, rng.choice(len(split), 32, replace=False)))
        return pruner.method.importances("per_layer")[pruner.kernels.index(ffn_in)].reshape(-1)

    print(f"magnitude: Spearman with the truth {magnitude_rho:.3f} (misled by construction)")
    print(
        "| credit | probed per step | matmuls | probes | Spearman(SPT, truth) | split-half Spearman "
        "| score variance between runs / across weights |"
    )
    print("|---|---|---|---|---|---|---|")
    # per layer: one role per step (ffn_in every 6th step): fewer weights behind each reward
    credits = args.credits.split(",")
    variants = [(credit, False) for credit in credits] + [
        (c, True) for c in ("shared", "saliency") if c in credits
    ]
    for (credit, per_layer), low, steps in itertools.product(
        variants, args.matmul_precisions.split(","), steps_list
    ):
        a, b = estimate(credit, per_layer, steps, 1, low), estimate(credit, per_layer, steps, 2, low)
        rho, reliability = spearmanr(a, truth)[0], spearmanr(a, b)[0]
        noise = np.var(a - b) / 2 / max(np.var((a + b) / 2), 1e-30)  # a weight's score variance, relative
        scope = "one role" if per_layer else "every kernel"
        print(
            f"| {credit} | {scope} | {low} | {steps} | {rho:.3f} | {reliability:.3f} | {noise:.2f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
