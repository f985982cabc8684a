"""`SptExplorer`: SPT's per-weight statistics (TF variables) and the probe run inside the train step."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

from gated_bert.pruning import groups
from gated_bert.pruning.methods.spt.credit import CREDITS, STATS_DECAY, credits, reward_update, running_mean
from gated_bert.pruning.methods.spt.ranking import obd_prior
from gated_bert.pruning.methods.spt.sampling import _expand, _group_activity, sample_active


class SptExplorer:
    """Per-kernel reward EMA and visit counts, and the probing step (TF variables).

    Args:
        kernels: the model's PrunableKernel list.
        epsilon: fraction of each kernel's active weights probed per step.
        alpha: reward EMA factor.
        per_layer: probe one role per step, cycling through the kernels' roles
            in order of first appearance (the six PRUNABLE_ROLES for a model).
        seed: seed of the explorer's random generator.
    """

    def __init__(
        self,
        kernels,
        epsilon: float,
        alpha: float,
        per_layer: bool,
        seed: int,
        granularity: str = "weight",
        num_heads: int = 1,
        credit: str = "saliency",
        curvature_prior: float = 1.0,
    ):
        if credit not in CREDITS:
            raise ValueError(f"unknown SPT credit {credit!r}; choose one of: {', '.join(CREDITS)}")
        self.credit = credit
        self.kernels = kernels
        self.granularity = granularity
        self.num_heads = num_heads
        self.epsilon = float(epsilon)
        self.alpha = float(alpha)
        self.per_layer = per_layer
        self.roles = tuple(dict.fromkeys(k.role for k in kernels))
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.reward_ema = [
            tf.Variable(tf.zeros(k.layer.mask.shape), trainable=False, name=f"spt_ema_{i}")
            for i, k in enumerate(kernels)
        ]
        self.visits = [
            tf.Variable(tf.zeros(k.layer.mask.shape), trainable=False, name=f"spt_visits_{i}")
            for i, k in enumerate(kernels)
        ]
        self.fisher = [  # running mean of g^2
            tf.Variable(tf.zeros(k.layer.mask.shape), trainable=False, name=f"spt_fisher_{i}")
            for i, k in enumerate(kernels)
        ]
        self.reward_mean = tf.Variable(0.0, trainable=False, name="spt_reward_mean")
        # per role: running means of the reward and of sum_E saliency of the probes that touched it
        self.role_reward = tf.Variable(tf.zeros(len(self.roles)), trainable=False, name="spt_role_reward")
        self.saliency_mean = tf.Variable(tf.zeros(len(self.roles)), trainable=False, name="spt_saliency")
        self.rho_seen = tf.Variable(tf.zeros(len(self.roles)), trainable=False, name="spt_rho_seen")
        self.curvature_prior = float(curvature_prior)
        self.exploring = tf.Variable(False, trainable=False, name="spt_exploring")
        self.probe_count = tf.Variable(0, dtype=tf.int64, trainable=False, name="spt_probe_count")

    def select_indices(self, mask):
        """Flat indices (int32) of ceil(epsilon * active) random active weights of `mask`:
        a uniformly random subset (`sample_active`), drawn in O(epsilon * size) work."""
        flat = tf.reshape(tf.convert_to_tensor(mask), [-1])
        n_active = tf.reduce_sum(flat)
        k = tf.cast(tf.math.ceil(self.epsilon * n_active), tf.int32)
        return sample_active(flat, k, n_active, self.epsilon, self.seed_generator)

    def select(self, mask):
        """A 0/1 tensor marking ceil(epsilon * active) random active weights of `mask`."""
        index = self.select_indices(mask)
        chosen = tf.scatter_nd(index[:, None], tf.ones_like(index, dtype=tf.float32), [tf.size(mask)])
        return tf.reshape(chosen, tf.shape(mask))

    def _group_probes(self):
        """Whole heads / neurons: per block, ceil(epsilon * active groups) random active groups,
        masked across all their kernels' slices at once."""
        probes = [tf.zeros_like(kernel.layer.mask) for kernel in self.kernels]
        for kind in groups.kinds_of(self.granularity):
            blocks: dict[int, list[int]] = {}
            for i, kernel in enumerate(self.kernels):
                if kernel.role in kind.axes:
                    blocks.setdefault(kernel.layer_index, []).append(i)
            for members in blocks.values():
                first = self.kernels[members[0]]
                width = first.layer.mask.shape[-1] // self.num_heads if kind.per_head else 1
                chosen = self.select(_group_activity(first.layer.mask, kind.axes[first.role], width))
                for i in members:
                    axis, shape = kind.axes[self.kernels[i].role], self.kernels[i].layer.mask.shape
                    probes[i] = _expand(chosen, axis, width, shape)
        return probes

    def _probes(self):
        """The probed set E of this step: per kernel, the [row, column] indices of its probed weights."""
        if self.granularity != "weight":
            return [  # a group's inactive weights (none, with group masks) are not probed
                tf.where((probe > 0) & (kernel.layer.mask > 0))
                for probe, kernel in zip(self._group_probes(), self.kernels)
            ]

        def rows_columns(kernel):
            index = tf.cast(self.select_indices(kernel.layer.mask), tf.int64)
            columns = kernel.layer.mask.shape[-1]
            return tf.stack([index // columns, index % columns], axis=1)

        if not self.per_layer:
            return [rows_columns(kernel) for kernel in self.kernels]
        role = self.probe_count % len(self.roles)
        probes = []
        for kernel in self.kernels:
            this_role = tf.constant(self.roles.index(kernel.role), tf.int64)
            probes.append(
                tf.cond(
                    tf.equal(role, this_role),
                    lambda k=kernel: rows_columns(k),
                    lambda: tf.zeros([0, 2], tf.int64),
                )
            )
        return probes

    def probe(self, loss_of_masked_model, full_loss, gradients=None):
        """One exploration step (TF ops): returns the reward, 0 outside the window.

        Args:
            loss_of_masked_model: callable returning the batch loss with the
                current masks (used after E has been masked out).
            full_loss: the batch loss with the current masks, L_full.
            gradients: dL/dkernel per kernel (the train step's), or None: then the
                first-order and saliency terms are 0 (credits fall back to an even share).
        """

        def explore():
            seen = self.probe_count > 0
            if gradients is None:
                grads = [tf.zeros_like(k.layer.mask) for k in self.kernels]
            else:
                grads = [tf.convert_to_tensor(g) for g in gradients]
            # the prior needs F for every weight: F += rate * (g^2 - F), the running mean in two
            # passes over the kernels (rate 1 on the first step, when F is still 0: F = g^2)
            rate = tf.where(seen, STATS_DECAY, 1.0)
            for fisher, g in zip(self.fisher, grads):
                fisher.assign_add(rate * (g * g - fisher))
            # everything else only on E (about epsilon of the weights): gathers and scatters
            probes = self._probes()
            weights = [k.layer.kernel.value.gather_nd(e) for k, e in zip(self.kernels, probes)]  # mask 1 on E
            saliency = [w * w * f.gather_nd(e) for w, f, e in zip(weights, self.fisher, probes)]
            taylor = None
            if self.credit == "first_order":
                taylor = [-tf.gather_nd(g, e) * w for g, e, w in zip(grads, probes, weights)]
            ones = [tf.ones([tf.shape(e)[0]], k.layer.mask.dtype) for k, e in zip(self.kernels, probes)]
            for kernel, e, one in zip(self.kernels, probes, ones):
                kernel.layer.mask.value.scatter_nd_sub(e, one)  # E is a subset of the active weights
            probe_loss = loss_of_masked_model()
            for kernel, e, one in zip(self.kernels, probes, ones):
                kernel.layer.mask.value.scatter_nd_add(e, one)  # restore exactly
            reward = tf.cast(probe_loss - full_loss, tf.float32)
            credit, total = credits(self.credit, reward, self.reward_mean, taylor, saliency)
            self._update_rho(probes, reward, total)
            self.reward_mean.assign(running_mean(self.reward_mean, reward, seen))
            for ema, visits, e, c in zip(self.reward_ema, self.visits, probes, credit):
                visited = visits.gather_nd(e)
                ema.scatter_nd_update(
                    e, reward_update(ema.gather_nd(e), visited, tf.ones_like(c), c, self.alpha)
                )
                visits.scatter_nd_add(e, tf.ones_like(visited))
            self.probe_count.assign_add(1)
            return reward

        return tf.cond(self.exploring, explore, lambda: tf.constant(0.0))

    def _update_rho(self, probes, reward, total):
        """Per role probed this step: running means of the reward and of sum_E saliency."""
        probed_roles = tf.stack(
            [
                tf.add_n([tf.shape(e)[0] for k, e in zip(self.kernels, probes) if k.role == role])
                for role in self.roles
            ]
        )
        hit = (probed_roles > 0) & (total > 0)
        seen = self.rho_seen > 0
        self.role_reward.assign(tf.where(hit, running_mean(self.role_reward, reward, seen), self.role_reward))
        self.saliency_mean.assign(
            tf.where(hit, running_mean(self.saliency_mean, total, seen), self.saliency_mean)
        )
        self.rho_seen.assign(tf.where(hit, 1.0, self.rho_seen))

    def rho(self) -> np.ndarray:
        """Per role: measured loss increase per unit of saliency, mean reward / mean sum_E saliency
        (a ratio of running means: stable where a mean of ratios is not); `curvature_prior` until
        a role's mean reward is positive."""
        reward, saliency = self.role_reward.numpy(), self.saliency_mean.numpy()
        measured = (reward > 0) & (saliency > 0)
        return np.where(measured, reward / np.where(measured, saliency, 1.0), self.curvature_prior)

    def prior(self, index: int) -> np.ndarray:
        """Estimated loss increase of removing each weight of kernel `index` before its probes
        are trusted: rho_role * w^2 * F (`obd_prior`; one kernel, read on its own)."""
        kernel = self.kernels[index]
        role_rho = float(self.rho()[self.roles.index(kernel.role)])
        return obd_prior(
            role_rho, kernel.layer.kernel.numpy(), kernel.layer.mask.numpy(), self.fisher[index].numpy()
        )

    def state(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self.reward_ema[index].numpy(), self.visits[index].numpy()
