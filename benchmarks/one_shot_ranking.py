"""How well each ranking rule keeps a fine-tuned model: one-shot pruning, no training after it.

Loads a finished dense run's model (`--dense RUN_ID`, or its saved model
folder), accumulates each prunable kernel's W * dL/dW over the first
`--train-samples` training examples (no dropout, the model unchanged), then for
each sparsity and each rule sets every kernel's mask per layer with the
project's own `mask_for` and scores the task's dev split:

- random: `random_importance`, the control;
- magnitude: `magnitude_importance`, |W|;
- movement: `movement_importance` of -sum(W * dL/dW), what movement's scores
  are after these steps when trained by plain SGD (`movement_scores_optimizer sgd`);
- taylor |sum(W * dL/dW)| and fisher sum((W * dL/dW)^2) over the batches:
  sensitivity rules, as references for what the gradients know.

This separates a rule's ranking from the training that follows it: a rule
that loses against random here removes weights the model needs. Prints the
matmul GFLOP/s and one line per (sparsity, rule), with the pruned kernels' top
singular share s1/||W'||_F (mean over kernels, and of the last block's): how
far the kept weights line up into one direction. It also prints that share
for the summed gradient dL/dW itself, which is what movement's scores follow.

Usage: python benchmarks/one_shot_ranking.py --dense RUN_ID [--glue-dir ../shared/glue]
           [--train-samples 2000] [--sparsities 0.25,0.5,0.9]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.training_loop import matmul_gflops  # noqa: E402
from gated_bert.data.batching import EncodedSplit, pad_batch, sorted_order  # noqa: E402
from gated_bert.data.glue import load_task  # noqa: E402
from gated_bert.data.tokenizer import encode  # noqa: E402
from gated_bert.inference import predict_outputs  # noqa: E402
from gated_bert.metrics import compute_metrics  # noqa: E402
from gated_bert.model import prunable_kernels  # noqa: E402
from gated_bert.pruning.masks import mask_for  # noqa: E402
from gated_bert.pruning.methods.magnitude import magnitude_importance  # noqa: E402
from gated_bert.pruning.methods.movement import movement_importance  # noqa: E402
from gated_bert.pruning.methods.random import random_importance  # noqa: E402
from gated_bert.teacher import load_teacher  # noqa: E402


def summed_movement(classifier, tokenizer, task, split, batch_size: int = 32):
    """(sum, sum of squares) over batches of W * dL/dW, one array per prunable kernel (the model
    is not changed)."""
    import keras
    import tensorflow as tf

    token_ids, segment_ids = encode(tokenizer, split)
    encoded = EncodedSplit(token_ids, segment_ids, np.asarray(split.labels))
    kernels = [k.layer.kernel for k in prunable_kernels(classifier)]
    sums = [np.zeros(k.shape, np.float64) for k in kernels]
    squares = [np.zeros(k.shape, np.float64) for k in kernels]
    for index in sorted_order(encoded.lengths, batch_size):
        features, labels = pad_batch(encoded, index)
        with tf.GradientTape() as tape:
            outputs = classifier(features, training=False)
            if task.is_regression:
                loss = keras.losses.mean_squared_error(labels, outputs[:, 0])
            else:
                loss = keras.losses.sparse_categorical_crossentropy(labels, outputs, from_logits=True)
            loss = tf.reduce_mean(loss)
        for total, square, kernel, gradient in zip(sums, squares, kernels, tape.gradient(loss, kernels)):
            product = kernel.numpy() * gradient.numpy()
            total += product
            square += product**2
    return sums, squares


def top_share(matrix: np.ndarray) -> float:
    """s1 / ||matrix||_F: 1 for a rank-one matrix, about 2/sqrt(min(shape)) for i.i.d. noise."""
    singular = np.linalg.svd(matrix, compute_uv=False)
    return float(singular[0] / np.sqrt(np.sum(singular**2)))


def shares(kernels, matrices) -> str:
    """`top_share` averaged over all kernels and over the last block's."""
    values = [top_share(m) for m in matrices]
    last = kernels[-1].name.split("/")[0]
    in_last = [v for k, v in zip(kernels, values) if k.name.split("/")[0] == last]
    return f"{np.mean(values):.2f} (last block {np.mean(in_last):.2f})"


def rules(weights, movement, squares, seed: int) -> dict[str, list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    ones = [np.ones_like(w) for w in weights]
    return {
        "random": [random_importance(m, rng) for m in ones],
        "magnitude": [magnitude_importance(w, m) for w, m in zip(weights, ones)],
        "movement (sgd scores)": [movement_importance(-s) for s in movement],
        "taylor |sum W*g|": [np.abs(s) for s in movement],
        "fisher sum (W*g)^2": squares,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense", required=True, help="a finished dense run's id or its model folder")
    parser.add_argument(
        "--glue-dir",
        default=os.environ.get("GLUE_DIR", str(Path(__file__).resolve().parents[2] / "shared" / "glue")),
    )
    parser.add_argument("--train-samples", type=int, default=2000)
    parser.add_argument("--sparsities", default="0.25,0.5,0.9")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    predictor = load_teacher(args.dense).predictor
    classifier, tokenizer, config = predictor.classifier, predictor.tokenizer, predictor.config
    data = load_task(config.task, args.glue_dir, max_train_samples=args.train_samples)
    task, dev = data.task, next(iter(data.evals.values()))

    def dev_metric() -> float:
        outputs = predict_outputs(classifier, tokenizer, dev.text_a, dev.text_b)
        return compute_metrics(task, outputs, dev.labels)[task.main_metric]

    print(f"matmul {matmul_gflops():.0f} GFLOP/s; {config.init_from or config.model_size}, {task.name}, "
          f"W*dL/dW summed over {len(data.train)} training examples")  # fmt: skip
    print(f"dense: dev {task.main_metric} {dev_metric():.4f}")
    kernels = prunable_kernels(classifier)
    weights = [k.layer.kernel.numpy() for k in kernels]
    movement, squares = summed_movement(classifier, tokenizer, task, data.train)
    gradients = [np.divide(s, w, out=np.zeros_like(s), where=w != 0) for s, w in zip(movement, weights)]
    print(f"summed dL/dW: top singular share {shares(kernels, gradients)}; "
          f"the dense kernels: {shares(kernels, weights)}")  # fmt: skip
    print(f"{'sparsity':>8}  {'rule':<24} dev {task.main_metric:<8} kept kernels' top singular share")
    try:
        for sparsity in (float(s) for s in args.sparsities.split(",")):
            for name, importances in rules(weights, movement, squares, args.seed).items():
                pruned = [w * mask_for(i, sparsity).astype(w.dtype) for w, i in zip(weights, importances)]
                for kernel, weight in zip(kernels, pruned):
                    kernel.layer.kernel.assign(weight)
                print(
                    f"{sparsity:>8}  {name:<24} {dev_metric():<12.4f} {shares(kernels, pruned)}", flush=True
                )
    finally:
        for kernel, weight in zip(kernels, weights):
            kernel.layer.kernel.assign(weight)


if __name__ == "__main__":
    main()
