"""SPT's ranking: from reward EMAs, visit counts and the saliency prior to one importance per weight.

A weight probed at least `spt_min_probes` times is ranked by its credit EMA; the others by the
prior rho_role * w_i^2 * F_i (rho: the measured ratio mean reward / mean sum_E saliency of the
probes of their role), which is in the same loss units. With `shared` credit the original
tiers apply (`sort_keys`).
"""

from __future__ import annotations

import numpy as np

# Tiers, lowest closed first.
TIER_PRUNED, TIER_HARMLESS, TIER_UNPROBED, TIER_USEFUL = 0, 1, 2, 3


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
