"""The config a run trains with: every value concrete, resolved once.

Four steps, each idempotent: the training defaults left at auto (`with_training_defaults`:
fine-tuning ones with init_from), the checkpoint's shape (`pretrained.resolve`), the pruning
method's defaults (`pruning.resolve`), then, with the data, the tokenizer's vocabulary size
and this machine's matmul precision. `run.train` resolves before it logs; the result is
what trains.
"""

from __future__ import annotations

import tensorflow as tf

from gated_bert.config import GatedBertConfig
from gated_bert.data.prepare import PreparedData
from gated_bert.pretrained.resolve import with_checkpoint
from gated_bert.pruning.resolve import resolve
from gated_bert.training import precision


def resolved_config(config: GatedBertConfig) -> GatedBertConfig:
    """Everything that needs no data: training defaults, the checkpoint's shape, method defaults.
    Bad settings raise a GatedBertError here, before any data is read."""
    return resolve(with_checkpoint(config.with_training_defaults()))


def with_tokenizer_vocab(config: GatedBertConfig, prepared: PreparedData) -> GatedBertConfig:
    """The config with vocab_size resolved: the tokenizer's size unless it was set explicitly."""
    if config.vocab_size is not None:
        return config
    return config.replace(vocab_size=prepared.tokenizer.get_vocab_size())


def with_machine_settings(config: GatedBertConfig) -> GatedBertConfig:
    """The config with matmul_precision auto resolved for this machine (`training/precision.py`)."""
    if config.matmul_precision != "auto":  # already concrete
        return config
    concrete = precision.resolve(
        config.matmul_precision,
        native=precision.native_bfloat16(),
        gpu=bool(tf.config.list_physical_devices("GPU")),
    )
    return config.replace(matmul_precision=concrete)


def training_config(config: GatedBertConfig, prepared: PreparedData) -> GatedBertConfig:
    """The config a run trains with, every value concrete (unchanged when already resolved)."""
    return with_machine_settings(with_tokenizer_vocab(resolved_config(config), prepared))
