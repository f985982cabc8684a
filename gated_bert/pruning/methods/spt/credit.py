"""How one probe's reward becomes a credit per probed weight (`spt_credit`), and the running means.

- shared: every weight of the probed set E gets r = L_probe - L_full (the original description);
- baseline: r minus the running mean reward (an inclusion-indicator regression);
- first_order: the weight's own first-order term t_i = -g_i * w_i (the loss change a Taylor
  expansion predicts for removing it), plus an equal share of the residual r - sum_E t (a
  control variate: the predictable part of r is removed before it is shared);
- saliency (default): a share of r in proportion to the weight's saliency w_i^2 * F_i (F: running
  mean of g_i^2, the empirical Fisher's diagonal; Optimal Brain Damage's second-order term), so
  the measured reward is attributed to the weights that most likely caused it.
"""

from __future__ import annotations

import tensorflow as tf

from gated_bert.config import SPT_CREDITS as CREDITS

STATS_DECAY = 0.02  # running means of g^2, -g*w, the reward and rho: about the last 50 steps


def reward_update(ema, visits, probe, reward, alpha: float):
    """New reward EMA: r on a first visit, (1 - alpha) * ema + alpha * r after."""
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
    return tf.where(seen, (1.0 - decay) * old + decay * new, new)
