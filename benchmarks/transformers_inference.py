"""Inference latency, gated-bert against transformers on PyTorch (and both through ONNX Runtime).

Part of `benchmarks/against_transformers.py` (`--part inference`). The parent
tokenizes the task's dev set once with the checkpoint's WordPiece vocabulary
(the same ids for every side), sorts it by length and pads each batch of 64 to
its longest example; batch 1 reads the first `--latency-examples` dev examples
in dev order, unpadded. Each side runs in its own process, the sides take
turns, each with the machine's cores as threads, and reports per model: the
time of the whole dev set at batch 64 (best of 3 passes after a warm-up pass),
and the p50/p95 of one example at batch 1.

gated-bert's models, all from the checkpoint with masks set by magnitude on its
pretrained weights (speed does not depend on training; the head stays new):
the gated classifier itself (masks multiplied in, as trained), its compact
export dense, at 90% unstructured sparsity, and at the structured target
(`--structured-sparsity` of the heads and of the FFN neurons removed); the
compact export's outputs are compared with the gated model's on the whole dev set.
transformers: `BertForSequenceClassification` in eval mode under
`torch.inference_mode()`, eager, and `torch.compile`d with `--compile`.
ONNX Runtime, when `onnx`, `onnxruntime` (and `tf2onnx` for the TensorFlow
side) are installed: the transformers model exported by `torch.onnx.export`,
and the compact structured export converted by tf2onnx.
"""

from __future__ import annotations

import copy
import json
import math
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from unittest import mock

import numpy as np

REPO = Path(__file__).resolve().parents[1]
BATCH = 64
PASSES = 3


# --------------------------------------------------------------------- inputs
def write_inputs(
    folder: Path, task: str, glue_dir: str, max_len: int, latency_examples: int, path: Path
) -> int:
    """The dev set's ids, segments and the batch plans in one .npz; returns the example count."""
    from tokenizers import BertWordPieceTokenizer

    sys.path.insert(0, str(REPO))
    from gated_bert.data.glue import load_task

    dev = next(iter(load_task(task, glue_dir, max_train_samples=1).evals.values()))
    tokenizer = BertWordPieceTokenizer(str(folder / "vocab.txt"), lowercase=True)
    tokenizer.enable_truncation(max_len)
    texts = dev.text_a if dev.text_b is None else list(zip(dev.text_a, dev.text_b, strict=True))
    encoded = tokenizer.encode_batch(texts)
    lengths = np.array([len(e.ids) for e in encoded])
    ids = np.zeros((len(encoded), lengths.max()), dtype=np.int64)
    segments = np.zeros_like(ids)
    for row, e in enumerate(encoded):
        ids[row, : len(e.ids)] = e.ids
        segments[row, : len(e.ids)] = e.type_ids
    order = np.argsort(lengths, kind="stable")
    np.savez(
        path, ids=ids, segments=segments, lengths=lengths, order=order, latency=np.arange(latency_examples)
    )
    return len(encoded)


def batches(inputs) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(ids, segments, rows) of each batch of 64 in length order, padded to the batch's longest."""
    out = []
    order, lengths = inputs["order"], inputs["lengths"]
    for start in range(0, len(order), BATCH):
        rows = order[start : start + BATCH]
        width = int(lengths[rows].max())
        out.append((inputs["ids"][rows, :width], inputs["segments"][rows, :width], rows))
    return out


def singles(inputs) -> list[tuple[np.ndarray, np.ndarray]]:
    out = []
    for row in inputs["latency"]:
        width = int(inputs["lengths"][row])
        out.append((inputs["ids"][row : row + 1, :width], inputs["segments"][row : row + 1, :width]))
    return out


def outputs_of(call, inputs) -> np.ndarray:
    """Outputs for the whole dev set, in dev order."""
    outputs = None
    for ids, segments, rows in batches(inputs):
        result = call(ids, segments)
        if outputs is None:
            outputs = np.zeros((len(inputs["order"]), result.shape[-1]), dtype=np.float32)
        outputs[rows] = result
    return outputs


def measure(call, inputs) -> dict:
    """Dev set at batch 64 (best of PASSES after a warm-up) and batch-1 p50/p95, in ms; outputs in dev order."""
    full, one = batches(inputs), singles(inputs)
    outputs = outputs_of(call, inputs)  # also the warm-up: every width traced or compiled
    passes = []
    for _ in range(PASSES):
        started = time.perf_counter()
        for ids, segments, _rows in full:
            call(ids, segments)
        passes.append((time.perf_counter() - started) * 1000)
    for ids, segments in one:  # warm-up
        call(ids, segments)
    times = []
    for ids, segments in one:
        started = time.perf_counter()
        call(ids, segments)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "dev_ms": min(passes),
        "batch64_ms": min(passes) / len(full),
        "batch1_p50_ms": statistics.median(times),
        "batch1_p95_ms": float(np.percentile(times, 95)),
        "outputs": outputs.tolist(),
    }


# ---------------------------------------------------------------- gated-bert side
def gated_side(payload: dict) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(REPO))
    import tensorflow as tf

    from gated_bert.config import GatedBertConfig
    from gated_bert.export import compact
    from gated_bert.inference import forward_of
    from gated_bert.pruning.pruner import Pruner
    from gated_bert.tasks import TASKS
    from gated_bert.training.fit import build_classifier
    from gated_bert.training.settings import resolved_config

    inputs = dict(np.load(payload["inputs"]))
    task = TASKS[payload["task"]]

    def classifier_at(granularity: str, sparsity: float):
        config = GatedBertConfig(
            init_from=payload["folder"], task=payload["task"], max_len=payload["max_len"],
            pruning_method="magnitude", enable_pruning=True, pruning_granularity=granularity,
            dropout_rate=0.1,
        )  # fmt: skip
        config = resolved_config(config)
        classifier = build_classifier(config, task)
        if sparsity:
            Pruner(config, classifier, steps_per_epoch=1).apply(sparsity)
        return classifier, config.architecture().num_heads

    def tf_call(model):
        forward = forward_of(model)
        return lambda ids, segments: forward(
            tf.constant(ids, tf.int32), tf.constant(segments, tf.int32)
        ).numpy()

    dense, heads = classifier_at("weight", 0.0)
    head = compact.compact_arrays(dense, heads)
    np.savez(payload["head"], kernel=head["head/kernel"], bias=head["head/bias"])  # the torch side's head
    results = {"gated-bert, gated model (masks multiplied in)": measure(tf_call(dense), inputs)}
    structured = f"structured {payload['structured_sparsity']:.2f}"
    models = {
        "dense": dense,
        "90% unstructured": classifier_at("weight", 0.9)[0],
        structured: classifier_at("structured", payload["structured_sparsity"])[0],
    }
    for label, classifier in models.items():
        reference = np.array(outputs_of(tf_call(classifier), inputs))  # the gated model, these masks
        exported = compact.CompactModel(compact.compact_arrays(classifier, heads))
        calls = {f"gated-bert, compact export {label}": tf_call(exported)}
        if label != "90% unstructured":  # its compact model is dense inside: the dense row's speed
            onnx = _onnx_of_compact(exported, payload)
            if onnx is not None:
                calls[f"gated-bert, compact export {label}, ONNX Runtime"] = onnx
        for name, call in calls.items():
            results[name] = measure(call, inputs)
            difference = np.abs(np.array(results[name]["outputs"]) - reference).max()
            results[name]["max_difference_to_gated"] = float(difference)
    print("RESULT", json.dumps(results))


def _onnx_of_compact(exported, payload):
    """The compact model through tf2onnx and ONNX Runtime, or None (with a line) when unavailable."""
    try:
        import onnxruntime
        import tensorflow as tf
        import tf2onnx
    except ImportError as err:
        print(f"ONNX Runtime for the compact export: skipped ({err.name} is not installed)", file=sys.stderr)
        return None
    signature = [
        tf.TensorSpec((None, None), tf.int32, "token_ids"),
        tf.TensorSpec((None, None), tf.int32, "segment_ids"),
    ]
    # Weights as numpy arrays become constants of the traced graph (captured eager tensors would be inputs).
    frozen = copy.copy(exported)
    frozen.embeddings = {k: v.numpy() for k, v in exported.embeddings.items()}
    frozen.blocks = [
        {k: v if isinstance(v, int) else v.numpy() for k, v in b.items()} for b in exported.blocks
    ]
    frozen.pooler = tuple(t.numpy() for t in exported.pooler)
    frozen.head = tuple(t.numpy() for t in exported.head)
    function = tf.function(frozen.call, input_signature=signature)

    def erf_gelu(x, approximate=False):  # ONNX has Erf, not the Erfc of TensorFlow's exact GELU
        return 0.5 * x * (1.0 + tf.math.erf(x / math.sqrt(2.0)))

    try:
        with mock.patch.object(tf.nn, "gelu", erf_gelu):
            proto, _ = tf2onnx.convert.from_function(function, input_signature=signature, opset=17)
    except Exception as err:  # a converter that cannot express an op of this TensorFlow
        print(f"ONNX Runtime for the compact export: skipped (tf2onnx: {str(err)[:200]})", file=sys.stderr)
        return None
    return _ort_call(onnxruntime, proto.SerializeToString(), payload["threads"], np.int32)


def _ort_call(
    onnxruntime, model_bytes: bytes, threads: int, dtype, names=("token_ids", "segment_ids"), mask=None
):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])
    inputs = [i.name for i in session.get_inputs()]

    def call(ids, segments):
        feed = {inputs[0]: ids.astype(dtype), inputs[1]: segments.astype(dtype)}
        if len(inputs) > 2:
            feed[inputs[2]] = (ids != 0).astype(dtype)
        return session.run(None, feed)[0]

    return call


# ---------------------------------------------------------------- transformers side
def torch_side(payload: dict) -> None:
    import torch
    import transformers

    torch.set_num_threads(payload["threads"])
    inputs = dict(np.load(payload["inputs"]))
    num_labels = payload["num_labels"]
    model = transformers.BertForSequenceClassification.from_pretrained(
        payload["folder"], num_labels=num_labels
    )
    model.eval()
    with np.load(payload["head"]) as head, torch.no_grad():  # the gated side's new head: same model
        model.classifier.weight.copy_(torch.from_numpy(head["kernel"].T.copy()))
        model.classifier.bias.copy_(torch.from_numpy(head["bias"]))

    def torch_call(module):
        def call(ids, segments):
            ids = torch.from_numpy(ids)
            with torch.inference_mode():
                return module(
                    input_ids=ids, token_type_ids=torch.from_numpy(segments), attention_mask=(ids != 0).long()
                ).logits.numpy()

        return call

    results = {"transformers, PyTorch eager": measure(torch_call(model), inputs)}
    if payload["compile"]:
        results["transformers, PyTorch torch.compile"] = measure(
            torch_call(torch.compile(model, dynamic=True)), inputs
        )
    try:
        import onnxruntime
    except ImportError:
        print("ONNX Runtime for transformers: skipped (onnxruntime is not installed)", file=sys.stderr)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model.onnx"
            example = (
                torch.ones(2, 16, dtype=torch.long),
                torch.zeros(2, 16, dtype=torch.long),
                torch.ones(2, 16, dtype=torch.long),
            )
            axes = {0: "batch", 1: "length"}
            try:
                torch.onnx.export(
                    model, example, str(path), input_names=["input_ids", "token_type_ids", "attention_mask"],
                    output_names=["logits"], dynamic_axes={"input_ids": axes, "token_type_ids": axes, "attention_mask": axes},
                    opset_version=17, dynamo=False,
                )  # fmt: skip
                call = _ort_call(onnxruntime, path.read_bytes(), payload["threads"], np.int64)
            except Exception as err:
                print(
                    f"ONNX Runtime for transformers: skipped (torch.onnx.export: {str(err)[:200]})",
                    file=sys.stderr,
                )
            else:
                results["transformers, ONNX Runtime"] = measure(call, inputs)
    print("RESULT", json.dumps(results))


# ---------------------------------------------------------------- the parent
def run_side(function: str, payload: dict) -> dict:
    env = dict(os.environ, TF_NUM_INTRAOP_THREADS=str(payload["threads"]), TF_CPP_MIN_LOG_LEVEL="3")
    code = f"import json, sys; sys.path.insert(0, {str(REPO)!r}); from benchmarks.transformers_inference import {function}; {function}(json.loads(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, json.dumps(payload)], capture_output=True, text=True, env=env
    )
    for line in done.stderr.splitlines():
        if "skipped" in line:
            print("  " + line)
    return result_of(done, function)


def result_of(done: subprocess.CompletedProcess, name: str) -> dict:
    """The JSON of a side process's last `RESULT` line; exits naming `name` if there is none."""
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{name} failed:\n{done.stderr[-3000:]}")
    return json.loads(lines[-1][len("RESULT ") :])


def compare(args, folder: Path, threads: int, num_labels: int) -> None:
    with tempfile.TemporaryDirectory(prefix="inference-") as work:
        path = Path(work) / "inputs.npz"
        count = write_inputs(folder, args.task, args.glue_dir, args.max_len, args.latency_examples, path)
        payload = dict(
            inputs=str(path), head=str(Path(work) / "head.npz"), folder=str(folder), task=args.task, max_len=args.max_len, threads=threads,
            structured_sparsity=args.structured_sparsity, compile=args.compile, num_labels=num_labels,
        )  # fmt: skip
        print(
            f"\ninference: {args.task} dev, {count} examples at batch {BATCH} (length-sorted, padded per batch; "
            f"best of {PASSES}), batch 1 on the first {args.latency_examples}; {args.rounds} rounds",
            flush=True,
        )
        rounds: dict[str, list[dict]] = {}
        for _ in range(args.rounds):
            for function in ("gated_side", "torch_side"):
                for name, figures in run_side(function, payload).items():
                    rounds.setdefault(name, []).append(figures)
    table(rounds, count)


def table(rounds: dict[str, list[dict]], count: int) -> None:
    median = {
        name: {
            k: statistics.median(f[k] for f in figures)
            for k in ("dev_ms", "batch64_ms", "batch1_p50_ms", "batch1_p95_ms")
        }
        for name, figures in rounds.items()
    }
    reference = median["transformers, PyTorch eager"]
    print(
        "| model | dev set at batch 64 (ms) | examples/s | x transformers eager | batch 1 p50/p95 (ms) | x transformers eager |"
    )
    print("|---|---|---|---|---|---|")
    for name, m in median.items():
        print(
            f"| {name} | {m['dev_ms']:.0f} | {count / m['dev_ms'] * 1000:.0f} | {reference['dev_ms'] / m['dev_ms']:.2f}x "
            f"| {m['batch1_p50_ms']:.1f}/{m['batch1_p95_ms']:.1f} | {reference['batch1_p50_ms'] / m['batch1_p50_ms']:.2f}x |"
        )
    torch_out = np.array(rounds["transformers, PyTorch eager"][0]["outputs"])
    for name in ("gated-bert, gated model (masks multiplied in)", "gated-bert, compact export dense"):
        worst = np.abs(np.array(rounds[name][0]["outputs"]) - torch_out).max()
        scale = np.abs(torch_out).max()
        print(
            f"{'ok  ' if worst <= 1e-4 * max(1.0, scale) else 'FAIL'} {name}: logits equal transformers' (max |difference| {worst:.1e}, largest |logit| {scale:.2f})"
        )
    for name, figures in rounds.items():
        if "max_difference_to_gated" in figures[0]:
            worst = max(f["max_difference_to_gated"] for f in figures)
            print(
                f"{'ok  ' if worst <= 1e-5 else 'FAIL'} {name}: outputs equal the gated model's (max |difference| {worst:.1e}, tolerance 1e-5)"
            )
