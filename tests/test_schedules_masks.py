import numpy as np
import pytest

from gated_bert.pruning import masks
from gated_bert.pruning.masks import Cut, cut_mask, global_masks, keep_count, mask_for
from gated_bert.pruning.schedules import (
    EpochSchedule,
    StepSchedule,
    cubic,
    geometric,
    linear,
    resample,
    step_path,
)


def test_linear_closed_form():
    assert linear(4, 4, 23, 0.0, 0.99) == 0.0
    assert linear(23, 4, 23, 0.0, 0.99) == pytest.approx(0.99)
    assert linear(10, 4, 23, 0.1, 0.8) == pytest.approx(0.1 + 0.7 * 6 / 19)
    assert linear(30, 4, 23, 0.1, 0.8) == pytest.approx(0.8) and linear(1, 4, 23, 0.1, 0.8) == 0.1


def test_cubic_closed_form():
    s_i, s_f, t0, t1 = 0.0, 0.9, 100, 500
    assert cubic(t0, t0, t1, s_i, s_f) == pytest.approx(s_i)
    assert cubic(t1, t0, t1, s_i, s_f) == pytest.approx(s_f)
    t = 200
    assert cubic(t, t0, t1, s_i, s_f) == pytest.approx(s_f + (s_i - s_f) * (1 - (t - t0) / (t1 - t0)) ** 3)
    assert cubic(50, t0, t1, s_i, s_f) == s_i and cubic(900, t0, t1, s_i, s_f) == pytest.approx(s_f)


def test_geometric_closed_form():
    s_i, s_f, t0, t1 = 0.2, 0.99, 2, 6
    assert geometric(t0, t0, t1, s_i, s_f) == pytest.approx(s_i)
    assert geometric(t1, t0, t1, s_i, s_f) == s_f
    assert geometric(3, t0, t1, s_i, s_f) == pytest.approx(1 - 0.8 * (0.01 / 0.8) ** 0.25)
    assert geometric(1, t0, t1, s_i, s_f) == s_i and geometric(9, t0, t1, s_i, s_f) == s_f
    # Each of the four epoch updates to 0.9 removes the same share (44%) of the weights still in place.
    density = [1 - EpochSchedule("geometric", 2, 6, 0.0, 0.9).sparsity_at(e) for e in range(2, 7)]
    assert np.allclose(np.array(density[1:]) / density[:-1], 0.1**0.25)
    assert [round(1 - d, 3) for d in density] == [0.0, 0.438, 0.684, 0.822, 0.9]


def test_step_path_drops_values_past_end():
    default = (10, 25, 50, 70, 75, 80, 84, 88, 90, 92, 93, 94, 95, 96, 97, 97.5, 98, 98.5, 99, 99.5)
    path = step_path(default, 0.9)
    assert path[-3:] == [0.84, 0.88, 0.9] and len(path) == 9
    assert step_path(default, 0.99)[-2:] == [0.985, 0.99]


def test_resample_rule():
    path = [0.1, 0.25, 0.5, 0.7, 0.9]
    assert resample(path, 5) == path
    assert resample(path, 1) == [0.9]
    stretched = resample(path, 9)  # positions 0, .5, 1, ... 4
    assert stretched[0] == 0.1 and stretched[-1] == 0.9 and stretched[1] == pytest.approx(0.175)
    squeezed = resample(path, 3)  # positions 0, 2, 4
    assert squeezed == [0.1, 0.5, 0.9]


def test_epoch_schedule_steps_window():
    schedule = EpochSchedule("steps", 1, 5, 0.0, 0.9, (10, 25, 50, 70, 75, 80, 84, 88, 90))
    targets = [schedule.sparsity_at(e) for e in range(1, 7)]
    assert targets == pytest.approx([0.1, 0.5, 0.75, 0.84, 0.9, 0.9])  # 9 values onto 5 epochs: 0,2,4,6,8
    assert [schedule.is_update_step(e) for e in range(0, 7)] == [False, True, True, True, True, True, False]


def test_epoch_schedule_linear_zero_before_window():
    schedule = EpochSchedule("linear", 2, 4, 0.2, 0.8, ())
    assert [schedule.sparsity_at(e) for e in range(1, 6)] == pytest.approx([0.0, 0.2, 0.5, 0.8, 0.8])


def test_step_schedule_updates_every_frequency_and_at_end():
    schedule = StepSchedule(
        "linear", begin_step=100, end_step=330, frequency=50, start_sparsity=0.0, end_sparsity=0.9
    )
    updates = [t for t in range(0, 400) if schedule.is_update_step(t)]
    assert updates == [150, 200, 250, 300, 330]
    assert schedule.sparsity_at(330) == pytest.approx(0.9)
    assert schedule.sparsity_at(200) == pytest.approx(0.9 * 100 / 230)


def test_step_list_by_step_reads_the_path_along_the_window():
    # path 0.1, 0.5, 0.9 over 200 steps: 0.1 at the start, 0.5 at the middle, 0.9 at the end
    schedule = StepSchedule("steps", 0, 200, 1, 0.0, 0.9, steps_percent=(10, 50, 95))
    assert schedule.sparsity_at(0) == 0.0
    assert schedule.sparsity_at(50) == pytest.approx(0.1 + (0.5 - 0.1) * 0.5)
    assert schedule.sparsity_at(100) == pytest.approx(0.5)
    assert schedule.sparsity_at(150) == pytest.approx(0.7)
    assert schedule.sparsity_at(200) == pytest.approx(0.9) == schedule.sparsity_at(260)
    assert all(schedule.is_update_step(t) for t in range(1, 201)) and not schedule.is_update_step(201)


def test_mask_for_hand_computed():
    mask = mask_for(np.arange(1, 11, dtype=float), 0.2)
    assert mask.tolist() == [0, 0, 1, 1, 1, 1, 1, 1, 1, 1]
    assert mask_for(np.arange(1, 11, dtype=float), 0.0).sum() == 10
    assert keep_count(10, 0.25) == 7  # 2.5 weights to prune: halves round up
    assert mask_for(np.arange(1, 11, dtype=float), 0.25).tolist() == [0, 0, 0, 1, 1, 1, 1, 1, 1, 1]
    assert mask_for(-np.arange(1, 11, dtype=float), 0.5).tolist() == [1] * 5 + [0] * 5


def test_mask_for_exact_count_with_ties_and_2d():
    importance = np.zeros((8, 8))
    mask = mask_for(importance, 0.9)
    assert mask.shape == (8, 8) and int((mask == 0).sum()) == round(0.9 * 64)


def test_mask_for_keeps_the_first_tied_weights_and_ranks_nan_last():
    importance = np.array([1.0, 5.0, 3.0, 3.0, 3.0, 0.0])
    assert mask_for(importance, 0.5).tolist() == [0, 1, 1, 1, 0, 0]  # keep 3: 5 and the first two 3s
    assert mask_for(np.array([np.nan, 2.0, -np.inf, 1.0]), 0.5).tolist() == [0, 1, 0, 1]
    assert mask_for(np.ones(7), 1.0).sum() == 0


def _sorted_mask(importance, sparsity):
    """The reference: keep the largest values, the first ones (row-major) among ties."""
    flat = np.where(np.isnan(importance), -np.inf, importance).reshape(-1)
    order = np.lexsort((np.arange(flat.size), -flat))  # value desc, position asc
    expected = np.zeros(flat.size)
    expected[order[: keep_count(flat.size, sparsity)]] = 1
    return expected


def test_mask_for_agrees_with_a_full_sort():
    rng = np.random.default_rng(3)
    importance = rng.normal(size=(64, 32)).round(1)  # many ties
    for sparsity in (0.1, 0.5, 0.9, 0.99):
        mask = mask_for(importance, sparsity).reshape(-1)
        np.testing.assert_array_equal(mask, _sorted_mask(importance, sparsity))


@pytest.mark.parametrize("pruned_share", [0.0, 0.3, 0.6, 0.9, 1.0])
@pytest.mark.parametrize("floor", [-np.inf, -1.0])
def test_mask_for_agrees_with_a_full_sort_when_most_weights_are_already_pruned(pruned_share, floor):
    """Pruned weights tie at the lowest score (-inf for SPT, PRUNED for magnitude): the faster
    selection used when they are more than half must keep exactly the same weights."""
    rng = np.random.default_rng(4)
    importance = rng.normal(size=(96, 48)).round(2)
    importance.reshape(-1)[rng.random(importance.size) < pruned_share] = floor
    for sparsity in (0.1, 0.5, 0.61, 0.9, 0.95, 0.99):
        mask = mask_for(importance, sparsity).reshape(-1)
        np.testing.assert_array_equal(
            mask, _sorted_mask(importance, sparsity), err_msg=f"{pruned_share} {floor} {sparsity}"
        )


def test_global_scope_one_threshold():
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([[10.0, 20.0], [30.0, 40.0]])
    (ma, mb), _ = global_masks([a, b], 0.5)
    assert ma.tolist() == [0, 0, 0, 0] and mb.tolist() == [[1, 1], [1, 1]]
    per_layer = [mask_for(a, 0.5), mask_for(b, 0.5)]
    assert per_layer[0].tolist() == [0, 0, 1, 1] and per_layer[1].tolist() == [[0, 0], [1, 1]]


@pytest.mark.parametrize(
    "kind", ["normal", "rounded", "zeros_in_the_middle", "sorted", "sample_misleads", "with_nan_and_inf"]
)
def test_mask_for_large_arrays_agrees_with_a_full_sort(kind):
    """Arrays large enough for the sampled bracket (`_select`), including ones whose random
    sample misrepresents the values (the exact fallback) and heavy ties at the threshold."""
    rng = np.random.default_rng(5)
    size = 256 * 512
    values = {
        "normal": rng.normal(size=size),
        "rounded": rng.normal(size=size).round(1),
        "zeros_in_the_middle": rng.normal(size=size) * (rng.random(size) < 0.3),
        "sorted": np.sort(rng.normal(size=size)),
        "sample_misleads": rng.normal(size=size),
        "with_nan_and_inf": rng.normal(size=size),
    }[kind].astype(np.float32)
    if kind == "sample_misleads":
        values[masks.sample_positions(size)] = 100.0  # every sampled value sits above all the others
    if kind == "with_nan_and_inf":
        values[rng.random(size) < 0.05] = np.nan
        values[rng.random(size) < 0.05] = np.inf
    for sparsity in (0.1, 0.5, 0.7, 0.9, 0.97):
        mask = mask_for(values.reshape(256, 512), sparsity)
        assert mask.dtype == np.float32 and mask.shape == (256, 512)
        np.testing.assert_array_equal(mask.reshape(-1), _sorted_mask(values, sparsity), err_msg=f"{sparsity}")


def test_select_brackets_the_kth_value_and_falls_back_when_the_sample_misleads(monkeypatch):
    """The partition of the whole array runs only when the sample's bracket misses."""
    rng = np.random.default_rng(6)
    values = rng.normal(size=131072)
    calls = []
    real = np.partition
    monkeypatch.setattr(masks.np, "partition", lambda a, k: calls.append(a.size) or real(a, k))
    assert masks._select(values, 65536)[0] == np.sort(values)[65536]
    assert calls and max(calls) < values.size // 10  # only a narrow band was partitioned
    calls.clear()
    values[masks.sample_positions(values.size)] = 100.0
    assert masks._select(values, 65536)[0] == np.sort(values)[65536]
    assert calls == [values.size]


def test_the_sample_does_not_alias_with_kernel_rows(monkeypatch):
    """A column unlike the others (one per row of 256) must not fill the sample: a strided sample
    of 2^18 values every 64th took a quarter of its values from column 0 and missed the bracket,
    partitioning the whole array (SPT's global ranking of tiny's 2^20 weights: 100+ ms)."""
    rng = np.random.default_rng(7)
    values = rng.normal(size=(1024, 256))
    values[:, 0] += 100.0
    calls = []
    real = np.partition
    monkeypatch.setattr(masks.np, "partition", lambda a, k: calls.append(a.size) or real(a, k))
    flat = values.reshape(-1)
    for k in (flat.size // 4, flat.size // 2, 9 * flat.size // 10):
        assert masks._select(flat, k)[0] == np.sort(flat)[k]
    assert calls and max(calls) < flat.size // 10  # narrow bands only, never the whole array


@pytest.mark.parametrize(
    "special, target_step",
    [(False, 0.002), (True, 0.002), (False, 0.02)],
    ids=["finite", "nan_and_inf", "fast_target"],
)
def test_a_near_cut_gives_the_same_masks_without_a_sample(monkeypatch, special, target_step):
    """Movement re-ranks slightly moved scores after every step: the previous `Cut` brackets the
    new threshold, so no sample is drawn and only about NEAR_VALUES values are partitioned;
    the masks equal a full sort's at every step, the target moving too, faster than the bracket's
    width (the bracket follows it at the measured density; NaN ranks lowest)."""
    rng = np.random.default_rng(8)
    values = rng.normal(size=(256, 512)).astype(np.float32)
    if special:
        values.reshape(-1)[::97] = np.nan
        values.reshape(-1)[5::89] = np.inf
        values.reshape(-1)[7::83] = -np.inf
    sizes, samples = [], []
    real_partition, real_positions = np.partition, masks.sample_positions
    monkeypatch.setattr(masks.np, "partition", lambda a, k: sizes.append(a.size) or real_partition(a, k))
    monkeypatch.setattr(masks, "sample_positions", lambda n: samples.append(n) or real_positions(n))
    mask, cut = cut_mask(values, 0.5)
    assert samples == [values.size] and isinstance(cut, Cut) and cut.width > 0
    for step in range(20):
        sizes.clear(), samples.clear()
        values = values + rng.normal(scale=1e-3, size=values.shape).astype(np.float32)
        sparsity = 0.5 + target_step * step  # 0.02: 2,621 positions a step, the bracket holds ~2,048
        mask, cut = cut_mask(values, sparsity, near=cut)
        np.testing.assert_array_equal(mask.reshape(-1), _sorted_mask(values.reshape(-1), sparsity))
        assert samples == [] and max(sizes) < 4 * masks.NEAR_VALUES, (step, sizes)


@pytest.mark.parametrize("ties", ["crossing", "all_kept"])
def test_a_near_cut_with_ties_at_the_threshold_keeps_the_first_tied(monkeypatch, ties):
    """Values on a grid tie at the threshold: either the cut splits the tied values (the first
    in row-major order are kept) or every tied value is kept (the mask is one comparison); the
    near bracket gives a full sort's mask in both cases, without a sample."""
    rng = np.random.default_rng(11)
    values = rng.normal(size=(256, 256)).round(2).astype(np.float32)
    flat = values.reshape(-1)
    mask, cut = cut_mask(values, 0.5)
    samples = []
    real_positions = masks.sample_positions
    monkeypatch.setattr(masks, "sample_positions", lambda n: samples.append(n) or real_positions(n))
    for level in np.unique(flat[np.abs(flat - cut.threshold) < 0.05])[:6]:
        kept_at_level = int(np.count_nonzero(flat >= level))  # every value tied at `level` kept
        keep = kept_at_level if ties == "all_kept" else kept_at_level - 1
        sparsity = (flat.size - keep) / flat.size
        mask, near_cut = cut_mask(values, sparsity, near=cut)
        np.testing.assert_array_equal(mask.reshape(-1), _sorted_mask(flat, sparsity))
        assert mask.sum() == keep and near_cut.threshold == level
    assert samples == []


@pytest.mark.parametrize(
    "near",
    [Cut(5.0, 0.01), Cut(0.0, 0.0), Cut(-3.0, 1e6), Cut(0.0, np.inf)],
    ids=["far", "zero_width", "too_wide", "infinite_width"],
)
def test_a_misleading_near_cut_falls_back_to_the_exact_mask(near):
    """A cut far from the threshold, of zero width or holding too many values: same mask."""
    rng = np.random.default_rng(9)
    values = rng.normal(size=131072).round(2).astype(np.float32)  # ties at the threshold
    for sparsity in (0.3, 0.9):
        mask, cut = cut_mask(values, sparsity, near=near)
        np.testing.assert_array_equal(mask, _sorted_mask(values, sparsity))
        assert cut is not None and np.isfinite(cut.width)


def test_cut_mask_keeps_all_or_none_without_a_cut():
    values = np.arange(10.0)
    mask, cut = cut_mask(values, 0.0)
    assert mask.sum() == 10 and cut is None
    mask, cut = cut_mask(values, 1.0, near=Cut(4.0, 1.0))
    assert mask.sum() == 0 and cut is None


@pytest.mark.parametrize("lowest", [-np.inf, -1.0])
def test_the_bracket_leaves_out_the_tied_lowest_values(monkeypatch, lowest):
    """A third of the values tied at the lowest (SPT's pruned weights score -inf, magnitude's
    PRUNED) and the threshold just above them: only a narrow band is partitioned, not the ties."""
    rng = np.random.default_rng(10)
    values = np.abs(rng.normal(size=2**20))
    values[rng.random(values.size) < 1 / 3] = lowest
    sizes = []
    real = np.partition
    monkeypatch.setattr(masks.np, "partition", lambda a, k: sizes.append(a.size) or real(a, k))
    floor = int(np.count_nonzero(values == lowest))
    for sparsity in (floor / values.size + 0.001, floor / values.size + 0.05):
        sizes.clear()
        mask = mask_for(values, sparsity)
        np.testing.assert_array_equal(mask, _sorted_mask(values, sparsity))
        assert sizes and max(sizes) < values.size // 10, sizes
