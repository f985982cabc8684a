"""Structured granularity: whole heads and neurons, exact in groups, for every method."""

from __future__ import annotations

import numpy as np
import pytest

from gated_bert.pruning import groups
from tests.conftest import micro_config


def test_group_view_and_expand_are_inverse():
    array = np.arange(4 * 6, dtype=np.float64).reshape(4, 6)
    view = groups.group_view(array, "columns", 2)  # 3 groups of 2 columns
    assert view.shape == (3, 8)
    np.testing.assert_array_equal(sorted(view[1]), sorted(array[:, 2:4].reshape(-1)))
    rows = groups.group_view(array, "rows", 2)  # 2 groups of 2 rows
    np.testing.assert_array_equal(rows[1], array[2:4].reshape(-1))
    mask = groups.expand(np.array([1.0, 0.0, 1.0]), "columns", 2, (4, 6))
    assert (mask[:, 2:4] == 0).all() and (mask[:, [0, 1, 4, 5]] == 1).all()
    assert (groups.expand(np.array([0.0, 1.0]), "rows", 2, (4, 6))[:2] == 0).all()


def test_reduce_groups_l2_sum_and_pruned():
    rows = np.array([[3.0, 4.0], [groups.PRUNED, groups.PRUNED], [1.0, groups.PRUNED]])
    np.testing.assert_allclose(groups.reduce_groups(rows, "l2"), [5.0, groups.PRUNED, 1.0])
    np.testing.assert_allclose(groups.reduce_groups(rows, "sum"), [7.0, groups.PRUNED, 1.0])


def _model(config):
    from gated_bert.tasks import TASKS
    from gated_bert.training.fit import build_classifier

    return build_classifier(config, TASKS["sst2"])


def _group_state(pruner, kind):
    """Per block: which groups are fully masked; asserts every group is all-masked or all-kept."""
    masks = [k.layer.mask.numpy() for k in pruner.kernels]
    states = {}
    for kernel, mask in zip(pruner.kernels, masks):
        if kernel.role in kind.axes:
            width = mask.shape[-1] // pruner.num_heads if kind.per_head else 1
            view = groups.group_view(mask, kind.axes[kernel.role], width)
            assert ((view == 0).all(axis=1) | (view == 1).all(axis=1)).all(), kernel.name
            states.setdefault(kernel.layer_index, []).append((view == 0).all(axis=1))
    for block, rows in states.items():
        assert all((row == rows[0]).all() for row in rows), f"block {block}: kernels disagree"
    return {block: rows[0] for block, rows in states.items()}


@pytest.mark.parametrize("granularity", ["neuron", "head", "structured"])
@pytest.mark.parametrize("scope", ["per_layer", "global"])
def test_magnitude_removes_the_weakest_whole_groups_exactly(granularity, scope):
    from gated_bert.pruning.pruner import Pruner

    config = micro_config(
        pruning_method="magnitude",
        pruning_granularity=granularity,
        pruning_scope=scope,
        num_heads=4,
        dff=32,
        d_model=16,
    )
    model = _model(config)
    pruner = Pruner(config, model, steps_per_epoch=10)
    before = [k.layer.kernel.numpy().copy() for k in pruner.kernels]
    pruner.apply(0.5)
    kinds = groups.kinds_of(granularity)
    for kind in kinds:
        removed = _group_state(pruner, kind)
        counts = [int(r.sum()) for r in removed.values()]
        total = sum(len(r) for r in removed.values())
        if scope == "per_layer":
            assert counts == [len(r) // 2 for r in removed.values()]
        assert sum(counts) == total // 2  # exact in groups
        norms = groups.group_importances(pruner.kernels, before, kind, 4, "l2")
        if scope == "per_layer":
            for block, gone in removed.items():
                assert norms[block][gone].max() <= norms[block][~gone].min()
    assert pruner.group_sparsity() == {kind.name: 0.5 for kind in kinds}
    dense_roles = {"weight"} | {
        r for kind in groups.KINDS["structured"] if kind not in kinds for r in kind.axes
    }
    for kernel in pruner.kernels:
        if kernel.role in dense_roles:
            assert kernel.layer.mask.numpy().all(), kernel.name  # the other kind stays dense


@pytest.mark.parametrize("method", ["magnitude", "movement", "spt", "random"])
def test_training_with_structured_granularity_reaches_the_target_in_groups(sst2_dir, method):
    from gated_bert.data.prepare import prepare_data
    from gated_bert.training.fit import fit

    config = micro_config(
        data_dir=str(sst2_dir),
        pruning_method=method,
        pruning_granularity="structured",
        epochs=3,
        pruning_start_epoch=1,
        pruning_end_epoch=3,
        end_sparsity=0.5,
        num_heads=4,
        movement_pruning_frequency_steps=5,
        spt_epsilon=0.3,
    )
    result = fit(config, prepare_data(config))
    last = result.rows[-1]
    assert last["group_sparsity/head"] == 0.5 and last["group_sparsity/neuron"] == 0.5
    for kind in groups.kinds_of("structured"):
        _group_state(result.pruner, kind)  # every group all-masked or all-kept, in all its kernels
    if method == "spt":  # the probes removed whole groups: visits are equal within a group
        explorer = result.pruner.method.explorer
        for i, kernel in enumerate(result.pruner.kernels):
            kind = groups.HEADS if kernel.role in groups.HEADS.axes else groups.NEURONS
            width = kernel.layer.mask.shape[-1] // 4 if kind.per_head else 1
            visits = groups.group_view(explorer.visits[i].numpy(), kind.axes[kernel.role], width)
            assert (visits == visits[:, :1]).all() and visits.max() > 0, kernel.name
