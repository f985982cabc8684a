import math

import numpy as np
import pytest

from gated_bert.model import prunable_kernels
from gated_bert.pruning.methods import get_method
from gated_bert.training.callbacks import NanGuard, TrainingDivergedError
from gated_bert.training.fit import fit, prepare_data
from tests.conftest import micro_config


def _run(sst2_dir, **overrides):
    config = micro_config(data_dir=str(sst2_dir), **overrides)
    return config, fit(config, prepare_data(config))


@pytest.mark.parametrize("method", ["magnitude", "movement", "spt", "random"])
@pytest.mark.parametrize("target", [0.5, 0.9])
def test_every_method_reaches_target_exactly(sst2_dir, method, target):
    config, result = _run(
        sst2_dir,
        pruning_method=method,
        epochs=3,
        pruning_start_epoch=1,
        pruning_end_epoch=2,
        end_sparsity=target,
        movement_pruning_frequency_steps=7,
    )
    kernels = prunable_kernels(result.classifier)
    sizes = [int(np.prod(k.layer.mask.shape)) for k in kernels]
    zeros = [int((k.layer.mask.numpy() == 0).sum()) for k in kernels]
    total = sum(sizes)
    if config.effective_scope == "global":
        assert sum(zeros) == math.floor(target * total + 0.5)
    else:
        for n_zero, size in zip(zeros, sizes):
            assert abs(n_zero - target * size) <= 1  # within one weight per kernel
    assert result.rows[-1]["sparsity"] == pytest.approx(target, abs=1 / total * len(kernels))
    assert result.rows[1]["sparsity"] == pytest.approx(result.rows[-1]["sparsity"])  # reached at end epoch
    if get_method(method).zeroes_pruned:
        for k in kernels:  # pruned weights are zero in the kernel too
            assert np.all(k.layer.kernel.numpy()[k.layer.mask.numpy() == 0] == 0)


def test_masks_change_during_fit_not_only_after(sst2_dir, monkeypatch):
    """Movement updates run inside fit, between steps (not lost in a compiled step)."""
    from gated_bert.pruning.callback import PruningCallback

    seen = []
    original = PruningCallback.on_train_batch_end

    def spy(self, batch, logs=None):
        original(self, batch, logs)
        seen.append(float((self.pruner.kernels[0].layer.mask.numpy() == 0).mean()))

    monkeypatch.setattr(PruningCallback, "on_train_batch_end", spy)
    _run(
        sst2_dir,
        pruning_method="movement",
        epochs=2,
        pruning_start_epoch=1,
        pruning_end_epoch=2,
        end_sparsity=0.8,
        movement_pruning_frequency_steps=5,
    )
    assert len(seen) == 40  # 320 examples / 16 per batch * 2 epochs
    assert seen[3] == 0.0 and seen[4] > 0.0  # first update after step 5
    assert len(set(seen)) >= 8  # sparsity rose step by step inside the epochs
    assert seen[-1] == pytest.approx(0.8, abs=1 / 256)


def test_same_seed_same_metrics(sst2_dir):
    drop = ("epoch_seconds", "examples_per_second")
    spt = dict(pruning_method="spt", epochs=2, pruning_start_epoch=1, pruning_end_epoch=2, end_sparsity=0.5)
    rows = []
    for _ in range(2):
        _, result = _run(sst2_dir, **spt)
        rows.append([{k: v for k, v in r.items() if k not in drop} for r in result.rows])
    assert rows[0] == rows[1]
    _, other = _run(sst2_dir, **spt, seed=7)
    assert other.rows[-1]["train_loss"] != rows[0][-1]["train_loss"]


def test_training_learns_the_synthetic_task(sst2_dir):
    _, result = _run(sst2_dir, epochs=4, learning_rate=3e-3)
    assert result.rows[-1]["eval_accuracy"] >= 0.9
    assert result.rows[-1]["train_loss"] < result.rows[0]["train_loss"]


def test_nan_loss_stops_with_clear_message():
    with pytest.raises(
        TrainingDivergedError, match="training loss became nan at batch 3; lower --learning-rate"
    ):
        NanGuard().on_train_batch_end(2, {"loss": float("nan")})
    NanGuard().on_train_batch_end(2, {"loss": 0.5})
