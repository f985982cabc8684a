"""SPT: sparse training by exploration with rewards.

During the pruning window, every train step probes: for every gated kernel
it draws E, ceil(epsilon * active) random active weights, masks them for one
extra forward pass (a repeat of the training pass, same dropout draws: a
paired difference), and turns r = L_probe - L_full into a
credit per weight of E, averaged by an exponential moving average (factor
alpha). The probe runs inside the compiled train step as TF ops (never as
Python side effects, which a compiled step would drop), after the gradients
are taken and before they are applied, so L_full and L_probe see the same
weights.

How r becomes a weight's credit (`spt_credit`, see `credits` and docs/pruning.md):
- shared: every weight of E gets r (the original description);
- baseline: r minus the running mean reward (an inclusion-indicator regression);
- first_order: the weight's own first-order term t_i = -g_i * w_i (the loss
  change a Taylor expansion predicts for removing it), plus an equal share of
  the residual r - sum_E t (a control variate: the predictable part of r is
  removed before it is shared);
- saliency (default): a share of r in proportion to the weight's saliency
  w_i^2 * F_i (F: running mean of g_i^2, the empirical Fisher's diagonal;
  Optimal Brain Damage's second-order term), so the measured reward is
  attributed to the weights that most likely caused it instead of being
  spread as noise.

A weight probed at least `spt_min_probes` times is ranked by its credit EMA;
the others by the prior rho_role * w_i^2 * F_i (rho: the measured ratio mean
reward / mean sum_E saliency of the probes of their role, batch/2 until measured
positive),
which is in the same loss units. With `shared` the original tiers apply (see
`sort_keys`). Pruned weights are zeroed. Default schedule: the step list, read
by optimizer step (`pruning_updates`); scope global.

With a structured granularity (`pruning/groups.py`) a probe removes whole
heads / neurons (ceil(epsilon * active groups) per block and kind, across all
their kernels' slices), so a group's weights share their rewards; a group's
importance is the sum of its weights' ranks (`spt_explore_per_layer` is then
not used).
"""

from __future__ import annotations

import numpy as np

from gated_bert.pruning import groups
from gated_bert.pruning.masks import split_like
from gated_bert.pruning.methods.base import PruningMethod

# Tiers, lowest closed first.
TIER_PRUNED, TIER_HARMLESS, TIER_UNPROBED, TIER_USEFUL = 0, 1, 2, 3
CREDITS = ("shared", "baseline", "first_order", "saliency")
STATS_DECAY = 0.02  # running means of g^2, -g*w, the reward and rho: about the last 50 steps


def reward_update(ema, visits, probe, reward, alpha: float):
    """New reward EMA: r on a first visit, (1 - alpha) * ema + alpha * r after."""
    import tensorflow as tf

    updated = tf.where(visits > 0, (1.0 - alpha) * ema + alpha * reward, reward)
    return tf.where(probe > 0, updated, ema)


def credits(credit: str, reward, baseline, first_order, saliency):
    """Credits of the probed weights E (one vector per kernel) from one probe's reward r.

    Args:
        credit: one of CREDITS.
        reward: r = L_probe - L_full (scalar).
        baseline: the running mean reward before this step (scalar).
        first_order: t = -g * w of E's weights per kernel (the Taylor estimate of removing
            each); needed only by the first_order credit (None otherwise).
        saliency: w^2 * F of E's weights per kernel (the second-order estimate, up to a factor).

    Returns:
        (credits per kernel, sum_E saliency).
    """
    import tensorflow as tf

    total_saliency = tf.add_n([tf.reduce_sum(s) for s in saliency])
    size = tf.maximum(tf.cast(tf.add_n([tf.size(s) for s in saliency]), tf.float32), 1.0)
    if credit == "shared":
        return [tf.zeros_like(s) + reward for s in saliency], total_saliency
    if credit == "baseline":
        return [tf.zeros_like(s) + (reward - baseline) for s in saliency], total_saliency
    if credit == "first_order":
        predicted = tf.add_n([tf.reduce_sum(t) for t in first_order])
        return [t + (reward - predicted) / size for t in first_order], total_saliency
    if credit == "saliency":
        share = [
            tf.where(total_saliency > 0, tf.math.divide_no_nan(s, total_saliency), tf.ones_like(s) / size)
            for s in saliency
        ]
        return [reward * w for w in share], total_saliency
    raise ValueError(f"unknown SPT credit {credit!r}; choose one of: {', '.join(CREDITS)}")


def running_mean(old, new, seen, decay: float = STATS_DECAY):
    """`new` on the first step (`seen` false), else (1 - decay) * old + decay * new."""
    import tensorflow as tf

    return tf.where(seen, (1.0 - decay) * old + decay * new, new)


def sort_keys(
    kernel: np.ndarray, mask: np.ndarray, reward_ema: np.ndarray, visits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tier, value, tie-break) keys; weights sort ascending = closed first.

    - tier 0: already pruned (stay pruned);
    - tier 1: probed with reward_ema <= 0, ordered by reward_ema, then |w|;
    - tier 2: never probed, ordered by |w|;
    - tier 3: probed with reward_ema > 0, ordered by reward_ema, then |w|.
    """
    magnitude_ = np.abs(kernel).reshape(-1).astype(np.float64)
    ema = np.asarray(reward_ema, dtype=np.float64).reshape(-1)
    probed = np.asarray(visits).reshape(-1) > 0
    active = np.asarray(mask).reshape(-1) > 0
    tier = np.where(probed, np.where(ema <= 0, TIER_HARMLESS, TIER_USEFUL), TIER_UNPROBED)
    tier = np.where(active, tier, TIER_PRUNED)
    value = np.where(probed, ema, magnitude_)
    return tier, value, magnitude_


def obd_prior(role_rho: float, kernel, mask, fisher) -> np.ndarray:
    """rho_role * w^2 * F of the active weights (Optimal Brain Damage's saliency on the measured scale)."""
    weights = kernel * mask
    return role_rho * weights * weights * fisher


def spt_estimate(mask, reward_ema, visits, prior, min_probes: int) -> np.ndarray:
    """A kernel's estimated loss increase of removing each weight: the credit EMA where it was
    probed at least `min_probes` times (at least once), else `prior`; -inf where pruned."""
    trusted = visits >= max(min_probes, 1)
    value = np.where(trusted, reward_ema, prior)  # float32 values: ranked as they are (no float64 copy)
    return np.where(mask > 0, value, -np.inf).astype(value.dtype, copy=False)


def rank_importance(keys: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Rank (0 = least important) from lexicographic (tier, value, |w|) keys."""
    tier, value, tie = keys
    order = np.lexsort((tie, value, tier))
    rank = np.empty(order.size, dtype=np.float64)
    rank[order] = np.arange(order.size, dtype=np.float64)
    return rank


def _group_activity(mask, axis: str, width: int):
    """1 for each group of `mask` with an active weight (TF twin of `groups.group_view`)."""
    import tensorflow as tf

    rows, columns = mask.shape
    if axis == "columns":
        return tf.reduce_max(tf.reshape(mask, (rows, columns // width, width)), axis=(0, 2))
    return tf.reduce_max(tf.reshape(mask, (rows // width, -1)), axis=1)


def _expand(chosen, axis: str, width: int, shape):
    """A per-group 0/1 vector as a weight-level probe of `shape` (TF twin of `groups.expand`)."""
    import tensorflow as tf

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
    import tensorflow as tf

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
    import keras
    import tensorflow as tf

    size = tf.size(flat)
    kf = tf.cast(k, tf.float32)
    coverage = tf.cast(size, tf.float32) / tf.maximum(n_active, 1.0)  # draws per active draw
    wanted = tf.math.ceil((kf + 6.0 * tf.sqrt(kf) + 8.0) * coverage / (1.0 - min(epsilon, 0.9)))
    # at most one draw per weight: a nearly pruned kernel would otherwise draw up to 8x its size
    # (11 ms per tiny step with a whole kernel pruned); random keys over the kernel cost less then
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
        import keras
        import tensorflow as tf

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
        import tensorflow as tf

        flat = tf.reshape(tf.convert_to_tensor(mask), [-1])
        n_active = tf.reduce_sum(flat)
        k = tf.cast(tf.math.ceil(self.epsilon * n_active), tf.int32)
        return sample_active(flat, k, n_active, self.epsilon, self.seed_generator)

    def select(self, mask):
        """A 0/1 tensor marking ceil(epsilon * active) random active weights of `mask`."""
        import tensorflow as tf

        index = self.select_indices(mask)
        chosen = tf.scatter_nd(index[:, None], tf.ones_like(index, dtype=tf.float32), [tf.size(mask)])
        return tf.reshape(chosen, tf.shape(mask))

    def _group_probes(self):
        """Whole heads / neurons: per block, ceil(epsilon * active groups) random active groups,
        masked across all their kernels' slices at once."""
        import tensorflow as tf

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
        import tensorflow as tf

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
        import tensorflow as tf

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
        import tensorflow as tf

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


class Spt(PruningMethod):
    name = "spt"
    default_scope = "global"
    compiles_with_xla = False  # the probe draws a varying number of weights (tf.unique) and gathers by index

    def __init__(self, config, kernels):
        super().__init__(config, kernels)
        self.explorer = SptExplorer(
            kernels,
            epsilon=config.effective_spt_epsilon,
            alpha=config.spt_reward_alpha,
            per_layer=config.spt_explore_per_layer,
            seed=config.seed + 1,
            granularity=config.pruning_granularity,
            num_heads=config.architecture().num_heads,
            credit=config.spt_credit,
            # OBD: the loss rises by H w^2 / 2; a batch's g^2 is about the per-example Fisher / batch
            curvature_prior=config.batch_size / 2,
        )
        self.min_probes = config.spt_min_probes
        from gated_bert.pruning.transfer import VariableReader

        layers = [kernel.layer for kernel in kernels]  # what the estimates need, in one call
        self._read = VariableReader(
            [layer.mask for layer in layers]
            + [layer.kernel for layer in layers]
            + list(self.explorer.reward_ema)
            + list(self.explorer.visits)
            + list(self.explorer.fisher)
        )

    @classmethod
    def default_schedule(cls, config) -> str:
        return "steps"

    def estimates(self, index: int) -> np.ndarray:
        """Estimated loss increase of removing each weight of kernel `index` (credit EMA once
        trusted, else the prior); pruned weights get -inf, so they stay pruned. One kernel, read
        on its own; a ranking reads every kernel at once (`_estimates_of_all`)."""
        mask = self.kernels[index].layer.mask.numpy()
        ema, visits = self.explorer.state(index)
        return spt_estimate(mask, ema, visits, self.explorer.prior(index), self.min_probes)

    def importances(self, scope: str) -> list[np.ndarray]:
        if self.explorer.credit != "shared":  # one key, the estimate: fast enough for by-step updates
            return self._estimates_of_all()
        keys = [
            sort_keys(k.layer.kernel.numpy(), k.layer.mask.numpy(), *self.explorer.state(i))
            for i, k in enumerate(self.kernels)
        ]
        if scope == "global":
            joined = tuple(np.concatenate([key[j] for key in keys]) for j in range(3))
            return split_like(rank_importance(joined), [k.layer.mask for k in self.kernels])
        return [rank_importance(key).reshape(k.layer.mask.shape) for key, k in zip(keys, self.kernels)]

    def _estimates_of_all(self) -> list[np.ndarray]:
        """`estimates` of every kernel from one read of the variables (60 reads one by one on tiny)."""
        n, rho = len(self.kernels), self.explorer.rho()
        values = self._read()
        masks, kernels, emas, visits, fisher = (values[i * n : (i + 1) * n] for i in range(5))
        out = []
        for i, kernel in enumerate(self.kernels):
            role_rho = float(rho[self.explorer.roles.index(kernel.role)])
            prior = obd_prior(role_rho, kernels[i], masks[i], fisher[i])
            out.append(spt_estimate(masks[i], emas[i], visits[i], prior, self.min_probes))
        return out

    def train_step_hook(self, repeat_loss, training_loss, kernel_gradients=None) -> None:
        # L_full is the training pass's loss; L_probe repeats that pass (same dropout draws) with E
        # masked: a paired difference, one extra forward pass whatever the dropout
        self.explorer.probe(repeat_loss, training_loss, kernel_gradients)

    def on_epoch_begin(self, epoch: int, in_window: bool) -> None:
        self.explorer.exploring.assign(in_window)

    def on_train_end(self) -> None:
        self.explorer.exploring.assign(False)

    def state(self) -> dict:
        explorer = self.explorer
        return {
            "reward_ema": list(explorer.reward_ema),
            "visits": list(explorer.visits),
            "probe_count": explorer.probe_count,
            "fisher": list(explorer.fisher),
            "reward_mean": explorer.reward_mean,
            "role_reward": explorer.role_reward,
            "saliency_mean": explorer.saliency_mean,
            "rho_seen": explorer.rho_seen,
            "seed_generator": explorer.seed_generator.state,
        }
