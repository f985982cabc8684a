"""Scoring rules: importance of every weight; higher means keep.

Each rule is a pure function of numpy arrays. Rules whose pruned weights must
stay pruned rank them below every active weight.
"""

from __future__ import annotations

import numpy as np

PRUNED = -1.0  # below any |w| >= 0


def magnitude(kernel: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """|w| for active weights; pruned weights stay pruned."""
    return np.where(mask > 0, np.abs(kernel), PRUNED)


def movement(scores: np.ndarray) -> np.ndarray:
    """Movement scores S (Sanh et al. 2020); a pruned weight returns if S rises."""
    return np.asarray(scores)


# SPT tiers, lowest closed first (see docs/pruning.md).
TIER_PRUNED, TIER_HARMLESS, TIER_UNPROBED, TIER_USEFUL = 0, 1, 2, 3


def spt_sort_keys(
    kernel: np.ndarray, mask: np.ndarray, reward_ema: np.ndarray, visits: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(tier, value, tie-break) keys; weights sort ascending = closed first.

    - tier 0: already pruned (stay pruned);
    - tier 1: probed with reward_ema <= 0 (removing them did not raise the loss),
      ordered by reward_ema, then |w|;
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


def spt_importance(keys: tuple[np.ndarray, np.ndarray, np.ndarray]) -> np.ndarray:
    """Rank (0 = least important) from lexicographic (tier, value, |w|) keys."""
    tier, value, tie = keys
    order = np.lexsort((tie, value, tier))
    rank = np.empty(order.size, dtype=np.float64)
    rank[order] = np.arange(order.size, dtype=np.float64)
    return rank
