"""Host <-> variable traffic of a mask update, in one compiled call each way.

A mask update reads what the method ranks by (scores, kernels, masks) and
writes every mask. One variable at a time, each read and each write pays
TensorFlow's eager dispatch; here one call goes each way, the masks sent as one
flat boolean array (a quarter of the bytes). Movement pays it after every
optimizer step. docs/training.md ("Mask updates: one call each way, a bracket
from the last cut") has the figures.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf


class TensorReader:
    """Reads the tensors a function computes from variables, in one compiled call.

    Args:
        values: a function of no arguments giving a list of tensors (graph ops over variables,
            e.g. a method's `ranking_values`); traced once, so the variables it reads are fixed.
    """

    def __init__(self, values):
        # traced now, not inside the first mask update; called as the concrete function, which
        # skips tf.function's argument binding and cache look-up
        self._read = tf.function(values).get_concrete_function()

    def __call__(self) -> list[np.ndarray]:
        """The values, as read-only arrays over the read tensors' buffers (`.numpy()` would copy
        each)."""
        return [np.asarray(value) for value in self._read()]


class VariableReader(TensorReader):
    """Reads a fixed list of variables in one call.

    Args:
        variables: the variables, read in this order.
    """

    def __init__(self, variables):
        self.variables = list(variables)
        super().__init__(lambda: [tf.convert_to_tensor(v) for v in self.variables])


class MaskWriter:
    """Writes every prunable kernel's mask in one call.

    Args:
        kernels: the `PrunableKernel`s, in the order of the masks given to `write`.
        zero_pruned: also write exact zeros into the pruned entries of each kernel
            (methods whose pruned weights stay pruned), in the same call.
    """

    def __init__(self, kernels, zero_pruned: bool):
        self.layers = [kernel.layer for kernel in kernels]
        self.sizes = [int(np.prod(layer.mask.shape)) for layer in self.layers]
        self.zero_pruned = zero_pruned
        # traced now, and called as the concrete function (as `VariableReader`)
        self._write = tf.function(self.assign).get_concrete_function(
            tf.TensorSpec([sum(self.sizes)], tf.bool)
        )

    def write(self, masks: list[np.ndarray]) -> None:
        """Set each kernel's mask to `masks[i]` (0/1 or boolean, the kernel's shape)."""
        flat = np.concatenate([np.asarray(mask).reshape(-1) for mask in masks])
        self._write(flat if flat.dtype == np.bool_ else flat > 0)

    def zero_pruned_kernels(self) -> None:
        """Write exact zeros into the kernels' pruned entries (no-op unless `zero_pruned`)."""
        for layer in self.layers:
            self._zero(layer, layer.mask)

    def assign(self, flat) -> None:
        """`write` as TensorFlow ops, for a compiled function (the train step's ranking):
        `flat` is a boolean tensor of every mask, in order."""
        for layer, part in zip(self.layers, tf.split(flat, self.sizes)):
            mask = tf.reshape(tf.cast(part, layer.mask.dtype), layer.mask.shape)
            layer.mask.assign(mask)
            self._zero(layer, mask)

    def _zero(self, layer, mask) -> None:
        if self.zero_pruned:
            layer.kernel.assign(layer.kernel * mask)
