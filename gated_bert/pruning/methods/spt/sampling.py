"""Drawing SPT's probes: uniformly random subsets of the active weights (or groups), as TF ops."""

from __future__ import annotations

import keras
import tensorflow as tf


def _group_activity(mask, axis: str, width: int):
    """1 for each group of `mask` with an active weight (TF twin of `groups.group_view`)."""
    rows, columns = mask.shape
    if axis == "columns":
        return tf.reduce_max(tf.reshape(mask, (rows, columns // width, width)), axis=(0, 2))
    return tf.reduce_max(tf.reshape(mask, (rows // width, -1)), axis=1)


def _expand(chosen, axis: str, width: int, shape):
    """A per-group 0/1 vector as a weight-level probe of `shape` (TF twin of `groups.expand`)."""
    line = tf.repeat(chosen, width)
    return tf.broadcast_to(line[None, :] if axis == "columns" else line[:, None], shape)


def top_k_indices(noise, k, n_active):
    """Indices of the k largest entries of `noise` (uniform in [0, 1) on the n_active active
    entries, -1 elsewhere), as `tf.math.top_k(noise, k)` gives them, without sorting the whole array.

    The k-th largest of n uniforms is about 1 - k/n; entries above a threshold a few standard
    deviations below that are gathered (about k + 6 sqrt(k) of them) and only those are
    ranked. The top k of that subset is the top k of the whole array whenever it holds at least
    k entries; otherwise (probability below 1e-9) the whole array is ranked.
    """
    kf = tf.cast(k, tf.float32)
    threshold = 1.0 - (kf + 6.0 * tf.sqrt(kf) + 8.0) / tf.maximum(n_active, 1.0)
    candidates = tf.reshape(tf.where(noise >= threshold), [-1])

    def subset():
        _, order = tf.math.top_k(tf.gather(noise, candidates), k)
        return tf.cast(tf.gather(candidates, order), tf.int32)

    def whole():
        return tf.math.top_k(noise, k)[1]

    return tf.cond(tf.size(candidates) >= k, subset, whole)


def sample_active(flat, k, n_active, epsilon: float, seed_generator):
    """Indices of k distinct random entries of `flat` > 0 (the active weights), every k-subset of
    them equally likely, as the first k distinct active indices of a stream of uniform random
    indices (by symmetry every ordered k-tuple is equally likely to come first).

    About k * size / n_active indices are drawn, with a margin: O(k) work, where ranking a random
    key per weight (`top_k_indices`) passes over the whole kernel several times. If the draws hold
    fewer than k distinct active indices (rare: a few standard deviations short, or a kernel so
    pruned that the draws are capped at its size), the subset comes from random keys over the
    whole kernel instead. Both ways every k-subset is equally likely.
    """
    size = tf.size(flat)
    kf = tf.cast(k, tf.float32)
    coverage = tf.cast(size, tf.float32) / tf.maximum(n_active, 1.0)  # draws per active draw
    wanted = tf.math.ceil((kf + 6.0 * tf.sqrt(kf) + 8.0) * coverage / (1.0 - min(epsilon, 0.9)))
    # at most one draw per weight: a nearly pruned kernel would otherwise draw up to 8x its size;
    # random keys over the kernel cost less then
    draws = tf.cast(tf.minimum(wanted, tf.cast(size, tf.float32)), tf.int32)

    def from_keys():
        noise = keras.random.uniform(tf.shape(flat), seed=seed_generator)
        return top_k_indices(tf.where(flat > 0, noise, -1.0), k, n_active)

    def from_stream():
        stream = keras.random.randint([draws], 0, size, dtype="int32", seed=seed_generator)
        distinct, _ = tf.unique(tf.boolean_mask(stream, tf.gather(flat, stream) > 0))  # first-seen order
        return tf.cond(tf.size(distinct) >= k, lambda: distinct[:k], from_keys)

    # no active weight (a kernel pruned whole by the global ranking): nothing to draw
    return tf.cond(k > 0, from_stream, lambda: tf.zeros([0], tf.int32))
