"""Learning-rate schedules: closed forms, the Keras twin, and the optimizer following them."""

from __future__ import annotations

import math

import numpy as np
import pytest

from gated_bert.training.lr_schedule import WarmupSchedule, learning_rate_at
from tests.conftest import micro_config


@pytest.mark.parametrize("kind", ["constant", "linear", "cosine"])
def test_closed_forms(kind):
    peak, total, warmup = 1e-3, 100, 10
    steps = np.arange(total)
    lr = learning_rate_at(steps, peak, kind, total, warmup)
    np.testing.assert_allclose(lr[:warmup], peak * steps[:warmup] / warmup)  # linear warm-up from 0
    assert lr[warmup] == pytest.approx(peak)
    after = (steps[warmup:] - warmup) / (total - warmup)
    expected = {
        "constant": np.full_like(after, peak),
        "linear": peak * (1 - after),
        "cosine": peak * 0.5 * (1 + np.cos(math.pi * after)),
    }[kind]
    np.testing.assert_allclose(lr[warmup:], expected)
    keras_values = [float(WarmupSchedule(peak, kind, total, warmup)(s)) for s in (0, 5, 10, 55, 99)]
    np.testing.assert_allclose(
        keras_values, learning_rate_at([0, 5, 10, 55, 99], peak, kind, total, warmup), rtol=1e-5, atol=1e-10
    )


def test_no_warmup_starts_at_the_peak():
    assert learning_rate_at(0, 1e-3, "cosine", 100, 0) == pytest.approx(1e-3)
    assert learning_rate_at(100, 1e-3, "linear", 100, 0) == pytest.approx(0.0)


def test_training_follows_the_schedule(sst2_dir):
    from gated_bert.data.prepare import prepare_data
    from gated_bert.training.fit import fit

    config = micro_config(data_dir=str(sst2_dir), epochs=3, lr_schedule="linear", warmup_ratio=0.25)
    prepared = prepare_data(config)
    rows = fit(config, prepared).rows
    steps = prepared.train.num_batches(config.batch_size)
    total, warmup = 3 * steps, round(0.25 * 3 * steps)
    for row in rows:  # logged after each epoch: the rate at the optimizer's step count then
        expected = learning_rate_at(row["epoch"] * steps, config.learning_rate, "linear", total, warmup)
        assert row["learning_rate"] == pytest.approx(float(expected), abs=1e-9)
    constant = micro_config(data_dir=str(sst2_dir), epochs=1)
    assert fit(constant, prepare_data(constant)).rows[-1]["learning_rate"] == pytest.approx(1e-3)
