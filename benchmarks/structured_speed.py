"""Accuracy and speed side by side: a structured-pruned run's compact export against a dense run.

Loads two finished runs' models from MLflow (the tracking URI of the environment):
`--dense` (e.g. the dense teacher of an experiments grid) and `--pruned` (a run
trained with `--pruning-granularity structured`), exports the pruned one compact
(pruned heads and FFN neurons removed), and times `predict` end to end, text in
and scores out (tokenization, batching at 64 and the forward pass), on the
SST-2 dev sentences: the dense model as saved, its own compact export, and the
pruned run's compact export, median of `--rounds` passes after one warm-up
pass. Prints the matmul GFLOP/s, each model's dev accuracy, seconds and
sentences/s, and the speed-ups; checks that the compact export's outputs equal
its gated model's.

Usage: python benchmarks/structured_speed.py --dense RUN_ID --pruned RUN_ID [--glue-dir ../shared/glue]
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
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks.training_loop import matmul_gflops  # noqa: E402
from gated_bert import tracking  # noqa: E402
from gated_bert.data.glue import load_task  # noqa: E402
from gated_bert.export import compact  # noqa: E402
from gated_bert.inference import TextPredictor, predict_outputs  # noqa: E402


def load(run_id: str, folder: Path) -> TextPredictor:
    return TextPredictor.from_files(*tracking.model_files(run_id, folder / run_id))


def exported(predictor: TextPredictor) -> TextPredictor:
    arrays = compact.compact_arrays(predictor.classifier, predictor.config.architecture().num_heads)
    return TextPredictor(compact.CompactModel(arrays), predictor.tokenizer, predictor.config)


def seconds(predictor: TextPredictor, texts: list[str], rounds: int) -> float:
    predict_outputs(predictor.classifier, predictor.tokenizer, texts)  # warm-up: traces every width
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        predict_outputs(predictor.classifier, predictor.tokenizer, texts)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dense", required=True, help="run id of the dense model")
    parser.add_argument("--pruned", required=True, help="run id of the structured-pruned model")
    parser.add_argument("--glue-dir", default=str(Path(__file__).resolve().parents[2] / "shared" / "glue"))
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(f"matmul: {matmul_gflops():.0f} GFLOP/s (TensorFlow, 2048x2048 float32)")
    dev = load_task("sst2", args.glue_dir).evals["dev"]
    texts, labels = list(dev.text_a), np.asarray(dev.labels)
    with tempfile.TemporaryDirectory() as tmp:
        dense, pruned = load(args.dense, Path(tmp)), load(args.pruned, Path(tmp))
        models = {
            "dense (as saved)": dense,
            "dense, compact export": exported(dense),
            "structured, compact export": exported(pruned),
        }
        gap = np.abs(
            predict_outputs(pruned.classifier, pruned.tokenizer, texts)
            - predict_outputs(models["structured, compact export"].classifier, pruned.tokenizer, texts)
        ).max()
        print(
            f"{len(texts)} SST-2 dev sentences, predict end to end (text in, scores out), median of {args.rounds}"
        )
        print("| model | dev accuracy | seconds | sentences/s | speed-up vs dense |")
        print("|---|---:|---:|---:|---:|")
        base = None
        for name, model in models.items():
            took = seconds(model, texts, args.rounds)
            outputs = predict_outputs(model.classifier, model.tokenizer, texts)
            accuracy = float(np.mean(outputs.argmax(-1) == labels))
            base = base or took
            print(f"| {name} | {accuracy:.4f} | {took:.3f} | {len(texts) / took:.0f} | {base / took:.2f}x |")
        print(f"max |output difference|, structured gated vs its compact export: {gap:.1e}")


if __name__ == "__main__":
    main()
