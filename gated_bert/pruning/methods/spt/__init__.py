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

The package, one concept per file: `credit.py` (how r becomes a weight's credit),
`sampling.py` (drawing the probes), `explorer.py` (the statistics and the probe),
`ranking.py` (estimates and keys), `method.py` (the method).

How r becomes a weight's credit (`spt_credit`, see `credit.py` and docs/pruning.md):
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

from gated_bert.pruning.methods.spt.credit import CREDITS, STATS_DECAY, credits, reward_update, running_mean
from gated_bert.pruning.methods.spt.explorer import SptExplorer
from gated_bert.pruning.methods.spt.method import Spt
from gated_bert.pruning.methods.spt.ranking import (
    TIER_HARMLESS,
    TIER_PRUNED,
    TIER_UNPROBED,
    TIER_USEFUL,
    obd_prior,
    rank_importance,
    sort_keys,
    spt_estimate,
)
from gated_bert.pruning.methods.spt.sampling import sample_active, top_k_indices

__all__ = [
    "CREDITS",
    "STATS_DECAY",
    "TIER_HARMLESS",
    "TIER_PRUNED",
    "TIER_UNPROBED",
    "TIER_USEFUL",
    "Spt",
    "SptExplorer",
    "credits",
    "obd_prior",
    "rank_importance",
    "reward_update",
    "running_mean",
    "sample_active",
    "sort_keys",
    "spt_estimate",
    "top_k_indices",
]
