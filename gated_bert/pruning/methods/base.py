"""`PruningMethod`: the small interface every pruning method implements.

A method is a scoring rule plus what it needs around it: whether the model
must carry trainable scores, its default schedule and scope, an optional hook
inside the compiled train step, whether pruned weights are zeroed in the
kernel, and the state it would need to resume. The `Pruner` turns importances
into masks (top-k lives in `pruning/masks.py`); the `PruningCallback` decides
when. A method knows nothing of Keras training loops.

The config does not import the registry, so a method module may import
TensorFlow at the top.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from gated_bert.config import GatedBertConfig
    from gated_bert.model import PrunableKernel

PRUNED = -1.0  # importance of an already pruned weight: below any |w| >= 0


class PruningMethod:
    """Base class: one subclass per file in `gated_bert/pruning/methods/`.

    Class attributes:
        name: the registry key and the `--pruning-method` value.
        needs_scores: the model's gated kernels must carry trainable scores.
        zeroes_pruned: pruned weights are written as exact zeros into the kernel.
        default_scope: "per_layer" or "global" (used when pruning_scope is auto).
        group_reduce: how a head's or neuron's importance is made from its
            weights' ("sum" or "l2"; see `pruning/groups.py`).
        default_frequency: optimizer steps between by-step mask updates when
            `movement_pruning_frequency_steps` is not given.
        reselects: with `pruning_updates=epoch`, the top-k is also recomputed at
            the latest epoch update's target every `default_frequency` (or
            `movement_pruning_frequency_steps`) steps inside the window, so
            weights whose scores rise return while training goes on.
        compiles_with_xla: its train-step hook (if any) compiles under XLA
            (`jit_compile`); SPT's varying probe shapes do not.

    Args:
        config: the run's configuration.
        kernels: the model's prunable kernels, in `prunable_kernels` order.
    """

    name: ClassVar[str] = ""
    needs_scores: ClassVar[bool] = False
    zeroes_pruned: ClassVar[bool] = True
    default_scope: ClassVar[str] = "per_layer"
    group_reduce: ClassVar[str] = "sum"
    default_frequency: ClassVar[int] = 10
    reselects: ClassVar[bool] = False
    compiles_with_xla: ClassVar[bool] = True

    def __init__(self, config: GatedBertConfig, kernels: list[PrunableKernel]):
        self.config = config
        self.kernels = kernels

    @classmethod
    def default_schedule(cls, config: GatedBertConfig) -> str:
        """Schedule kind used when sparsity_schedule is auto and no step list is given."""
        return "linear"

    # -------------------------------------------------------------- the rule
    def score(self, kernel: PrunableKernel) -> np.ndarray:
        """Importance of every weight of one kernel (higher = keep)."""
        raise NotImplementedError(f"{type(self).__name__} must define score() or importances()")

    def importances(self, scope: str) -> list[np.ndarray]:
        """One importance array per kernel, comparable across kernels when scope is global."""
        return [self.score(kernel) for kernel in self.kernels]

    # True: `ranking_values()` computes, in the graph, everything `importances_of` ranks, so the
    # method can be ranked inside the compiled train step (the trainer hands those values to
    # the host there, `training/trainer.py`) when it re-ranks after every optimizer step; the
    # others are ranked by the `PruningCallback` between steps.
    ranks_in_graph = False

    def ranking_values(self) -> list:
        """The tensors `importances_of` ranks, computed in the graph from the method's variables
        (inside the train step, only when a ranking is due); with `ranks_in_graph`."""
        raise NotImplementedError(f"{type(self).__name__} does not rank in the graph")

    def importances_of(self, values: list[np.ndarray]) -> list[np.ndarray]:
        """`importances` from the values of `ranking_values()`, in that order."""
        raise NotImplementedError(f"{type(self).__name__} names no ranking variables")

    # ------------------------------------------------------- training hooks
    def extra_variables(self) -> list:
        """Trainable variables that the method trains with its own optimizer (not weights)."""
        return []

    def extra_optimizer(self, make_adam):
        """The optimizer of `extra_variables`, or None.

        Args:
            make_adam: `make_adam(learning_rate)` gives an Adam optimizer; the training package
                supplies it, so a method needs no training code to have its variables trained.
        """
        return None

    def train_step_hook(self, repeat_loss, training_loss, kernel_gradients=None) -> None:
        """Runs inside the compiled train step after the gradients, before they are applied.

        Args:
            repeat_loss: callable giving the batch loss of the training forward pass again,
                with the current masks and the same dropout draws as the training pass.
            training_loss: the batch loss of the training forward pass.
            kernel_gradients: dL/dkernel of each prunable kernel (in `kernels` order), or None.
        """

    @property
    def has_step_hook(self) -> bool:
        """Whether this method overrides `train_step_hook` (the trainer skips its inputs otherwise)."""
        return type(self).train_step_hook is not PruningMethod.train_step_hook

    def on_epoch_begin(self, epoch: int, in_window: bool) -> None:
        """Called before each (1-based) epoch; `in_window` tells if it is a pruning epoch."""

    def on_train_end(self) -> None:
        """Called once after the last epoch."""

    def state(self) -> dict[str, Any]:
        """What a checkpoint must hold to continue this method exactly.

        Name -> a variable, a list of variables, or plain JSON-able data.
        """
        return {}

    def load_state(self, plain: dict[str, Any]) -> None:
        """Restore the plain (non-variable) part of `state()` from a checkpoint."""
