"""Length-bucketed batches: each batch is padded to its own longest example.

Padding every example to max_len wastes most of the compute on short tasks
(90% of SST-2's positions would be padding). Instead, each epoch shuffles with
a seeded generator, sorts chunks of 50 batches by length, cuts batches and
shuffles their order. The number of batches is always ceil(n / batch_size).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from gated_bert.data.tokenizer import PAD_ID

CHUNK_BATCHES = 50


@dataclass(frozen=True)
class EncodedSplit:
    token_ids: list[np.ndarray]
    segment_ids: list[np.ndarray]
    labels: np.ndarray

    def __len__(self) -> int:
        return len(self.token_ids)

    @property
    def lengths(self) -> np.ndarray:
        return np.fromiter((len(t) for t in self.token_ids), dtype=np.int64, count=len(self))

    def num_batches(self, batch_size: int) -> int:
        return math.ceil(len(self) / batch_size)


def bucketed_order(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Batches of indices: shuffled, length-sorted within chunks, batch order shuffled."""
    perm = rng.permutation(len(lengths))
    chunk = batch_size * CHUNK_BATCHES
    batches = []
    for start in range(0, len(perm), chunk):
        part = perm[start : start + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i : i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def sorted_order(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Deterministic batches for evaluation: sorted by length, no shuffling."""
    order = np.argsort(lengths, kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def sorted_eval(split: EncodedSplit, batch_size: int) -> tuple[tf.data.Dataset, np.ndarray]:
    """Evaluation batches sorted by length, and the example order they come in.

    `outputs[i]` of `model.predict` on the dataset belongs to example `order[i]`.
    """
    if len(split):
        order = np.concatenate(sorted_order(split.lengths, batch_size))
    else:
        order = np.zeros(0, dtype=np.int64)
    return make_dataset(split, batch_size, shuffle=False), order


def batch_width(longest: int, multiple: int = 1, cap: int | None = None) -> int:
    """Width of a batch whose longest example has `longest` tokens: rounded up to `multiple`, at most `cap`."""
    width = -(-longest // multiple) * multiple
    return min(width, cap) if cap is not None else width


def padding_share(
    lengths: np.ndarray, batches: list[np.ndarray], multiple: int = 1, cap: int | None = None
) -> float:
    """Share of the token positions of these batches that are padding."""
    real = sum(int(lengths[b].sum()) for b in batches)
    total = sum(len(b) * batch_width(int(lengths[b].max()), multiple, cap) for b in batches)
    return 1.0 - real / total if total else 0.0


def pad_batch(
    split: EncodedSplit,
    index: np.ndarray,
    pad_to: int | None = None,
    multiple: int = 1,
    cap: int | None = None,
):
    width = pad_to or batch_width(max(len(split.token_ids[i]) for i in index), multiple, cap)
    token_ids = np.full((len(index), width), PAD_ID, dtype=np.int32)
    segment_ids = np.zeros((len(index), width), dtype=np.int32)
    for row, i in enumerate(index):
        n = len(split.token_ids[i])
        token_ids[row, :n] = split.token_ids[i]
        segment_ids[row, :n] = split.segment_ids[i]
    return {"token_ids": token_ids, "segment_ids": segment_ids}, split.labels[index]


def make_dataset(
    split: EncodedSplit,
    batch_size: int,
    seed: int | None = None,
    shuffle: bool = True,
    pad_to: int | None = None,
    width_multiple: int = 1,
    max_width: int | None = None,
    first_epoch: int = 0,
    repeat: bool = False,
    targets: np.ndarray | None = None,
) -> tf.data.Dataset:
    """A tf.data pipeline of padded batches with a known number of batches.

    With `shuffle`, epoch k uses the generator seeded with (seed, k), so a run
    is reproducible from its seed alone. `pad_to` pads every batch to a fixed
    width instead (only for benchmarks); `width_multiple` rounds each batch's
    width up (at most `max_width`), so a compiled step sees few shapes. A
    resumed run starts at `first_epoch` (0-based), with that epoch's order.

    `repeat`: one endless pipeline, epoch after epoch in the same orders (give `fit` its
    `steps_per_epoch`): Keras then keeps one iterator for the whole run. A new iterator per
    epoch sometimes stalled before the epoch's first batch (docs/training.md, "One data
    iterator per run").

    `targets` (one float32 row per example, e.g. a teacher's outputs): each batch's labels
    become (labels, those rows).
    """
    lengths = split.lengths
    epochs = itertools.count(first_epoch)

    def generate():
        while True:
            if shuffle:
                batches = bucketed_order(
                    lengths, batch_size, np.random.default_rng([seed or 0, next(epochs)])
                )
            else:
                batches = sorted_order(lengths, batch_size)
            for index in batches:
                inputs, labels = pad_batch(split, index, pad_to, width_multiple, max_width)
                yield inputs, (labels if targets is None else (labels, targets[index]))
            if not repeat:
                return

    label_spec = tf.TensorSpec([None], tf.float32 if split.labels.dtype.kind == "f" else tf.int64)
    if targets is not None:
        label_spec = (label_spec, tf.TensorSpec([None, targets.shape[1]], tf.float32))
    signature = (
        {
            "token_ids": tf.TensorSpec([None, None], tf.int32),
            "segment_ids": tf.TensorSpec([None, None], tf.int32),
        },
        label_spec,
    )
    dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
    cardinality = tf.data.INFINITE_CARDINALITY if repeat else split.num_batches(batch_size)
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(cardinality))
    return dataset.prefetch(2)
