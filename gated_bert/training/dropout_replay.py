"""The dropout layers' random states: saved before a training pass, restored to repeat its draws.

A pruning method's step hook (SPT's probe) repeats the training forward pass with some
weights masked; with the same dropout draws the two losses differ only by the masking.
"""

from __future__ import annotations

import keras
import tensorflow as tf


def dropout_states(model: keras.Model) -> list:
    """The seed-generator state variable of every Dropout layer inside `model`.

    Keras has no public recursive layer list; `_flatten_layers` is what `Model.layers` builds on.
    """
    return [
        layer.seed_generator.state
        for layer in model._flatten_layers(include_self=False)
        if isinstance(layer, keras.layers.Dropout) and getattr(layer, "seed_generator", None) is not None
    ]


def capture(states: list) -> list:
    """The states' current values (inside a compiled step: tensors)."""
    return [tf.identity(state.value) for state in states]


def restore(states: list, values: list) -> None:
    """Put back the values `capture` took, so the next pass draws the same dropout masks."""
    for state, value in zip(states, values):
        state.assign(value)
