"""`with_checkpoint`: a config whose shape comes from its `init_from` checkpoint.

The checkpoint's config.json fixes num_layers, d_model, num_heads, dff and vocab_size; a
shape setting (or a model_size) that says otherwise is refused, naming both. max_len is
capped at the checkpoint's max_position_embeddings.
"""

from __future__ import annotations

import warnings

from gated_bert.architecture import MODEL_PRESETS
from gated_bert.config import GatedBertConfig
from gated_bert.errors import ConfigError
from gated_bert.pretrained.checkpoint import BertCheckpoint, read
from gated_bert.pretrained.weights import check_file

_READ: dict[
    str, BertCheckpoint
] = {}  # init_from -> its checkpoint, once per process (a hub id downloads once)


def checkpoint_of(config: GatedBertConfig) -> BertCheckpoint | None:
    """The config's checkpoint (read once per process), or None without init_from."""
    if config.init_from is None:
        return None
    if config.init_from not in _READ:
        checkpoint = read(config.init_from)
        check_file(checkpoint)  # names and shapes from the file's header: refused before anything is built
        _READ[config.init_from] = checkpoint
    return _READ[config.init_from]


def with_checkpoint(config: GatedBertConfig) -> GatedBertConfig:
    """`config` with the checkpoint's shape; unchanged without init_from."""
    checkpoint = checkpoint_of(config)
    if checkpoint is None:
        return config
    shape = checkpoint.shape()
    given = {name: getattr(config, name) for name in shape if getattr(config, name) is not None}
    clashes = [
        f"{name} {value} (the checkpoint has {shape[name]})"
        for name, value in given.items()
        if value != shape[name]
    ]
    if clashes:
        raise ConfigError(
            f"--init-from {config.init_from!r} fixes the model's shape, but {', '.join(clashes)} was given; "
            "drop those settings"
        )
    if config.model_size is not None:
        layers, hidden, heads, ffn = MODEL_PRESETS[config.model_size]
        preset = {"num_layers": layers, "d_model": hidden, "num_heads": heads, "dff": ffn}
        if any(preset[name] != shape[name] for name in preset):
            raise ConfigError(
                f"--model-size {config.model_size} ({_describe(preset)}) contradicts --init-from "
                f"{config.init_from!r} ({_describe(shape)}); drop --model-size"
            )
    max_len = config.max_len
    if max_len > checkpoint.max_position_embeddings:
        warnings.warn(
            f"max_len {max_len} > the checkpoint's max_position_embeddings "
            f"{checkpoint.max_position_embeddings}: capped to {checkpoint.max_position_embeddings}",
            stacklevel=2,
        )
        max_len = checkpoint.max_position_embeddings
    return config.replace(max_len=max_len, **shape)


def _describe(shape: dict) -> str:
    return f"{shape['num_layers']} layers x {shape['d_model']} hidden x {shape['num_heads']} heads x {shape['dff']} FFN"
