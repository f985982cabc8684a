import keras
import numpy as np
import pytest
import tensorflow as tf

from gated_bert.layers import PRUNABLE_ROLES, GatedDense, straight_through
from gated_bert.model import PrunableKernel, build_model, prunable_kernels
from gated_bert.pruning.masks import mask_for
from gated_bert.pruning.methods.magnitude import magnitude_importance
from gated_bert.pruning.methods.movement import movement_importance
from gated_bert.pruning.methods.spt import SptExplorer, rank_importance, reward_update, sort_keys
from gated_bert.training.fused_adam import FusedAdam
from tests.conftest import micro_config


def test_straight_through_forward_is_mask_gradient_reaches_scores():
    scores = tf.Variable([0.3, -0.2, 0.5])
    mask = tf.constant([1.0, 0.0, 1.0])
    with tf.GradientTape() as tape:
        value = straight_through(scores, mask)
        loss = tf.reduce_sum(value * tf.constant([2.0, 3.0, 4.0]))
    np.testing.assert_array_equal(value.numpy(), mask.numpy())
    np.testing.assert_array_equal(tape.gradient(loss, scores).numpy(), [2.0, 3.0, 4.0])


def test_movement_score_gradient_equals_w_times_grad_of_effective_weight():
    keras.utils.set_random_seed(0)
    layer = GatedDense(3, use_bias=False, with_scores=True)
    x = tf.constant(np.random.default_rng(0).normal(size=(4, 5)), tf.float32)
    layer(x)
    mask = np.ones((5, 3), np.float32)
    mask[0, 0] = mask[2, 1] = 0.0
    layer.mask.assign(mask)
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x))
    grad_scores, grad_kernel = tape.gradient(loss, [layer.scores, layer.kernel])
    d_effective = x.numpy().T @ np.ones((4, 3), np.float32)  # dL/dW' for L = sum(x @ W')
    np.testing.assert_allclose(grad_scores.numpy(), layer.kernel.numpy() * d_effective, rtol=1e-5)
    np.testing.assert_allclose(grad_kernel.numpy(), mask * d_effective, rtol=1e-5)


def test_scored_kernel_equals_the_straight_through_product_and_its_gradients():
    """The one-product form movement's layers use: same value and gradients as W * ST(S, mask)."""
    from gated_bert.layers.gated_dense import scored_kernel

    rng = np.random.default_rng(1)
    kernel, scores = (tf.Variable(rng.normal(size=(6, 4)).astype(np.float32)) for _ in range(2))
    mask = tf.constant((rng.random((6, 4)) > 0.4).astype(np.float32))
    weights = tf.constant(rng.normal(size=(6, 4)).astype(np.float32))
    results = []
    for form in (
        lambda: scored_kernel(kernel, mask, scores),
        lambda: kernel * straight_through(scores, mask),
    ):
        with tf.GradientTape() as tape:
            value = form()
            loss = tf.reduce_sum(tf.sin(value) * weights)
        results.append([value.numpy(), *(g.numpy() for g in tape.gradient(loss, [kernel, scores]))])
    for new, reference in zip(*results):
        np.testing.assert_allclose(new, reference, rtol=1e-6)
    assert not np.allclose(results[0][2], 0.0)  # the scores get a gradient


def test_movement_pruned_weight_returns_when_its_score_rises():
    scores = np.array([0.1, 0.2, 0.3, 0.4])
    mask = mask_for(movement_importance(scores), 0.5)
    assert mask.tolist() == [0, 0, 1, 1]
    scores[0] = 1.0
    assert mask_for(movement_importance(scores), 0.5).tolist() == [1, 0, 0, 1]


def test_without_top_directions_removes_the_best_rank_r_part_of_the_signed_scores():
    """Closed form: (T - T_r) * sign(W) with T = S * sign(W) and T_r its truncated SVD."""
    from gated_bert.pruning.methods.movement import without_top_directions

    rng = np.random.default_rng(3)
    for shape in [(24, 40), (40, 24)]:
        kernel = rng.normal(size=shape).astype(np.float32)
        low_rank = (
            rng.normal(size=(shape[0], 3)) @ np.diag([30.0, 20.0, 10.0]) @ rng.normal(size=(3, shape[1]))
        )
        signed = (low_rank + rng.normal(size=shape)).astype(np.float32)
        scores = signed * np.sign(kernel)
        u, s, vt = np.linalg.svd(signed.astype(np.float64), full_matrices=False)
        for rank in (1, 3):
            expected = (signed - (u[:, :rank] * s[:rank]) @ vt[:rank]) * np.sign(kernel)
            got = without_top_directions(scores, kernel, rank).numpy()
            assert got.shape == shape and got.dtype == np.float32
            np.testing.assert_allclose(got, expected, atol=2e-3 * np.abs(expected).max())
        # an exactly rank-3 signed matrix has nothing left after three directions
        exact = (low_rank * np.sign(kernel)).astype(np.float32)
        assert np.abs(without_top_directions(exact, kernel, 3).numpy()).max() < 1e-4 * np.abs(exact).max()


def test_movement_remove_directions_ranks_the_cleaned_scores_and_checks_its_count():
    from gated_bert.errors import ConfigError
    from gated_bert.pruning.methods.movement import without_top_directions
    from gated_bert.pruning.pruner import Pruner

    config = micro_config(pruning_method="movement", movement_remove_directions=2)
    model = build_model(config.architecture(), 2, with_scores=True)
    method = Pruner(config, model, steps_per_epoch=3).method
    rng = np.random.default_rng(0)
    for kernel in method.kernels:
        kernel.layer.scores.assign(rng.normal(size=kernel.layer.scores.shape).astype(np.float32))
    got = method.importances("per_layer")
    for kernel, importance in zip(method.kernels, got):
        cleaned = without_top_directions(kernel.layer.scores.numpy(), kernel.layer.kernel.numpy(), 2)
        np.testing.assert_allclose(importance, cleaned, rtol=0, atol=1e-6 * np.abs(cleaned).max())
        np.testing.assert_array_equal(method.score(kernel), importance)  # the per-kernel reference
        assert not np.allclose(importance, kernel.layer.scores.numpy())
    assert method.ranks_in_graph and len(method.ranking_values()) == len(method.kernels)
    smallest = min(min(k.layer.kernel.shape) for k in method.kernels)
    with pytest.raises(ConfigError, match=f"movement_remove_directions {smallest} must be below"):
        Pruner(micro_config(pruning_method="movement", movement_remove_directions=smallest), model, 3)


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_movement_scores_optimizer(optimizer):
    """sgd: the scores are -lr times the summed score gradients W * dL/dW' (the paper's movement),
    so their ranking follows the gradients' sizes; adam moves every score by about lr per step
    whatever its gradient's size, so a weight with a 1000x smaller gradient moves as far."""
    from gated_bert.pruning.pruner import Pruner

    config = micro_config(pruning_method="movement", movement_scores_optimizer=optimizer)
    model = build_model(config.architecture(), 2, with_scores=True)
    pruner = Pruner(config, model, steps_per_epoch=3)
    scores = pruner.method.extra_variables()
    optimizer_ = pruner.method.extra_optimizer(FusedAdam)
    rate = config.movement_scores_learning_rate
    rng = np.random.default_rng(5)
    total = [np.zeros(v.shape, np.float32) for v in scores]
    for _ in range(3):
        gradients = []
        for i, variable in enumerate(scores):
            g = rng.normal(size=variable.shape).astype(np.float32)
            g[0] *= 1e-3  # the first row's gradients are a thousand times smaller
            total[i] += g
            gradients.append(tf.constant(g))
        optimizer_.apply(gradients, scores)
    first = scores[0].numpy()
    if optimizer == "sgd":
        for variable, summed in zip(scores, total):
            np.testing.assert_allclose(variable.numpy(), -rate * summed, rtol=1e-5, atol=1e-9)
        assert np.abs(first[0]).max() < 1e-2 * np.abs(first[1:]).mean()
    else:
        assert np.abs(first[0]).mean() > 0.3 * np.abs(first[1:]).mean()  # Adam's normalisation
        assert np.abs(first).max() <= 3 * rate * 1.001


def test_magnitude_keeps_pruned_weights_pruned():
    kernel = np.array([5.0, 0.1, 3.0, 2.0])
    mask = np.array([0.0, 1.0, 1.0, 1.0])  # the largest weight was already pruned
    assert mask_for(magnitude_importance(kernel, mask), 0.5).tolist() == [0, 0, 1, 1]


def test_reward_update_rule_and_sign():
    ema = tf.constant([0.0, 0.4, 0.4, 0.7])
    visits = tf.constant([0.0, 2.0, 2.0, 0.0])
    probe = tf.constant([1.0, 1.0, 0.0, 0.0])
    # r = L_probe - L_full: removing E raised the loss by 0.8 -> E is useful
    new = reward_update(ema, visits, probe, tf.constant(0.8), alpha=0.25).numpy()
    np.testing.assert_allclose(new, [0.8, 0.75 * 0.4 + 0.25 * 0.8, 0.4, 0.7])


def test_spt_ranking_tiers():
    kernel = np.array([9.0, 0.1, 5.0, 0.2, 3.0, 1.0])
    mask = np.array([1, 1, 1, 1, 1, 0], np.float32)
    ema = np.array([-0.1, 0.5, 0.0, 0.0, 0.2, 0.0])
    visits = np.array([3, 1, 1, 0, 2, 0])
    importance = rank_importance(sort_keys(kernel, mask, ema, visits))
    # closed first: pruned (5), harmless by ema then |w| (0 with -0.1, then 2 with 0.0),
    # unprobed by |w| (3), useful by ema (4 with 0.2, then 1 with 0.5)
    assert np.argsort(importance).tolist() == [5, 0, 2, 3, 4, 1]


def _kernels(n=2, shape=(6, 4)):
    out = []
    for i in range(n):
        layer = GatedDense(shape[1])
        layer.build((None, shape[0]))
        out.append(PrunableKernel(0, PRUNABLE_ROLES[i % 6], layer))
    return out


def test_probe_sets_differ_between_same_shaped_layers_and_steps():
    explorer = SptExplorer(_kernels(2, (40, 40)), epsilon=0.05, alpha=0.1, per_layer=False, seed=3)
    a = explorer.select(explorer.kernels[0].layer.mask).numpy()
    b = explorer.select(explorer.kernels[1].layer.mask).numpy()
    c = explorer.select(explorer.kernels[0].layer.mask).numpy()
    assert a.sum() == b.sum() == np.ceil(0.05 * 1600)
    assert not np.array_equal(a, b) and not np.array_equal(a, c)


def test_probe_only_draws_active_weights():
    explorer = SptExplorer(_kernels(1, (10, 10)), epsilon=0.5, alpha=0.1, per_layer=False, seed=0)
    mask = np.ones((10, 10), np.float32)
    mask[:6] = 0.0
    explorer.kernels[0].layer.mask.assign(mask)
    chosen = explorer.select(explorer.kernels[0].layer.mask).numpy()
    assert chosen.sum() == 20 and chosen[:6].sum() == 0


def test_probe_of_a_nearly_or_wholly_pruned_kernel_draws_at_most_its_size(monkeypatch):
    """A kernel pruned whole (global ranking) is not probed; one with 3 active weights of 65,536
    gets one of them, uniformly, without drawing more random indices than it has weights."""
    import keras

    requested = []
    randint = keras.random.randint
    monkeypatch.setattr(
        keras.random,
        "randint",
        lambda shape, *a, **k: requested.append(int(shape[0])) or randint(shape, *a, **k),
    )
    explorer = SptExplorer(_kernels(1, (256, 256)), epsilon=0.01, alpha=0.1, per_layer=False, seed=0)
    mask = explorer.kernels[0].layer.mask
    mask.assign(np.zeros((256, 256), np.float32))
    assert explorer.select_indices(mask).numpy().size == 0
    few = np.zeros(256 * 256, np.float32)
    few[[5, 40_000, 65_535]] = 1.0
    mask.assign(few.reshape(256, 256))
    drawn = [int(i) for _ in range(300) for i in explorer.select_indices(mask).numpy()]
    assert len(drawn) == 300 and set(drawn) == {5, 40_000, 65_535}
    assert min(drawn.count(i) for i in (5, 40_000, 65_535)) > 60  # about 100 each
    assert requested and max(requested) <= 256 * 256  # uncapped: (1 + 6 + 8) * 65,536 / 3 per probe


def test_per_layer_exploration_cycles_roles():
    model = build_model(micro_config().architecture(), 2)
    kernels = prunable_kernels(model)
    explorer = SptExplorer(kernels, epsilon=0.01, alpha=0.5, per_layer=True, seed=0)
    explorer.exploring.assign(True)
    masks_before = [k.layer.mask.numpy().copy() for k in kernels]
    for step in range(7):
        explorer.probe(lambda: tf.constant(1.0), tf.constant(0.5))
        role = PRUNABLE_ROLES[step % 6]
        visited = {k.role for k, v in zip(kernels, explorer.visits) if v.numpy().sum() > 0}
        expected = set(PRUNABLE_ROLES[: min(step + 1, 6)])
        assert visited == expected, (step, role)
    for k, before in zip(kernels, masks_before):
        np.testing.assert_array_equal(k.layer.mask.numpy(), before)  # probing restores masks exactly
    query_visits = explorer.visits[0].numpy()
    assert query_visits.sum() == 2 * np.ceil(0.01 * query_visits.size)  # steps 0 and 6


def test_spt_prunes_planted_irrelevant_weights_first():
    """Inputs 4..7 are always zero: their weights provably cannot change the loss.

    They are also the LARGEST weights, so magnitude pruning would keep them;
    SPT must close them first because removing them never raises the loss.
    """
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = np.zeros((64, 8), np.float32)
    x[:, :4] = rng.normal(size=(64, 4))
    layer = GatedDense(2, use_bias=False)
    layer.build((None, 8))
    kernel = rng.uniform(0.2, 0.5, size=(8, 2)).astype(np.float32)
    kernel[4:] = rng.uniform(2.0, 3.0, size=(4, 2))  # irrelevant but large
    layer.kernel.assign(kernel)
    target = x @ kernel
    kernels = [PrunableKernel(0, "query", layer)]
    explorer = SptExplorer(kernels, epsilon=0.05, alpha=0.2, per_layer=False, seed=1)  # 1 weight per probe
    explorer.exploring.assign(True)
    loss = lambda: tf.reduce_mean((layer(tf.constant(x)) - target) ** 2)

    @tf.function
    def step():
        return explorer.probe(loss, loss())

    for _ in range(200):
        step()
    ema, visits = explorer.state(0)
    assert (visits > 0).all()
    np.testing.assert_array_equal(ema[4:], 0.0)  # removing an irrelevant weight changes nothing
    assert (ema[:4] > 0).all()  # removing a relevant weight raises the loss
    importance = rank_importance(sort_keys(kernel, layer.mask.numpy(), ema, visits))
    mask = mask_for(importance.reshape(kernel.shape), 0.5)
    np.testing.assert_array_equal(mask[4:], 0.0)
    np.testing.assert_array_equal(mask[:4], 1.0)
    magnitude_mask = mask_for(magnitude_importance(kernel, layer.mask.numpy()), 0.5)
    assert magnitude_mask[4:].sum() == 8  # magnitude keeps exactly the wrong ones


def test_trainer_without_pruning_callback_fails_loudly():
    from gated_bert.pruning.pruner import Pruner
    from gated_bert.training.trainer import PruningTrainer

    config = micro_config(pruning_method="magnitude", pruning_start_epoch=1, pruning_end_epoch=2)
    model = build_model(config.architecture(), 2)
    trainer = PruningTrainer(
        model, keras.losses.SparseCategoricalCrossentropy(from_logits=True), pruner=Pruner(config, model, 10)
    )
    trainer.compile(optimizer="adam")
    with pytest.raises(RuntimeError, match="PruningCallback"):
        trainer.fit(tf.data.Dataset.from_tensors(({"token_ids": [[2, 3]], "segment_ids": [[0, 0]]}, [1])))


def test_random_control_is_seeded_keeps_pruned_and_ignores_magnitude():
    from gated_bert.pruning.methods.random import RandomControl

    def masks_after(seed, rounds=(0.5, 0.75)):
        kernels = _kernels(1, (20, 20))
        layer = kernels[0].layer
        layer.kernel.assign(np.arange(400, dtype=np.float32).reshape(20, 20))  # magnitude = position
        method = RandomControl(micro_config(seed=seed), kernels)
        history = []
        for target in rounds:
            layer.mask.assign(mask_for(method.importances("per_layer")[0], target))
            history.append(layer.mask.numpy().copy())
        return history

    first, again, other = masks_after(1), masks_after(1), masks_after(2)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)  # the same seed draws the same weights
    assert not np.array_equal(first[0], other[0])
    assert (first[0] == 0).sum() == 200 and (first[1] == 0).sum() == 300
    assert np.all(first[1][first[0] == 0] == 0)  # pruned weights stay pruned
    # unlike magnitude (which would prune positions 0..199), about half the kept weights are small ones
    assert 70 <= first[0].reshape(-1)[:200].sum() <= 130


def test_registry_fails_loudly_and_lists_the_methods():
    from gated_bert.pruning.methods import METHODS, get_method, method_names

    assert method_names() == ("none", "magnitude", "movement", "spt", "random")
    assert all(cls.name == name for name, cls in METHODS.items())
    with pytest.raises(ValueError, match="unknown pruning method 'lottery'; choose one of: none, magnitude"):
        get_method("lottery")


def test_unknown_schedule_kind_fails_instead_of_becoming_linear():
    from gated_bert.pruning.schedules import EpochSchedule, StepSchedule

    with pytest.raises(ValueError, match="unknown schedule kind 'exponential'; choose one of: linear, cubic"):
        EpochSchedule("exponential", 1, 3, 0.0, 0.9)
    with pytest.raises(
        ValueError, match="unknown schedule kind 'cosine'; choose one of: linear, cubic, geometric, steps"
    ):
        StepSchedule("cosine", 0, 10, 5, 0.0, 0.9)


def test_methods_name_the_state_a_checkpoint_needs():
    from gated_bert.pruning.methods import needs_scores
    from gated_bert.pruning.pruner import Pruner

    for method, keys in (
        ("magnitude", set()),
        ("random", {"rng"}),
        ("movement", {"scores_optimizer"}),
        (
            "spt",
            {"reward_ema", "visits", "probe_count", "seed_generator", "fisher"}
            | {"reward_mean", "role_reward", "saliency_mean", "rho_seen"},
        ),
    ):
        config = micro_config(pruning_method=method, pruning_start_epoch=1, pruning_end_epoch=2)
        model = build_model(config.architecture(), 2, with_scores=needs_scores(method))
        pruner = Pruner(config, model, steps_per_epoch=10)
        pruner.method.extra_optimizer(FusedAdam)
        state = pruner.method.state()
        assert set(state) == keys, method
        if method == "spt":
            assert len(state["reward_ema"]) == len(state["visits"]) == 12  # 2 layers x 6 kernels
        if method == "movement":
            assert pruner.method.extra_variables() == [k.layer.scores for k in pruner.kernels]


@pytest.mark.parametrize(
    ("n", "active_share", "epsilon"),
    [(65536, 1.0, 0.01), (65536, 0.1, 0.01), (131072, 0.01, 0.01), (10, 1.0, 1.0)],
)
def test_spt_probe_sampler_is_top_k_of_the_noise(n, active_share, epsilon):
    from gated_bert.pruning.methods.spt import top_k_indices

    rng = np.random.default_rng(n)
    active = rng.random(n) < active_share
    noise = np.where(active, rng.random(n), -1.0).astype(np.float32)
    k = int(np.ceil(epsilon * active.sum()))
    got = top_k_indices(tf.constant(noise), tf.constant(k), tf.constant(float(active.sum())))
    np.testing.assert_array_equal(got.numpy(), tf.math.top_k(noise, k)[1].numpy())


def test_spt_probe_sampler_falls_back_to_the_whole_array():
    from gated_bert.pruning.methods.spt import top_k_indices

    noise = np.full(1000, 0.2, dtype=np.float32)  # far below the uniform's expected k-th largest
    noise[[3, 500]] = 0.3
    got = top_k_indices(tf.constant(noise), tf.constant(10), tf.constant(1000.0)).numpy()
    assert got.shape == (10,) and {3, 500} <= set(got.tolist())
    np.testing.assert_array_equal(got, tf.math.top_k(noise, 10)[1].numpy())


def test_saliency_credit_shares_the_reward_by_w2_f_over_the_probed_set_only():
    """One probe, by hand: F = g^2 on the first step, E's credits r * w^2 F / sum_E w^2 F,
    every other weight untouched, the masks restored exactly."""
    kernels = _kernels(2, (20, 10))
    rng = np.random.default_rng(1)
    masks = [(rng.random((20, 10)) > 0.25).astype(np.float32) for _ in kernels]
    for kernel, mask in zip(kernels, masks):
        kernel.layer.mask.assign(mask)
    grads = [tf.constant(rng.normal(size=(20, 10)).astype(np.float32)) for _ in kernels]
    explorer = SptExplorer(kernels, epsilon=0.1, alpha=0.5, per_layer=False, seed=4, credit="saliency")
    explorer.exploring.assign(True)
    reward = explorer.probe(lambda: tf.constant(1.75), tf.constant(0.5), grads).numpy()
    assert reward == pytest.approx(1.25)
    probed = [v.numpy() > 0 for v in explorer.visits]
    weights = [k.layer.kernel.numpy() for k in kernels]
    saliency = [w * w * g.numpy() ** 2 for w, g in zip(weights, grads)]
    total = sum(s[e].sum() for s, e in zip(saliency, probed))
    for kernel, mask, e, s, ema, g, fisher in zip(
        kernels, masks, probed, saliency, explorer.reward_ema, grads, explorer.fisher
    ):
        assert e.sum() == np.ceil(0.1 * mask.sum()) and not (e & (mask == 0)).any()
        np.testing.assert_allclose(ema.numpy(), np.where(e, 1.25 * s / total, 0.0), rtol=1e-5, atol=1e-9)
        np.testing.assert_allclose(fisher.numpy(), g.numpy() ** 2, rtol=1e-6)
        np.testing.assert_array_equal(kernel.layer.mask.numpy(), mask)


def test_movement_with_epoch_updates_reselects_every_step_at_the_held_target():
    """Epoch updates step the sparsity at epoch ends; movement's top-k follows its scores every step
    of the window's later epochs at the latest target, and the final mask is held after the window."""
    from gated_bert.pruning.callback import PruningCallback
    from gated_bert.pruning.pruner import Pruner

    config = micro_config(
        pruning_method="movement", pruning_updates="epoch", sparsity_schedule="linear", epochs=4,
        pruning_start_epoch=1, pruning_end_epoch=3, end_sparsity=0.5,
    )  # fmt: skip
    model = build_model(config.architecture(), 2, with_scores=True)
    callback = PruningCallback(Pruner(config, model, steps_per_epoch=3))
    kernel = prunable_kernels(model)[0].layer
    rng = np.random.default_rng(0)

    def epoch(index, rescore):
        callback.on_epoch_begin(index)
        for batch in range(3):
            if rescore:  # new scores before each step: the mask should follow them (or not)
                kernel.scores.assign(rng.normal(size=kernel.scores.shape).astype(np.float32))
            before = kernel.mask.numpy().copy()
            callback.on_train_batch_end(batch)
            yield before, kernel.mask.numpy().copy()
        callback.on_epoch_end(index, {})

    for _before, after in epoch(0, rescore=True):  # window epoch 1: target 0, nothing pruned yet
        assert after.min() == 1.0
    list(epoch(1, rescore=False))  # the end of epoch 2 prunes 25%
    assert (kernel.mask.numpy() == 0).mean() == 0.25
    for before, after in epoch(2, rescore=True):  # epoch 3: the top-k of the new scores, at 25%
        expected = mask_for(movement_importance(kernel.scores.numpy()), 0.25)
        np.testing.assert_array_equal(after, expected)
        assert (after == 0).mean() == 0.25 and not np.array_equal(before, after)
    assert (kernel.mask.numpy() == 0).mean() == 0.5  # the end of epoch 3 reaches the target
    for before, after in epoch(3, rescore=True):  # after the window: held whatever the scores
        np.testing.assert_array_equal(before, after)


@pytest.mark.parametrize("method", ["spt", "magnitude", "movement"])
def test_batched_reads_give_the_per_kernel_importances(method):
    """Each method's `importances` reads every variable in one call (`VariableReader`): the values
    equal the per-kernel ones (`estimates` / `score`) after the variables were changed."""
    from gated_bert.pruning.pruner import Pruner

    config = micro_config(pruning_method=method, spt_min_probes=2)
    model = build_model(config.architecture(), 2, with_scores=method == "movement")
    pruner = Pruner(config, model, steps_per_epoch=3)
    method_ = pruner.method
    rng = np.random.default_rng(3)
    first = method_.importances(pruner.scope)  # builds the reader; the next call must see new values
    for i, kernel in enumerate(pruner.kernels):
        shape = kernel.layer.mask.shape
        kernel.layer.kernel.assign(rng.normal(size=shape).astype(np.float32))
        kernel.layer.mask.assign((rng.random(size=shape) > 0.3).astype(np.float32))
        if kernel.layer.scores is not None:
            kernel.layer.scores.assign(rng.normal(size=shape).astype(np.float32))
        if method == "spt":
            explorer = method_.explorer
            explorer.reward_ema[i].assign(rng.normal(size=shape).astype(np.float32))
            explorer.visits[i].assign(rng.integers(0, 4, size=shape).astype(np.float32))
            explorer.fisher[i].assign(rng.random(size=shape).astype(np.float32))
    batched = method_.importances(pruner.scope)
    if method == "spt":
        single = [method_.estimates(i) for i in range(len(pruner.kernels))]
    else:
        single = [method_.score(kernel) for kernel in pruner.kernels]
    for new, reference, old in zip(batched, single, first):
        np.testing.assert_array_equal(new, reference)
        assert not np.array_equal(new, old)
