"""`resolve`: the config with every method-dependent default made concrete.

A `GatedBertConfig` leaves some settings at `auto` (or None) because their
default depends on the pruning method: the sparsity schedule, the scope, the
optimizer steps between mask updates, SPT's exploration rate. The registry knows
those defaults; `resolve` writes them into the config once per run (`run.train`),
and the resolved config is what trains and what is logged. Resolving a resolved
config returns an equal one.
"""

from __future__ import annotations

from gated_bert.config import GatedBertConfig
from gated_bert.errors import ConfigError
from gated_bert.pruning.methods import compiles_with_xla, get_method, is_baseline


def resolve(config: GatedBertConfig) -> GatedBertConfig:
    """`config` with sparsity_schedule, pruning_scope, movement_pruning_frequency_steps,
    spt_epsilon and sparsity_steps concrete. Raises ConfigError for settings that no method
    default can make work (jit_compile true with a method whose step XLA cannot compile)."""
    config = config.with_training_defaults()  # the method itself may be left at auto
    if config.jit_compile == "true" and not compiles_with_xla(config.pruning_method):
        raise ConfigError(
            f"jit_compile true does not work with pruning_method {config.pruning_method} (its train "
            "step has shapes XLA cannot compile); use --jit-compile auto or false"
        )
    return config.replace(
        sparsity_schedule=_schedule(config),
        pruning_scope=_scope(config),
        movement_pruning_frequency_steps=_frequency(config),
        spt_epsilon=config.effective_spt_epsilon,
        sparsity_steps=config.effective_sparsity_steps,
    )


def _schedule(config: GatedBertConfig) -> str:
    if config.sparsity_schedule != "auto":
        return config.sparsity_schedule
    if config.sparsity_steps is not None:
        return "steps"
    if not config.enable_pruning:
        return "linear"
    return get_method(config.pruning_method).default_schedule(config)


def _scope(config: GatedBertConfig) -> str:
    if config.pruning_scope != "auto":
        return config.pruning_scope
    if not config.enable_pruning:
        return "per_layer"
    return get_method(config.pruning_method).default_scope


def _frequency(config: GatedBertConfig) -> int:
    if config.movement_pruning_frequency_steps is not None:
        return config.movement_pruning_frequency_steps
    if is_baseline(config.pruning_method):
        return 1
    return get_method(config.pruning_method).default_frequency
