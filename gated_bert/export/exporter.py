"""`export_run`: a run's model for inference only, as an MLflow pyfunc model directory.

`keras`: the gated model with its masks applied (pruned weights exactly 0).
`compact`: pruned heads and neurons removed, sparse kernels stored as CSR (see
`export/compact.py`). Either way the directory loads with
`mlflow.pyfunc.load_model(DIR)` and answers like `runs:/<id>/model`; the same
model is logged to the run as `<format>_model`. The exporter checks that the
exported model predicts what the run's model predicts, and reports sizes and
CPU latency (dense vs exported, batches of 1 and 64 sentences, through the same
tokenization and batching code) on stdout and in the run.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gated_bert.errors import ConfigError, DataError
from gated_bert.export import FORMATS
from gated_bert.inference import TextPredictor, predict_outputs

LATENCY_BATCHES = (1, 64)
MB = 1e6


@dataclass
class ExportReport:
    run_id: str
    directory: Path
    format: str
    dense_file_bytes: int
    file_bytes: int
    embedding_bytes: int  # of the exported file: the token embedding's share
    dense_parameters: int
    parameters: int
    dense_encoder_bytes: int
    encoder_bytes: int
    max_abs_difference: float
    latency_ms: dict[int, tuple[float, float]] = field(default_factory=dict)  # batch -> (dense, exported)
    forward_ms: dict[int, tuple[float, float]] = field(default_factory=dict)  # the model's forward pass only

    def lines(self) -> list[str]:
        ratio = self.dense_encoder_bytes / max(self.encoder_bytes, 1)
        out = [
            f"exported run {self.run_id} ({self.format}) to {self.directory}",
            f"encoder weights: {self.dense_encoder_bytes / MB:.2f} MB -> {self.encoder_bytes / MB:.2f} MB "
            f"({ratio:.1f}x smaller)",
            f"model file: {self.dense_file_bytes / MB:.2f} MB -> {self.file_bytes / MB:.2f} MB "
            f"(token embedding {self.embedding_bytes / MB:.2f} MB of it; --float16 halves that)",
            f"parameters: {self.dense_parameters:,} -> {self.parameters:,} stored values",
            f"predictions: max |difference| of outputs {self.max_abs_difference:.2e}",
        ]
        for batch, (dense, exported) in self.latency_ms.items():
            out.append(
                f"CPU latency, batch {batch} (tokenize + batch + predict): dense {dense:.1f} ms -> "
                f"exported {exported:.1f} ms ({dense / exported:.2f}x faster)"
            )
        for batch, (dense, exported) in self.forward_ms.items():
            out.append(
                f"CPU forward pass, batch {batch}: dense {dense:.2f} ms -> exported {exported:.2f} ms "
                f"({dense / exported:.2f}x faster)"
            )
        return out

    def metrics(self) -> dict[str, float]:
        prefix = f"export_{self.format}_"
        values = {
            "encoder_bytes": self.encoder_bytes,
            "dense_encoder_bytes": self.dense_encoder_bytes,
            "file_bytes": self.file_bytes,
            "dense_file_bytes": self.dense_file_bytes,
            "parameters": self.parameters,
            "max_abs_difference": self.max_abs_difference,
        }
        for batch, (dense, exported) in self.latency_ms.items():
            values[f"latency_ms_batch{batch}_dense"] = dense
            values[f"latency_ms_batch{batch}"] = exported
        for batch, (dense, exported) in self.forward_ms.items():
            values[f"forward_ms_batch{batch}_dense"] = dense
            values[f"forward_ms_batch{batch}"] = exported
        return {prefix + k: float(v) for k, v in values.items()}


def dense_encoder_bytes(classifier) -> int:
    """Bytes of the encoder blocks' weights as a dense float32 model stores them (kernels, biases,
    layer norms; masks and movement scores are not model weights)."""
    from gated_bert.model import encoder_blocks

    total = 0
    for block in encoder_blocks(classifier):
        for variable in block.weights:
            if not variable.path.endswith(("/mask", "/scores")):
                total += int(np.prod(variable.shape)) * 4
    return total


def probe_texts(tokenizer, count: int, words: int = 24, seed: int = 0) -> list[str]:
    """`count` sentences of vocabulary words (fixed seed): inputs for checks and timings."""
    vocabulary = sorted(t for t in tokenizer.get_vocab() if t.isalpha())
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(vocabulary, size=words)) for _ in range(count)]


def latency_ms(predictor: TextPredictor, texts: list[str], repeats: int) -> float:
    """Median wall time of predicting `texts` (tokenization and batching included)."""
    predict_outputs(predictor.classifier, predictor.tokenizer, texts)  # warm-up (tracing)
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        predict_outputs(predictor.classifier, predictor.tokenizer, texts)
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def padded_batch(tokenizer, texts: list[str]):
    """`texts` encoded and padded to their longest: (token_ids, segment_ids) int32 tensors."""
    import tensorflow as tf

    from gated_bert.data.tokenizer import PAD_ID

    encodings = tokenizer.encode_batch(texts)
    width = max(len(e.ids) for e in encodings)
    ids = np.full((len(texts), width), PAD_ID, dtype=np.int32)
    segments = np.zeros((len(texts), width), dtype=np.int32)
    for i, e in enumerate(encodings):
        ids[i, : len(e.ids)], segments[i, : len(e.ids)] = e.ids, e.type_ids
    return tf.constant(ids), tf.constant(segments)


def forward_ms(classifier, batch, repeats: int = 20) -> float:
    """Median time of one compiled forward pass of `classifier` on `batch` (no data pipeline)."""
    from gated_bert.inference import forward_of

    call = forward_of(classifier)
    call(*batch)  # trace
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call(*batch).numpy()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def _write_export(dense: TextPredictor, fmt: str, float16: bool, folder: Path) -> tuple[Path, int, int, int]:
    """The exported model file; (path, encoder bytes, stored values, token-embedding bytes)."""
    from gated_bert.export import compact

    if fmt == "compact":
        arrays = compact.compact_arrays(dense.classifier, dense.config.architecture().num_heads, float16)
        path = folder / "model.npz"
        compact.save_arrays(arrays, path)
        values = sum(a.size for a in arrays.values() if a.dtype.kind == "f")
        return path, compact.encoder_bytes(arrays), values, arrays["embeddings/token"].nbytes
    if float16:
        raise ConfigError("--float16 needs --format compact")
    for kernel in _gated_layers(dense.classifier):
        kernel.kernel.assign(kernel.kernel.numpy() * kernel.mask.numpy())
    path = folder / "model.keras"
    dense.classifier.save(path)
    token = dense.classifier.get_layer("embeddings").token.embeddings
    stored = sum(int(np.prod(v.shape)) for v in dense.classifier.weights)
    encoder = sum(int(np.prod(v.shape)) * 4 for b in _blocks(dense.classifier) for v in b.weights)
    return path, encoder, stored, int(np.prod(token.shape)) * 4


def _blocks(classifier):
    from gated_bert.model import encoder_blocks

    return encoder_blocks(classifier)


def _gated_layers(classifier):
    return [layer for block in _blocks(classifier) for layer in block.gated_layers().values()]


def export_run(run_id: str, output: str | None, fmt: str = "compact", float16: bool = False) -> ExportReport:
    """Export run `run_id`'s model to `output` (see the module docstring)."""
    from gated_bert import tracking
    from gated_bert.model import count_parameters

    if fmt not in FORMATS:
        raise ConfigError(f"unknown --format {fmt!r}; choose one of: {', '.join(FORMATS)}")
    tracking.check_tracking_store()
    directory = Path(output or f"export_{run_id[:8]}_{fmt}").resolve()
    if directory.exists():
        raise DataError(f"--output {str(directory)!r} already exists; remove it or choose another folder")
    tracking.run_info(run_id)  # an unknown run is a one-line error
    with tempfile.TemporaryDirectory() as tmp:
        files = tracking.model_files(run_id, Path(tmp) / "run")
        dense = TextPredictor.from_files(*files)
        dense_parameters = count_parameters(dense.classifier)
        dense_bytes = dense_encoder_bytes(dense.classifier)
        texts = probe_texts(dense.tokenizer, max(LATENCY_BATCHES))
        expected = predict_outputs(dense.classifier, dense.tokenizer, texts)
        timing = {n: latency_ms(dense, texts[:n], repeats=20 if n == 1 else 5) for n in LATENCY_BATCHES}
        batches = {n: padded_batch(dense.tokenizer, texts[:n]) for n in LATENCY_BATCHES}
        forward = {n: forward_ms(dense.classifier, batches[n]) for n in LATENCY_BATCHES}
        path, encoder, stored, embedding = _write_export(dense, fmt, float16, Path(tmp))
        exported = TextPredictor.from_files(path, files[1], files[2])
        difference = float(
            np.abs(predict_outputs(exported.classifier, exported.tokenizer, texts) - expected).max()
        )
        report = ExportReport(
            run_id,
            directory,
            fmt,
            files[0].stat().st_size,
            path.stat().st_size,
            embedding,
            dense_parameters,
            stored,
            dense_bytes,
            encoder,
            difference,
        )
        for n in LATENCY_BATCHES:
            report.latency_ms[n] = (timing[n], latency_ms(exported, texts[:n], repeats=20 if n == 1 else 5))
            report.forward_ms[n] = (forward[n], forward_ms(exported.classifier, batches[n]))
        tracking.save_model_dir(directory, path, files[1], files[2], dense.config)
        with tracking.reopened_run(run_id):
            tracking.log_model(path, files[1], files[2], dense.config, name=f"{fmt}_model")
            tracking.log_metrics(report.metrics())
            tracking.log_text("\n".join(report.lines()) + "\n", f"export/{fmt}_report.txt")
    return report
