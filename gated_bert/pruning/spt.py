"""SPT exploration: probe random active weights, reward them by the damage.

`SptExplorer.probe` runs inside the compiled train step as TF ops (never as
Python side effects, which a compiled step would drop). For every gated
kernel it draws E, ceil(epsilon * active) random active weights, masks them
for one extra forward pass, and credits each weight in E with
r = L_probe - L_full through an exponential moving average.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gated_bert.layers import PRUNABLE_ROLES


def reward_update(ema, visits, probe, reward, alpha: float):
    """New reward EMA: r on a first visit, (1 - alpha) * ema + alpha * r after."""
    updated = tf.where(visits > 0, (1.0 - alpha) * ema + alpha * reward, reward)
    return tf.where(probe > 0, updated, ema)


class SptExplorer:
    """Per-kernel reward EMA and visit counts, and the probing step.

    Args:
        kernels: the model's PrunableKernel list.
        epsilon: fraction of each kernel's active weights probed per step.
        alpha: reward EMA factor.
        per_layer: probe one role per step, cycling through PRUNABLE_ROLES.
        seed: seed of the explorer's random generator.
    """

    def __init__(self, kernels, epsilon: float, alpha: float, per_layer: bool, seed: int):
        self.kernels = kernels
        self.epsilon = float(epsilon)
        self.alpha = float(alpha)
        self.per_layer = per_layer
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.reward_ema = [
            tf.Variable(tf.zeros(k.layer.mask.shape), trainable=False, name=f"spt_ema_{i}")
            for i, k in enumerate(kernels)
        ]
        self.visits = [
            tf.Variable(tf.zeros(k.layer.mask.shape), trainable=False, name=f"spt_visits_{i}")
            for i, k in enumerate(kernels)
        ]
        self.exploring = tf.Variable(False, trainable=False, name="spt_exploring")
        self.probe_count = tf.Variable(0, dtype=tf.int64, trainable=False, name="spt_probe_count")

    def select(self, mask):
        """A 0/1 tensor marking ceil(epsilon * active) random active weights of `mask`."""
        flat = tf.reshape(tf.convert_to_tensor(mask), [-1])
        n_active = tf.reduce_sum(flat)
        k = tf.cast(tf.math.ceil(self.epsilon * n_active), tf.int32)
        noise = keras.random.uniform(tf.shape(flat), seed=self.seed_generator)
        noise = tf.where(flat > 0, noise, -1.0)
        _, index = tf.math.top_k(noise, k)
        chosen = tf.scatter_nd(index[:, None], tf.ones_like(index, dtype=flat.dtype), tf.shape(flat))
        return tf.reshape(chosen, tf.shape(mask))

    def _probes(self):
        role = self.probe_count % len(PRUNABLE_ROLES)
        probes = []
        for kernel in self.kernels:
            mask = kernel.layer.mask
            if self.per_layer:
                this_role = tf.constant(PRUNABLE_ROLES.index(kernel.role), tf.int64)
                probes.append(
                    tf.cond(
                        tf.equal(role, this_role),
                        lambda m=mask: self.select(m),
                        lambda m=mask: tf.zeros_like(m),
                    )
                )
            else:
                probes.append(self.select(mask))
        return probes

    def probe(self, loss_of_masked_model, full_loss):
        """One exploration step (TF ops): returns the reward, 0 outside the window.

        Args:
            loss_of_masked_model: callable returning the batch loss with the
                current masks (used after E has been masked out).
            full_loss: the batch loss with the current masks, L_full.
        """

        def explore():
            probes = self._probes()
            for kernel, probe in zip(self.kernels, probes):
                kernel.layer.mask.assign_sub(probe)  # E is a subset of the active weights
            probe_loss = loss_of_masked_model()
            for kernel, probe in zip(self.kernels, probes):
                kernel.layer.mask.assign_add(probe)  # restore exactly
            reward = tf.cast(probe_loss - full_loss, tf.float32)
            for ema, visits, probe in zip(self.reward_ema, self.visits, probes):
                ema.assign(reward_update(ema, visits, probe, reward, self.alpha))
                visits.assign_add(probe)
            self.probe_count.assign_add(1)
            return reward

        return tf.cond(self.exploring, explore, lambda: tf.constant(0.0))

    def state(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.reward_ema[index].numpy(), self.visits[index].numpy()
