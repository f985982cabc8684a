"""The registry of pruning methods: one explicit dict, one file per method.

Adding a method is one new file in this folder (a `PruningMethod` subclass)
plus one line in `METHODS`. Everything that depends on the method (config
validation, CLI choices, model building, trainer hooks, experiments) asks this
registry; nothing else compares method names.
"""

from __future__ import annotations

from gated_bert.config import BASELINE, BASELINE_LABEL
from gated_bert.pruning.methods.base import PRUNED, PruningMethod
from gated_bert.pruning.methods.magnitude import Magnitude
from gated_bert.pruning.methods.movement import Movement
from gated_bert.pruning.methods.random import RandomControl
from gated_bert.pruning.methods.spt import Spt
from gated_bert.pruning.names import from_label, is_baseline, label, labels

METHODS: dict[str, type[PruningMethod]] = {
    "magnitude": Magnitude,
    "movement": Movement,
    "spt": Spt,
    "random": RandomControl,
}


def method_names() -> tuple[str, ...]:
    """Every valid `pruning_method` value, the baseline first."""
    return (BASELINE, *METHODS)


def get_method(name: str) -> type[PruningMethod]:
    """The class registered under `name`; unknown names raise ValueError listing the valid ones."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(
            f"unknown pruning method {name!r}; choose one of: {', '.join(method_names())}"
        ) from None


def needs_scores(name: str) -> bool:
    """Whether the model must be built with trainable scores for method `name`."""
    return not is_baseline(name) and get_method(name).needs_scores


def compiles_with_xla(name: str) -> bool:
    """Whether a train step with method `name` can be XLA-compiled (the baseline's can)."""
    return is_baseline(name) or get_method(name).compiles_with_xla


__all__ = [
    "BASELINE",
    "BASELINE_LABEL",
    "METHODS",
    "PRUNED",
    "PruningMethod",
    "compiles_with_xla",
    "from_label",
    "get_method",
    "is_baseline",
    "label",
    "labels",
    "method_names",
    "needs_scores",
]
