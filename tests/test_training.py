import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from gated_bert.data.prepare import prepare_data
from gated_bert.model import prunable_kernels
from gated_bert.pruning.methods import get_method
from gated_bert.pruning.resolve import resolve
from gated_bert.training import fit as fit_module
from gated_bert.training import settings as settings_module
from gated_bert.training.callbacks import NanGuard, TrainingDivergedError
from gated_bert.training.fit import fit
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
    if resolve(config).pruning_scope == "global":
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


@pytest.mark.parametrize(
    "updates, scope, granularity, directions",
    [
        ("step", "per_layer", "weight", 0),
        ("epoch", "per_layer", "weight", 0),
        ("step", "global", "weight", 0),
        ("step", "per_layer", "head", 0),
        ("step", "per_layer", "weight", 2),
    ],
)
def test_ranking_inside_the_train_step_equals_ranking_between_steps(
    sst2_dir, monkeypatch, updates, scope, granularity, directions
):
    """Movement re-ranks after every step inside the compiled step (`ranks_in_step`); the same
    run ranked by the callback between steps ends with the same masks, weights and metrics."""
    from gated_bert.pruning.pruner import Pruner
    from gated_bert.training.trainer import PruningTrainer

    settings = dict(
        pruning_method="movement", pruning_updates=updates, pruning_scope=scope, pruning_granularity=granularity, epochs=3,
        pruning_start_epoch=1, pruning_end_epoch=3, end_sparsity=0.7, movement_scores_learning_rate=0.1,
        movement_remove_directions=directions,
    )  # fmt: skip
    calls = {"apply": 0, "in_step": 0}
    apply, in_step = Pruner.apply, Pruner.flat_masks_of

    def counted(name, real):
        def call(*args, **kwargs):
            calls[name] += 1
            return real(*args, **kwargs)

        return call

    monkeypatch.setattr(Pruner, "apply", counted("apply", apply))
    monkeypatch.setattr(Pruner, "flat_masks_of", counted("in_step", in_step))
    runs = []
    for inside in (True, False):
        if not inside:
            monkeypatch.setattr(PruningTrainer, "ranks_in_step", property(lambda self: False))
        calls.update(apply=0, in_step=0)
        _, result = _run(sst2_dir, **settings)
        layers = [k.layer for k in prunable_kernels(result.classifier)]
        runs.append(
            (result, [v.numpy() for layer in layers for v in (layer.mask, layer.kernel, layer.scores)])
        )
        if inside:  # the window's steps ranked in the step (epoch 3's with epoch updates); epoch ends not
            assert calls["apply"] == (3 if updates == "epoch" else 0) and calls["in_step"] >= 20, calls
        else:
            assert calls["in_step"] == 0 and calls["apply"] >= 20, calls
    drop = ("epoch_seconds", "examples_per_second")
    (inside, inside_arrays), (between, between_arrays) = runs
    assert [{k: v for k, v in r.items() if k not in drop} for r in inside.rows] == [
        {k: v for k, v in r.items() if k not in drop} for r in between.rows
    ]
    if granularity == "weight":  # whole heads (2 per layer here) cannot make 70% of the weights
        assert inside.rows[-1]["sparsity"] == pytest.approx(0.7, abs=1e-2)
    else:
        assert inside.rows[-1]["sparsity"] > 0
    for a, b in zip(inside_arrays, between_arrays):
        np.testing.assert_array_equal(a, b)


def test_ranking_values_are_computed_only_when_a_ranking_is_due(sst2_dir, monkeypatch):
    """Inside the train step the method's ranking values (here movement's cleaned scores, the
    costly part) are computed only on the steps where the host says an update is due: the
    window's, not the dense epoch's nor those at the held final mask."""
    import tensorflow as tf

    from gated_bert.pruning.methods.movement import Movement
    from gated_bert.pruning.pruner import Pruner

    computed = tf.Variable(0, dtype=tf.int64)  # counted in the graph, when the branch runs
    original, masks_of = Movement.ranking_values, Pruner.flat_masks_of
    host = {"masks": 0}

    def counted_values(self):
        values = original(self)
        with tf.control_dependencies(values):
            count = computed.assign_add(1)
        with tf.control_dependencies([count]):
            return [tf.identity(value) for value in values]

    def counted_masks(*args, **kwargs):
        host["masks"] += 1
        return masks_of(*args, **kwargs)

    monkeypatch.setattr(Movement, "ranking_values", counted_values)
    monkeypatch.setattr(Pruner, "flat_masks_of", counted_masks)
    _, result = _run(
        sst2_dir, pruning_method="movement", epochs=3, pruning_start_epoch=2, pruning_end_epoch=2,
        end_sparsity=0.7, movement_remove_directions=2,
    )  # fmt: skip
    steps_per_epoch = 20  # 320 examples / 16 per batch
    assert int(computed.numpy()) == host["masks"] == steps_per_epoch  # epoch 2's steps only
    assert result.rows[-1]["sparsity"] == pytest.approx(0.7, abs=1e-2)


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


def test_nan_loss_stops_at_its_batch_with_clear_message(sst2_dir, monkeypatch):
    """The train step's in-graph check stops fit at the first non-finite loss (no per-batch callback)."""
    real_loss = fit_module.task_loss

    def poisoned(task):
        """The task loss, NaN from the 3rd batch of epoch 2 on (counted inside the graph)."""
        inner = real_loss(task)
        calls = tf.Variable(0)

        def loss(y, y_pred):
            calls.assign_add(1)
            return tf.where(calls >= steps + 3, tf.constant(math.nan), inner(y, y_pred))

        return loss

    config = micro_config(data_dir=str(sst2_dir), epochs=3)
    prepared = prepare_data(config)
    steps = prepared.train.num_batches(config.batch_size)
    assert steps >= 3
    monkeypatch.setattr(fit_module, "task_loss", poisoned)
    with pytest.raises(
        TrainingDivergedError,
        match=r"^training loss became nan at batch 3 of epoch 2; lower --learning-rate or raise --batch-size$",
    ):
        fit(config, prepared)


def test_nan_guard_checks_the_epoch_mean_loss():
    """Where the in-graph check compiles to nothing (XLA), the epoch's mean loss still stops the run."""
    with pytest.raises(
        TrainingDivergedError, match=r"^training loss became inf in epoch 2; lower --learning-rate"
    ):
        NanGuard().on_epoch_end(1, {"loss": float("inf")})
    NanGuard().on_epoch_end(1, {"loss": 0.5})
    assert NanGuard.on_train_batch_end is keras.callbacks.Callback.on_train_batch_end  # no per-batch work


def _lazy_step(table, opt, indices, values):
    import tensorflow as tf

    from gated_bert.training.lazy_adamw import LazyAdamW

    lazy = LazyAdamW(opt, table)
    lazy.apply(
        tf.IndexedSlices(tf.constant(values, tf.float32), tf.constant(indices), tf.constant(table.shape))
    )
    return lazy


def test_lazy_adamw_is_adamw_on_the_touched_rows_only():
    """A hand-computed AdamW step (Keras' formulas) on rows 1 and 3; every other row stays exactly."""
    import keras
    import tensorflow as tf

    start = np.arange(12, dtype=np.float32).reshape(6, 2) / 10
    table = tf.Variable(start)
    lr, wd, b1, b2, eps = 0.1, 0.01, 0.9, 0.999, 1e-7
    opt = keras.optimizers.AdamW(learning_rate=lr, weight_decay=wd, beta_1=b1, beta_2=b2, epsilon=eps)
    values = np.array([[1.0, -2.0], [0.5, 0.5], [3.0, 1.0]], np.float32)
    lazy = _lazy_step(table, opt, [1, 3, 1], values)  # row 1 twice: its gradients add up

    grad = {1: values[0] + values[2], 3: values[1]}
    expected = start.copy()
    alpha = lr * np.sqrt(1 - b2) / (1 - b1)  # step 1
    for row, g in grad.items():
        w = start[row] - start[row] * wd * lr
        m, v = g * (1 - b1), g**2 * (1 - b2)
        expected[row] = w - m * alpha / (np.sqrt(v) + eps)
        np.testing.assert_allclose(lazy.m.numpy()[row], m, rtol=1e-6)
        np.testing.assert_allclose(lazy.v.numpy()[row], v, rtol=1e-6)
    np.testing.assert_allclose(table.numpy(), expected, rtol=2e-5)  # float32 vs this float64 reference
    untouched = [0, 2, 4, 5]
    np.testing.assert_array_equal(table.numpy()[untouched], start[untouched])  # no decay, no momentum
    np.testing.assert_array_equal(lazy.m.numpy()[untouched], 0.0)


def test_lazy_adamw_equals_dense_adamw_when_every_row_is_touched():
    import keras
    import tensorflow as tf

    rng = np.random.default_rng(0)
    start = rng.normal(size=(5, 3)).astype(np.float32)
    lazy_table, dense_table = tf.Variable(start), keras.Variable(start)
    lazy_opt = keras.optimizers.AdamW(learning_rate=0.05, weight_decay=0.01)
    dense_opt = keras.optimizers.AdamW(learning_rate=0.05, weight_decay=0.01)
    dense_opt.build([dense_table])
    from gated_bert.training.lazy_adamw import LazyAdamW

    lazy = LazyAdamW(lazy_opt, lazy_table)
    for _ in range(3):
        grad = rng.normal(size=(5, 3)).astype(np.float32)
        lazy.apply(tf.IndexedSlices(tf.constant(grad), tf.range(5), tf.constant([5, 3])))
        lazy_opt.iterations.assign_add(1)  # the main optimizer advances the shared step count
        dense_opt.apply([tf.constant(grad)], [dense_table])
    np.testing.assert_allclose(lazy_table.numpy(), dense_table.numpy(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kind", ["adamw", "adam", "adamw_amsgrad"])
def test_fused_adam_equals_keras_adam_step_by_step(kind):
    """Five steps of a decaying learning rate on a matrix and a vector: the fused kernel gives
    Keras' values (to float32 rounding) and Keras' own moment variables hold the state."""
    from gated_bert.training.fused_adam import FusedAdam, FusedAdamW

    rng = np.random.default_rng(1)
    starts = [rng.normal(size=(6, 4)).astype(np.float32), rng.normal(size=4).astype(np.float32)]
    lr = keras.optimizers.schedules.ExponentialDecay(0.05, decay_steps=1, decay_rate=0.7)
    make = {
        "adamw": lambda cls: cls(learning_rate=lr, weight_decay=0.02),
        "adam": lambda cls: cls(learning_rate=lr),
        "adamw_amsgrad": lambda cls: cls(learning_rate=lr, weight_decay=0.02, amsgrad=True),
    }[kind]
    fused_cls, keras_cls = (
        (FusedAdam, keras.optimizers.Adam) if kind == "adam" else (FusedAdamW, keras.optimizers.AdamW)
    )
    fused_vars, keras_vars = [keras.Variable(s) for s in starts], [keras.Variable(s) for s in starts]
    fused_opt, keras_opt = make(fused_cls), make(keras_cls)
    fused_step = tf.function(lambda g: fused_opt.apply(g, fused_vars))
    keras_step = tf.function(lambda g: keras_opt.apply(g, keras_vars))
    for _ in range(5):
        grads = [tf.constant(rng.normal(size=s.shape).astype(np.float32)) for s in starts]
        fused_step(grads)
        keras_step(grads)
    for fused, plain in zip(fused_vars + fused_opt.variables, keras_vars + keras_opt.variables):
        np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=1e-5, atol=1e-7)
    assert int(fused_opt.iterations.numpy()) == 5
    assert not np.allclose(fused_vars[0].numpy(), starts[0])  # the step moved the weights
    ops = {op.type for op in fused_step.get_concrete_function(grads).graph.get_operations()}
    assert ("ResourceApplyAdam" in ops) == (kind != "adamw_amsgrad")  # amsgrad: Keras' own ops


def test_fit_trains_with_the_fused_optimizer(sst2_dir, monkeypatch):
    from gated_bert.training.fused_adam import FusedAdamW

    optimizers = []
    original = fit_module._compiled_trainer

    def spy(*args, **kwargs):
        trainer = original(*args, **kwargs)
        optimizers.append(trainer.optimizer)
        return trainer

    monkeypatch.setattr(fit_module, "_compiled_trainer", spy)
    _run(sst2_dir, epochs=1)
    assert isinstance(optimizers[0], FusedAdamW) and int(optimizers[0].iterations.numpy()) > 0


def test_embedding_updates_lazy_and_dense_train_the_same_rows_alike(sst2_dir):
    """One epoch: rows no batch touched keep their initial values with lazy updates only."""
    import keras

    from gated_bert.model import sparse_row_variables

    results = {}
    for mode in ("lazy", "dense"):
        config = micro_config(data_dir=str(sst2_dir), epochs=1, embedding_updates=mode)
        prepared = prepare_data(config)
        keras.utils.set_random_seed(config.seed)
        initial = sparse_row_variables(
            fit_module.build_classifier(settings_module.with_tokenizer_vocab(config, prepared), prepared.task)
        )[0].numpy()
        result = fit(config, prepared)
        results[mode] = (initial, sparse_row_variables(result.classifier)[0].numpy(), result)
    train_ids = prepare_data(micro_config(data_dir=str(sst2_dir))).train.token_ids
    used = np.unique(np.concatenate([*train_ids, [0]]))  # [PAD] (0) is in every padded batch
    initial, lazy_table, lazy_result = results["lazy"]
    unused = np.setdiff1d(np.arange(lazy_table.shape[0]), used)
    np.testing.assert_array_equal(lazy_table[unused], initial[unused])
    dense_initial, dense_table, dense_result = results["dense"]
    np.testing.assert_array_equal(initial, dense_initial)  # same seed, same start
    assert not np.allclose(dense_table[unused], initial[unused])  # dense AdamW decays and moves every row
    assert not np.array_equal(lazy_table[used], initial[used])
    assert lazy_result.rows[-1]["eval_accuracy"] == pytest.approx(
        dense_result.rows[-1]["eval_accuracy"], abs=0.1
    )


def test_repeat_loss_repeats_the_training_pass_with_its_dropout_draws():
    """SPT's L_probe - L_full is a paired difference: the hook's repeat of the training pass
    (same masks) gives exactly the training loss, where a fresh training pass draws new dropout."""
    import keras
    import tensorflow as tf

    from gated_bert.model import build_model
    from gated_bert.training.trainer import PruningTrainer

    class Recorder:
        kernels: list = []
        has_step_hook = True

        def __init__(self):
            self.repeat_gap = tf.Variable(-1.0)
            self.fresh_gap = tf.Variable(0.0)

        def extra_variables(self):
            return []

        def train_step_hook(self, repeat_loss, training_loss, kernel_gradients=None):
            self.fresh_gap.assign(loss_fn(y, classifier(x, training=True)) - training_loss)
            self.repeat_gap.assign(repeat_loss() - training_loss)

    keras.utils.set_random_seed(0)
    classifier = build_model(micro_config().architecture(), 2, dropout_rate=0.3)
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    recorder = Recorder()
    trainer = PruningTrainer(classifier, loss_fn, pruner=type("P", (), {"method": recorder})())
    trainer.compile(optimizer=keras.optimizers.SGD(0.0), loss=loss_fn)
    assert len(trainer.dropout_states) == 6  # embeddings, 2 per block, the pooled output
    rng = np.random.default_rng(0)
    x = {
        "token_ids": tf.constant(rng.integers(1, 300, (8, 12)), tf.int32),
        "segment_ids": tf.zeros((8, 12), tf.int32),
    }
    y = tf.constant(rng.integers(0, 2, 8))
    trainer.make_train_function()
    for _ in range(2):
        trainer.train_function([(x, y)])
        assert recorder.repeat_gap.numpy() == 0.0
        assert abs(recorder.fresh_gap.numpy()) > 1e-4


def test_only_methods_with_a_step_hook_get_its_inputs_in_the_train_step():
    """Magnitude, movement and random skip the dropout snapshot and the hook call (no extra ops)."""
    from gated_bert.pruning.methods import METHODS

    hooked = {name for name, cls in METHODS.items() if cls.__new__(cls).has_step_hook}
    assert hooked == {"spt"}


def test_progress_file_is_async_safe_and_keeps_the_latest_step(tmp_path):
    """Batch ends dispatched from many threads (Keras' async callbacks) leave valid JSON at the latest step."""
    import json
    from concurrent.futures import ThreadPoolExecutor

    from gated_bert.training.callbacks import ProgressFile

    path = tmp_path / "progress.json"
    progress = ProgressFile(path, epochs=2, steps=400, metric="eval_accuracy", interval=0.0)
    assert progress.async_safe
    progress.on_epoch_begin(0)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda b: progress.on_train_batch_end(b, {}), range(400)))
    progress._write()  # the last write may have been an earlier batch's
    state = json.loads(path.read_text())
    assert (state["epoch"], state["step"], state["steps"]) == (1, 400, 400)
    assert not path.with_suffix(".tmp").exists()


@pytest.mark.parametrize("method", ["none", "movement"])
def test_xla_compiled_step_trains_and_prunes(sst2_dir, method):
    """jit_compile true: the optimizer exists before the first (compiled) step; widths are multiples of 8."""
    pruning = dict(pruning_start_epoch=1, pruning_end_epoch=2, end_sparsity=0.5) if method != "none" else {}
    config, result = _run(sst2_dir, pruning_method=method, jit_compile="true", epochs=2, **pruning)
    assert all(math.isfinite(row["train_loss"]) for row in result.rows)
    assert result.rows[-1]["sparsity"] == pytest.approx(0.5 if method != "none" else 0.0, abs=1e-3)
    exact = fit_module.train_padding_share(config, prepare_data(config))
    assert result.padding_share > exact  # rounded up to multiples of 8, so more padding than exact widths


def test_xla_is_refused_for_spt_and_auto_keeps_it_off(monkeypatch):
    from gated_bert.errors import ConfigError

    with pytest.raises(ConfigError, match="jit_compile true does not work with pruning_method spt"):
        resolve(micro_config(pruning_method="spt", jit_compile="true"))
    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["gpu:0"])
    assert fit_module.use_xla(micro_config(pruning_method="magnitude"))
    assert not fit_module.use_xla(micro_config(pruning_method="spt"))
