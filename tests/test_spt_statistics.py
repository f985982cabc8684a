"""SPT's estimate against the truth: exhaustive ablation of every FFN neuron of a small model.

The model is trained briefly, then frozen; half of its neurons are made misleading for
magnitude (large ffn_in columns, near-zero ffn_out rows: a big L2 norm, little effect). The
truth is each neuron's loss increase when it alone is removed. SPT probes whole neurons
(`pruning_granularity=neuron`, one neuron per probe); its ranking must correlate with the truth
(Spearman >= 0.3 within 200 probes at a fixed seed) and beat magnitude's.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
from scipy.stats import spearmanr

from gated_bert.data.batching import pad_batch
from gated_bert.pruning import groups
from gated_bert.pruning.pruner import Pruner
from gated_bert.training.fit import fit, prepare_data, task_loss
from tests.conftest import micro_config

NEURONS = 32


def _ablation_truth(roles, loss) -> np.ndarray:
    base = float(loss())
    truth = np.zeros(NEURONS)
    mask_in, mask_out = roles["ffn_in"].layer.mask, roles["ffn_out"].layer.mask
    kept_in, kept_out = mask_in.numpy(), mask_out.numpy()
    for j in range(NEURONS):
        cut_in, cut_out = kept_in.copy(), kept_out.copy()
        cut_in[:, j], cut_out[j, :] = 0.0, 0.0
        mask_in.assign(cut_in)
        mask_out.assign(cut_out)
        truth[j] = float(loss()) - base
    mask_in.assign(kept_in)
    mask_out.assign(kept_out)
    return truth


def test_spt_ranks_neurons_like_exhaustive_ablation_and_beats_misled_magnitude(sst2_dir):
    config = micro_config(
        data_dir=str(sst2_dir), epochs=3, num_layers=1, num_heads=2, dff=NEURONS, learning_rate=3e-3
    )
    prepared = prepare_data(config)
    model = fit(config, prepared).classifier
    spt = config.replace(
        pruning_method="spt",
        enable_pruning=True,
        pruning_granularity="neuron",
        spt_epsilon=1 / NEURONS,
        spt_reward_alpha=0.25,
    )
    pruner = Pruner(spt, model, steps_per_epoch=1)
    roles = {k.role: k for k in pruner.kernels}
    misleading = np.random.default_rng(0).choice(NEURONS, NEURONS // 2, replace=False)
    w_in, w_out = roles["ffn_in"].layer.kernel.numpy(), roles["ffn_out"].layer.kernel.numpy()
    w_in[:, misleading] *= 8.0
    w_out[misleading, :] *= 0.02
    roles["ffn_in"].layer.kernel.assign(w_in)
    roles["ffn_out"].layer.kernel.assign(w_out)
    features, labels = pad_batch(prepared.train, np.arange(256))
    loss_fn = task_loss(prepared.task)

    def loss():
        return loss_fn(labels, model(features, training=False))

    truth = _ablation_truth(roles, loss)
    explorer = pruner.method.explorer
    explorer.exploring.assign(True)
    probe = tf.function(lambda: explorer.probe(loss, loss()))
    for _ in range(200):
        probe()
    ranks = groups.group_importances(
        pruner.kernels, pruner.method.importances("per_layer"), groups.NEURONS, 2, "sum"
    )
    weights = [np.abs(k.layer.kernel.numpy()) for k in pruner.kernels]
    magnitude = groups.group_importances(pruner.kernels, weights, groups.NEURONS, 2, "l2")
    spt_rho, magnitude_rho = spearmanr(ranks[0], truth)[0], spearmanr(magnitude[0], truth)[0]
    assert spt_rho >= 0.3 and spt_rho > magnitude_rho, (spt_rho, magnitude_rho)
