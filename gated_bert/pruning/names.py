"""Method names without the methods: labels for paths, tags and experiment flags.

Light on purpose (the config's names only, no TensorFlow): the command line validates
`-p baseline,spt` before anything heavy loads. The registry (`pruning/methods`) re-exports
these; a test keeps `config.PRUNING_METHODS` equal to the registry's names.
"""

from __future__ import annotations

from gated_bert.config import BASELINE, BASELINE_LABEL, PRUNING_METHODS


def is_baseline(name: str) -> bool:
    return name == BASELINE


def label(name: str) -> str:
    """Name used in results paths, tags and experiment lists: 'baseline' for no pruning."""
    return BASELINE_LABEL if is_baseline(name) else name


def labels() -> tuple[str, ...]:
    """Every valid label (experiments' `-p` values)."""
    return tuple(label(name) for name in PRUNING_METHODS)


def from_label(text: str) -> str:
    """Inverse of `label`: 'baseline' -> 'none'; unknown labels raise ValueError listing the valid ones."""
    if text == BASELINE_LABEL:
        return BASELINE
    if text not in PRUNING_METHODS or is_baseline(text):
        raise ValueError(f"unknown pruning method {text!r}; choose one of: {', '.join(PRUNING_METHODS)}")
    return text
