"""A HuggingFace BERT checkpoint folder: where it is and what its config.json says.

`init_from` is a local folder (config.json, model.safetensors or pytorch_model.bin, and
vocab.txt or tokenizer.json) or a hub model id, downloaded into huggingface_hub's cache.
Only `model_type: bert` is read; anything else is refused with the supported types named.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from gated_bert.architecture import Architecture
from gated_bert.errors import DataError

CONFIG = "config.json"
SAFETENSORS = "model.safetensors"
PYTORCH_BIN = "pytorch_model.bin"
VOCAB = "vocab.txt"
TOKENIZER_JSON = "tokenizer.json"
TOKENIZER_CONFIG = "tokenizer_config.json"
SUPPORTED_TYPES = ("bert",)
SUPPORTED_ACTIVATIONS = ("gelu",)  # exact GELU, what the gated encoder computes
HUB_FILES = [CONFIG, SAFETENSORS, VOCAB, TOKENIZER_JSON, TOKENIZER_CONFIG]
HUB_TIMEOUT_SECONDS = "10"
HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*(/[\w.-]+)?")  # "bert-base-uncased", "org/name"


@dataclass(frozen=True)
class BertCheckpoint:
    """What a run needs to know of a checkpoint before it builds anything."""

    folder: Path
    num_layers: int
    d_model: int
    num_heads: int
    dff: int
    vocab_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    lowercase: bool

    def architecture(self, max_len: int) -> Architecture:
        return Architecture(
            num_layers=self.num_layers,
            d_model=self.d_model,
            num_heads=self.num_heads,
            dff=self.dff,
            vocab_size=self.vocab_size,
            max_len=max_len,
        )

    @property
    def weights_file(self) -> Path:
        """model.safetensors, else pytorch_model.bin."""
        safetensors = self.folder / SAFETENSORS
        return safetensors if safetensors.is_file() else self.folder / PYTORCH_BIN

    @property
    def tokenizer_file(self) -> Path:
        """tokenizer.json when present (the checkpoint's exact tokenizer), else vocab.txt."""
        exact = self.folder / TOKENIZER_JSON
        return exact if exact.is_file() else self.folder / VOCAB

    def shape(self) -> dict[str, int]:
        """The shape fields of a config, as this checkpoint fixes them."""
        return {
            "num_layers": self.num_layers,
            "d_model": self.d_model,
            "num_heads": self.num_heads,
            "dff": self.dff,
            "vocab_size": self.vocab_size,
        }


def locate(init_from: str) -> Path:
    """The local folder of `init_from`: the folder itself, or a hub id downloaded to the cache."""
    path = Path(init_from).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists() or not HUB_ID.fullmatch(init_from):
        raise DataError(
            f"--init-from {init_from!r}: no such folder; pass a checkpoint folder (config.json, "
            "model.safetensors, vocab.txt) or a hub model id such as bert-base-uncased"
        )
    return _download(init_from)


def _download(model_id: str) -> Path:
    """A hub checkpoint's files in huggingface_hub's cache (fails within seconds without network)."""
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", HUB_TIMEOUT_SECONDS)
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", HUB_TIMEOUT_SECONDS)
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(model_id, allow_patterns=[*HUB_FILES, PYTORCH_BIN])
    except Exception as err:  # no network, no such repo, a gated repo: all mean the same to the user
        reason = _short_reason(err)
        raise DataError(
            f"--init-from {model_id!r}: no such folder, and no download from the HuggingFace hub "
            f"({reason}); pass a local checkpoint folder (config.json, model.safetensors, vocab.txt)"
        ) from None
    return Path(folder)


def _short_reason(err: Exception) -> str:
    """One short clause for a failed download: no network, or the hub's own first sentence."""
    text = " ".join(str(err).split())
    if any(sign in text for sign in ("ConnectError", "Name or service not known", "Connection", "timed out")):
        return "the hub cannot be reached"
    first = text.split(". ")[0]
    return first if len(first) <= 100 else first[:97].rsplit(" ", 1)[0] + "..."


def read(init_from: str) -> BertCheckpoint:
    """Locate `init_from` and read its config.json; every problem is one DataError naming the fix."""
    folder = locate(init_from)
    config_path = folder / CONFIG
    if not config_path.is_file():
        raise DataError(
            f"--init-from {str(folder)!r} has no {CONFIG}; pass a HuggingFace BERT checkpoint folder"
        )
    try:
        config = json.loads(config_path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise DataError(
            f"{str(config_path)!r} is not valid JSON ({err}); pass an intact checkpoint"
        ) from None
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_TYPES:
        raise DataError(
            f"--init-from {str(folder)!r} is a {model_type!r} checkpoint; supported: "
            f"{', '.join(SUPPORTED_TYPES)} (BERT-architecture models such as bert-base-uncased or MiniLM)"
        )
    activation = config.get("hidden_act", "gelu")
    if activation not in SUPPORTED_ACTIVATIONS:
        raise DataError(
            f"--init-from {str(folder)!r} uses hidden_act {activation!r}; the gated encoder computes "
            f"{', '.join(SUPPORTED_ACTIVATIONS)}"
        )
    if not (folder / SAFETENSORS).is_file() and not (folder / PYTORCH_BIN).is_file():
        raise DataError(
            f"--init-from {str(folder)!r} has no weights ({SAFETENSORS} or {PYTORCH_BIN}); pass a "
            "complete checkpoint folder"
        )
    if not (folder / VOCAB).is_file() and not (folder / TOKENIZER_JSON).is_file():
        raise DataError(
            f"--init-from {str(folder)!r} has no {VOCAB} or {TOKENIZER_JSON}; pass a complete checkpoint"
        )
    return BertCheckpoint(
        folder=folder,
        num_layers=_int(config, "num_hidden_layers", config_path),
        d_model=_int(config, "hidden_size", config_path),
        num_heads=_int(config, "num_attention_heads", config_path),
        dff=_int(config, "intermediate_size", config_path),
        vocab_size=_int(config, "vocab_size", config_path),
        max_position_embeddings=_int(config, "max_position_embeddings", config_path),
        type_vocab_size=_int(config, "type_vocab_size", config_path, default=2),
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
        lowercase=_lowercase(folder),
    )


def _int(config: dict, key: str, path: Path, default: int | None = None) -> int:
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise DataError(
            f"{str(path)!r}: {key} must be a positive integer, got {value!r}; pass an intact checkpoint"
        )
    return value


def _lowercase(folder: Path) -> bool:
    """tokenizer_config.json's do_lower_case (BERT's default: true)."""
    path = folder / TOKENIZER_CONFIG
    if not path.is_file():
        return True
    try:
        return bool(json.loads(path.read_text()).get("do_lower_case", True))
    except (ValueError, UnicodeDecodeError):
        return True


def weights_sha256(path: Path) -> str:
    """SHA-256 of the weights file (what a run logs to say which weights it started from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
